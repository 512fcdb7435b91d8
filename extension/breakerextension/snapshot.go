// Copyright The otelcsp Authors
// SPDX-License-Identifier: Apache-2.0

package breakerextension // import "github.com/otelcsp/otelcsp/extension/breakerextension"

import (
	"sort"
	"time"
)

// KeySnapshot is one key's state, counts and next probe time, as the HTTP
// endpoint lists it.
type KeySnapshot struct {
	Key    string `json:"key"`
	Policy string `json:"policy"`
	// State is what callers see; Machine is the state machine's own state
	// (they differ under a manual state).
	State      string `json:"state"`
	Machine    string `json:"machine_state"`
	Manual     string `json:"manual"`
	Generation uint64 `json:"generation"`
	LastReason string `json:"last_reason,omitempty"`
	// StateSince is when the machine or manual state last changed (or the
	// key was created).
	StateSince time.Time `json:"state_since"`
	Trips      uint64    `json:"trips"`

	ConsecutiveFailures int64 `json:"consecutive_failures"`
	WindowCalls         int64 `json:"window_calls"`
	WindowFailures      int64 `json:"window_failures"`
	WindowSlow          int64 `json:"window_slow"`
	Stalled             int64 `json:"stalled"`
	HalfOpenInFlight    int32 `json:"half_open_in_flight"`
	// Ejected says the key is open because outlier detection ejected it.
	Ejected bool `json:"ejected,omitempty"`

	Success  uint64 `json:"success"`
	Failure  uint64 `json:"failure"`
	Ignored  uint64 `json:"ignored"`
	Rejected uint64 `json:"rejected"`

	// NextProbe is when an open breaker lets its first probe through.
	NextProbe *time.Time `json:"next_probe,omitempty"`
}

func (b *breaker) snapshot(now int64, wallNow time.Time) KeySnapshot {
	b.mu.Lock()
	w := b.word.Load()
	s := KeySnapshot{
		Key:              b.key,
		Policy:           b.p.name,
		Machine:          State(wordState(w)).String(),
		State:            effectiveState(b.manual, State(wordState(w))).String(),
		Manual:           b.manual.String(),
		Generation:       uint64(wordGen(w)),
		LastReason:       b.lastReason,
		StateSince:       wallNow.Add(time.Duration(b.changedAt - now)),
		Trips:            b.trips,
		HalfOpenInFlight: b.probes,
		Ejected:          b.ejected,
	}
	if wordState(w) == stOpen {
		t := wallNow.Add(time.Duration(b.openUntil - now))
		s.NextProbe = &t
	}
	if wordState(w) != stHalfOpen {
		s.HalfOpenInFlight = 0
	}
	b.mu.Unlock()
	s.ConsecutiveFailures = b.consec.Load()
	s.WindowCalls, s.WindowFailures, s.WindowSlow = b.window(now)
	s.Stalled = b.stalled(now)
	s.Success = b.nSuccess.Load()
	s.Failure = b.nFailure.Load()
	s.Ignored = b.nIgnored.Load()
	s.Rejected = b.nRejected.Load()
	return s
}

// Snapshot implements Controller: every known key, sorted.
func (c *core) Snapshot() []KeySnapshot {
	now, wall := c.now(), c.clk.Now()
	var out []KeySnapshot
	c.breakers.Range(func(_, v any) bool {
		out = append(out, v.(*breaker).snapshot(now, wall))
		return true
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

// outcomeTotals sums call counts over live keys and forgotten ones.
type outcomeTotals struct{ success, failure, ignored, rejected uint64 }

func (c *core) totals() outcomeTotals {
	t := outcomeTotals{
		success:  c.retired.success.Load(),
		failure:  c.retired.failure.Load(),
		ignored:  c.retired.ignored.Load(),
		rejected: c.retired.rejected.Load(),
	}
	c.breakers.Range(func(_, v any) bool {
		b := v.(*breaker)
		t.success += b.nSuccess.Load()
		t.failure += b.nFailure.Load()
		t.ignored += b.nIgnored.Load()
		t.rejected += b.nRejected.Load()
		return true
	})
	return t
}
