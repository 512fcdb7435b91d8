// Copyright The otelcsp Authors
// SPDX-License-Identifier: Apache-2.0

package engine

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// outlierFleet is n backends of one group on a fake clock, each sent calls
// at a steady rate; failing[i] is how many of every 10 calls of backend i
// fail, spread out up to 3 (calls 0, 3 and 6 of every 10: never two in a
// row), the first ones beyond.
type outlierFleet struct {
	t       *testing.T
	h       *harness
	keys    []string
	failing []int // failures per 10 calls
	n       []int
}

func newOutlierFleet(t *testing.T, n int, mutate func(*Policy, *OutlierConfig)) *outlierFleet {
	t.Helper()
	p := testPolicy()
	p.FailureRatio = 0.5 // the fixed thresholds stay on: 30% trips neither
	od := envoyDefaults()
	od.Jitter = 0
	if mutate != nil {
		mutate(&p, &od)
	}
	h := newHarness(t, p, func(c *Config) { c.Outlier = &od })
	h.c.Start()
	t.Cleanup(h.c.Stop)
	f := &outlierFleet{t: t, h: h, failing: make([]int, n), n: make([]int, n)}
	for i := range n {
		f.keys = append(f.keys, fmt.Sprintf("backend-%d:4317", i))
		h.br(f.keys[i])
	}
	return f
}

// run sends 20 calls a second to every backend for d (refused calls of an
// ejected one are not sent).
// envoyDefaults is outlier_detection's defaults (Envoy's).
func envoyDefaults() OutlierConfig {
	return OutlierConfig{
		Groups: []string{"*"}, Interval: 10 * time.Second, StdevFactor: 1.9, RequestVolume: 100, MinimumHosts: 5,
		EnforcingSuccessRate: 100, Threshold: 85, BaseEjectionTime: 30 * time.Second, MaxEjectionTime: 300 * time.Second,
		Jitter: 0.1, MaxEjectionPercent: 10,
	}
}

func (f *outlierFleet) run(d time.Duration) {
	for ; d > 0; d -= time.Second {
		for i, k := range f.keys {
			b := f.h.br(k)
			for range 20 {
				pm, ok := b.Allow()
				if !ok {
					continue
				}
				out := Success
				if fails(f.failing[i], f.n[i]) {
					out = Failure
				}
				f.n[i]++
				pm.Done(out, 0)
			}
		}
		f.h.clk.Advance(time.Second)
	}
}

func fails(per10, n int) bool {
	p := n % 10
	if per10 <= 3 {
		return p%3 == 0 && p/3 < per10
	}
	return p < per10
}

func TestFailsPattern(t *testing.T) {
	for _, per10 := range []int{0, 1, 3, 9} {
		n, run, longest := 0, 0, 0
		for i := range 1000 {
			if fails(per10, i) {
				n++
				run++
				longest = max(longest, run)
			} else {
				run = 0
			}
		}
		assert.Equal(t, per10*100, n, "%d in 10", per10)
		if per10 <= 3 {
			assert.LessOrEqual(t, longest, 1, "never two failures in a row")
		}
	}
}

func (f *outlierFleet) states() []string {
	out := make([]string, len(f.keys))
	for i, k := range f.keys {
		out[i] = f.h.br(k).Admission().String()
	}
	return out
}

func repeat(s string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = s
	}
	return out
}

