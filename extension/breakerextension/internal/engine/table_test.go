// Copyright The otelcsp Authors
// SPDX-License-Identifier: Apache-2.0

package engine

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestTableShape checks what every reading of the table relies on: each
// state can be forgotten, each state that rejects calls has a timer to
// leave by, a row that arms a timer for an open period enters a state that
// rejects, every state is reachable from Closed, and only the ramp's end
// changes state without a new generation.
func TestTableShape(t *testing.T) {
	reached := map[State]bool{Closed: true}
	for changed := true; changed; {
		changed = false
		for s := range numStates {
			for ev := range numEvents {
				r := table[s][ev]
				if r == nil {
					continue
				}
				to := []State{r.to}
				if r.acts&actRampUp != 0 {
					to = append(to, RampingUp) // with ramp_up set
				}
				for _, n := range to {
					if reached[s] && !reached[n] {
						reached[n], changed = true, true
					}
				}
			}
		}
	}
	for s := range numStates {
		assert.True(t, reached[s], "%s unreachable", s)
		if assert.NotNil(t, table[s][EvIdle], "%s cannot be forgotten", s) {
			assert.Equal(t, Closed, table[s][EvIdle].to)
		}
		if rejects(uint64(s)) {
			assert.NotNil(t, table[s][EvTimer], "%s has no way out", s)
		}
		for ev := range numEvents {
			r := table[s][ev]
			if r == nil {
				continue
			}
			if r.acts&(actOpenBackoff|actOpenFor) != 0 {
				assert.True(t, rejects(uint64(r.to)), "(%s, %s) opens into %s", s, ev, r.to)
			}
			if r.to != s && r.acts&(actEnter|actNewGeneration) == 0 {
				assert.Equal(t, [2]State{RampingUp, Closed}, [2]State{s, r.to}, "(%s, %s) changes state in the same generation", s, ev)
			}
		}
	}
}