// TestOutlierOneOfTenEjected: 10 backends, one failing 30% of its calls
// (never 5 in a row, so consecutive_failures and failure_ratio 0.5 never
// trip it) is ejected by success rate within two intervals, alone; it
// returns after base_ejection_time and, still bad, is ejected again for
// twice as long.
func TestOutlierOneOfTenEjected(t *testing.T) {
	f := newOutlierFleet(t, 10, nil)
	f.failing[3] = 3 // 30%
	f.run(20 * time.Second)
	want := repeat("closed", 10)
	want[3] = "open"
	require.Equal(t, want, f.states(), "ejected within two intervals, the others stay")
	snap := f.h.br(f.keys[3]).Snapshot(mono(f.h.clk), f.h.clk.Now())
	assert.Equal(t, reasonOutlierSuccessRate, snap.LastReason)
	assert.Equal(t, Ejected, snap.Machine)
	assert.Contains(t, f.h.transitions(), "closed>open:outlier_success_rate")
	assert.Equal(t, []string{f.keys[3]}, f.h.c.OpenKeys(), "reported like any open key")

	// Ejected at 10s or 20s, for base_ejection_time (30s): back by 50s.
	f.run(30 * time.Second)
	assert.Contains(t, f.h.transitions(), "open>closed:ejection_elapsed")
	f.run(20 * time.Second)
	require.Equal(t, "open", f.h.br(f.keys[3]).Admission().String(), "still bad: ejected again")
	f.h.br(f.keys[3]).mu.Lock()
	left := time.Duration(f.h.br(f.keys[3]).openUntil - mono(f.h.clk))
	f.h.br(f.keys[3]).mu.Unlock()
	assert.Greater(t, left, 30*time.Second, "the second ejection lasts 2 x base_ejection_time")
	assert.LessOrEqual(t, left, 60*time.Second)
	for i, s := range f.states() {
		if i != 3 {
			assert.Equal(t, "closed", s, f.keys[i])
		}
	}
}

// TestOutlierAllEquallyBadNoneEjected: when every backend fails 30%, none
// is worse than its peers: nothing is ejected.
func TestOutlierAllEquallyBadNoneEjected(t *testing.T) {
	f := newOutlierFleet(t, 10, nil)
	for i := range f.failing {
		f.failing[i] = 3
	}
	f.run(60 * time.Second)
	assert.Equal(t, repeat("closed", 10), f.states())
	assert.Empty(t, f.h.transitions())
}

// TestOutlierTooFewHosts: 3 backends are fewer than minimum_hosts (5):
// even a clearly worse one is not ejected.
func TestOutlierTooFewHosts(t *testing.T) {
	f := newOutlierFleet(t, 3, nil)
	f.failing[0] = 3
	f.run(60 * time.Second)
	assert.Equal(t, repeat("closed", 3), f.states())
	assert.Empty(t, f.h.transitions())
}

// TestOutlierFailurePercentageAndCap: failure-percentage ejection (here
// the only one enforced) ejects keys with >= threshold% failures, but never
// more than max_ejection_percent of the group at once (one at least).
func TestOutlierFailurePercentageAndCap(t *testing.T) {
	f := newOutlierFleet(t, 10, func(p *Policy, od *OutlierConfig) {
		p.ConsecutiveFailures, p.FailureRatio = 0, 0
		od.EnforcingSuccessRate = 0
		od.EnforcingFailurePercentage = 100
	})
	f.failing[1], f.failing[4], f.failing[7] = 9, 9, 9 // 90%
	f.run(10 * time.Second)
	open := 0
	for _, s := range f.states() {
		if s == "open" {
			open++
		}
	}
	assert.Equal(t, 1, open, "10% of 10 keys")
	assert.Contains(t, f.h.transitions(), "closed>open:outlier_failure_percentage")
}

// TestOutlierGroups: keys are judged only against their own group; keys in
// no group are not judged.
func TestOutlierGroups(t *testing.T) {
	f := newOutlierFleet(t, 10, func(_ *Policy, od *OutlierConfig) {
		od.Groups = []string{"backend-?:4317"}
	})
	for i := range 10 {
		f.keys = append(f.keys, fmt.Sprintf("other-%d:4317", i))
		f.failing = append(f.failing, 0)
		f.n = append(f.n, 0)
	}
	f.failing[13] = 3 // bad, but in no group
	f.failing[2] = 3
	f.run(20 * time.Second)
	want := repeat("closed", 20)
	want[2] = "open"
	assert.Equal(t, want, f.states())
}
