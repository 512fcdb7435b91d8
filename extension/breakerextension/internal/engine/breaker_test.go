// Copyright The otelcsp Authors
// SPDX-License-Identifier: Apache-2.0

package engine

import (
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestConsecutiveFailuresTrip(t *testing.T) {
	h := newHarness(t, testPolicy())
	b := h.br("a")
	for range 4 {
		call(t, b, Failure)
	}
	assert.Equal(t, AdmitAll, b.Admission())
	call(t, b, Success) // a success resets the run
	for range 4 {
		call(t, b, Failure)
	}
	assert.Equal(t, AdmitAll, b.Admission())
	call(t, b, Failure)
	assert.Equal(t, AdmitNone, b.Admission())
	_, ok := b.Allow()
	assert.False(t, ok)
	assert.Equal(t, []string{"closed>open:consecutive_failures"}, h.transitions())
}

func TestFullCycle(t *testing.T) {
	p := testPolicy()
	p.HalfOpenPermits = 2
	p.SuccessThreshold = 2
	h := newHarness(t, p)
	b := h.br("a")
	trip(t, b)
	require.Equal(t, AdmitNone, b.Admission())
	h.clk.Advance(999 * time.Millisecond)
	require.Equal(t, AdmitNone, b.Admission())
	h.clk.Advance(time.Millisecond)
	require.Equal(t, AdmitProbes, b.Admission())

	p1, ok := b.Allow()
	require.True(t, ok)
	p2, ok := b.Allow()
	require.True(t, ok)
	_, ok = b.Allow()
	require.False(t, ok, "third probe exceeds half_open_permits")
	p1.Done(Success, 0)
	assert.Equal(t, AdmitProbes, b.Admission())
	p3, ok := b.Allow() // p1's slot is free again
	require.True(t, ok)
	p2.Done(Success, 0)
	assert.Equal(t, AdmitAll, b.Admission())
	p3.Done(Failure, 0) // from the half-open generation: ignored
	assert.Equal(t, AdmitAll, b.Admission())
	assert.Equal(t, int64(0), b.consec.Load())
	assert.Equal(t, []string{
		"closed>open:consecutive_failures",
		"open>half_open:open_duration_elapsed",
		"half_open>closed:success_threshold",
	}, h.transitions())
}

func TestProbeFailureReopensAndBackoffGrowsToCap(t *testing.T) {
	p := testPolicy()
	p.OpenDuration = time.Second
	p.MaxOpenDuration = 10 * time.Second
	p.BackoffMultiplier = 2
	h := newHarness(t, p)
	b := h.br("a")
	trip(t, b)
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 10 * time.Second, 10 * time.Second}
	for i, d := range want {
		require.Equal(t, AdmitNone, b.Admission(), "round %d", i)
		h.clk.Advance(d - time.Millisecond)
		require.Equal(t, AdmitNone, b.Admission(), "round %d: opened for less than %v", i, d)
		h.clk.Advance(time.Millisecond)
		require.Equal(t, AdmitProbes, b.Admission(), "round %d: still open after %v", i, d)
		call(t, b, Failure) // the probe fails
	}
}

func TestBackoffResetsAfterLongClose(t *testing.T) {
	p := testPolicy()
	p.MaxOpenDuration = 5 * time.Second
	h := newHarness(t, p)
	b := h.br("a")
	tripOpen := func() {
		trip(t, b)
		require.Equal(t, AdmitNone, b.Admission())
	}
	tripOpen()
	h.clk.Advance(time.Second)
	call(t, b, Failure) // probe fails: level 2 → 2s
	h.clk.Advance(2 * time.Second)
	call(t, b, Success) // closes
	require.Equal(t, AdmitAll, b.Admission())
	tripOpen() // soon after closing: keeps growing (4s)
	h.clk.Advance(3 * time.Second)
	require.Equal(t, AdmitNone, b.Admission())
	h.clk.Advance(time.Second)
	call(t, b, Success)
	require.Equal(t, AdmitAll, b.Admission())
	h.clk.Advance(5 * time.Second) // stays closed for max_open_duration
	tripOpen()
	h.clk.Advance(time.Second) // back to open_duration
	assert.Equal(t, AdmitProbes, b.Admission())
}

func TestJitterBounds(t *testing.T) {
	p := testPolicy()
	p.Jitter = 0.5
	p.OpenDuration = time.Second
	p.MaxOpenDuration = 4 * time.Second
	h := newHarness(t, p)
	for i := range 200 {
		b := h.br("k" + string(rune('a'+i%26)) + string(rune('a'+i/26)))
		trip(t, b)
		b.mu.Lock()
		d := time.Duration(b.openUntil - mono(h.clk))
		b.mu.Unlock()
		require.GreaterOrEqual(t, d, 500*time.Millisecond)
		require.LessOrEqual(t, d, time.Second)
	}
	// The capped duration is jittered below the cap, never above.
	b := h.br("capped")
	trip(t, b)
	seen := map[time.Duration]bool{}
	for range 20 {
		b.mu.Lock()
		until := b.openUntil
		b.mu.Unlock()
		h.clk.Advance(time.Duration(until - mono(h.clk)))
		require.Equal(t, AdmitProbes, b.Admission())
		call(t, b, Failure)
		b.mu.Lock()
		d := time.Duration(b.openUntil - mono(h.clk))
		b.mu.Unlock()
		require.LessOrEqual(t, d, 4*time.Second)
		require.Greater(t, d, 0*time.Second)
		seen[d] = true
	}
	assert.Greater(t, len(seen), 5, "jitter should vary durations")
}

func TestFailureRatioOverSlidingWindow(t *testing.T) {
	p := testPolicy()
	p.ConsecutiveFailures = 0
	p.FailureRatio = 0.5
	p.MinCalls = 10
	p.Window = 10 * time.Second
	p.WindowBuckets = 10
	h := newHarness(t, p)
	b := h.br("a")
	// 4 failures and 5 successes: 9 calls < min_calls, no trip.
	for i := range 9 {
		if i%2 == 0 {
			call(t, b, Failure)
		} else {
			call(t, b, Success)
		}
	}
	require.Equal(t, AdmitAll, b.Admission())
	// Let them slide out of the window, then the ratio starts afresh.
	h.clk.Advance(11 * time.Second)
	for range 9 {
		call(t, b, Success)
	}
	call(t, b, Failure) // 1/10
	require.Equal(t, AdmitAll, b.Admission())
	for range 8 {
		call(t, b, Failure)
	}
	require.Equal(t, AdmitNone, b.Admission(), "9 failures of 18 calls reach 0.5")
	assert.Equal(t, []string{"closed>open:failure_ratio"}, h.transitions())
}

func TestSlowCallRatio(t *testing.T) {
	p := testPolicy()
	p.SlowCallDuration = 100 * time.Millisecond
	p.SlowCallRatio = 0.5
	p.MinCalls = 4
	h := newHarness(t, p)
	b := h.br("a")
	fast := func() { call(t, b, Success) }
	slow := func() {
		pm, ok := b.Allow()
		require.True(t, ok)
		h.clk.Advance(150 * time.Millisecond)
		pm.Done(Success, 0)
	}
	fast()
	fast()
	slow()
	require.Equal(t, AdmitAll, b.Admission())
	slow()
	require.Equal(t, AdmitNone, b.Admission())
	assert.Equal(t, []string{"closed>open:slow_call_ratio"}, h.transitions())
}

func TestStallDetection(t *testing.T) {
	h := stallHarness(t, func(p *Policy) {
		p.ConsecutiveFailures = 3
	})
	b := h.br("blackhole")
	// advance moves the clock while other calls keep finishing: the backend
	// is alive, so only the number of stuck calls can trip it.
	advance := func(d time.Duration) {
		for step := 20 * time.Millisecond; d > 0; d -= step {
			h.clk.Advance(min(step, d))
			if pm, ok := b.Allow(); ok {
				pm.Done(Success, 0)
			}
		}
	}
	// Two calls hang: fewer than consecutive_failures, no trip.
	p1, _ := b.Allow()
	p2, _ := b.Allow()
	advance(time.Second)
	require.Equal(t, AdmitAll, b.Admission())
	assert.Equal(t, int64(2), b.stalled(mono(h.clk)))
	// A third one: as soon as it is in flight past slow_call_duration, trip.
	p3, _ := b.Allow()
	advance(100 * time.Millisecond)
	require.Equal(t, AdmitAll, b.Admission(), "100ms is not yet past 100ms at cohort precision")
	advance(60 * time.Millisecond)
	require.Equal(t, AdmitNone, b.Admission())
	assert.Equal(t, []string{"closed>open:stall"}, h.transitions())
	// They finish late: in-flight accounting returns to zero.
	p1.Done(Failure, 0)
	p2.Done(Success, 0)
	p3.Done(Failure, 0)
	assert.Equal(t, int64(0), b.stalled(mono(h.clk)))
	assert.Equal(t, int64(0), b.ancient.Load())
}

// A frozen backend finishes nothing: one call stuck past slow_call_duration
// is enough, however few calls are in flight (a queue sending one batch at
// a time never has consecutive_failures of them).
func TestStallOfFrozenBackend(t *testing.T) {
	h := stallHarness(t, func(p *Policy) {
		p.ConsecutiveFailures = 5
	})
	b := h.br("frozen")
	call(t, b, Success)
	h.clk.Advance(time.Second)
	stuck, _ := b.Allow()
	h.clk.Advance(100 * time.Millisecond)
	require.Equal(t, AdmitAll, b.Admission(), "not yet past slow_call_duration at cohort precision")
	h.clk.Advance(60 * time.Millisecond)
	require.Equal(t, AdmitNone, b.Admission())
	assert.Equal(t, []string{"closed>open:stall"}, h.transitions())
	stuck.Done(Failure, 0)
}

func TestStalledCallsWeighInSlowRatio(t *testing.T) {
	h := stallHarness(t, func(p *Policy) {
		p.SlowCallRatio = 0.5
		p.MinCalls = 4
		p.ConsecutiveFailures = 0
	})
	b := h.br("a")
	call(t, b, Success)
	call(t, b, Success)
	_, _ = b.Allow()
	_, _ = b.Allow()
	h.clk.Advance(200 * time.Millisecond)
	assert.Equal(t, AdmitNone, b.Admission(), "2 stalled of 4 reaches 0.5")
}

func TestRampUp(t *testing.T) {
	h := newHarness(t, testPolicy(), func(c *Config) { c.Default.RampUp = 10 * time.Second })
	b := h.br("a")
	toHalfOpen(t, h, b)
	call(t, b, Success) // the probe closes it
	require.Equal(t, AdmitAll, b.Admission())
	admitted := func(n int) int {
		n2 := 0
		for range n {
			if pm, ok := b.Allow(); ok {
				n2++
				pm.Done(Success, 0)
			}
		}
		return n2
	}
	assert.Equal(t, 0, admitted(100), "right after closing nothing is admitted")
	h.clk.Advance(2500 * time.Millisecond)
	assert.InDelta(t, 25, admitted(100), 2)
	h.clk.Advance(5 * time.Second)
	assert.InDelta(t, 75, admitted(100), 2)
	h.clk.Advance(2500 * time.Millisecond)
	assert.Equal(t, 100, admitted(100))
	assert.Equal(t, Closed, wordState(b.word.Load()), "ramp done: back on the fast path")
}

func TestIgnoredProbeFreesItsSlot(t *testing.T) {
	h := newHarness(t, testPolicy())
	b := h.br("a")
	toHalfOpen(t, h, b)
	call(t, b, Ignored)
	require.Equal(t, AdmitProbes, b.Admission())
	call(t, b, Success)
	require.Equal(t, AdmitAll, b.Admission())
}

func TestStalePermitsDoNotCount(t *testing.T) {
	h := newHarness(t, testPolicy())
	b := h.br("a")
	old := make([]Permit, 0, 10)
	for range 10 {
		pm, ok := b.Allow()
		require.True(t, ok)
		old = append(old, pm)
	}
	for _, pm := range old[:5] {
		pm.Done(Failure, 0)
	}
	require.Equal(t, AdmitNone, b.Admission())
	h.clk.Advance(time.Second)
	call(t, b, Success)
	require.Equal(t, AdmitAll, b.Admission())
	for _, pm := range old[5:] {
		pm.Done(Failure, 0) // from before the trip: must not re-open it
	}
	assert.Equal(t, AdmitAll, b.Admission())
	var zero Permit
	zero.Done(Failure, 0) // no-op
}

func TestManualStates(t *testing.T) {
	h := newHarness(t, testPolicy())
	b := h.br("a")

	require.NoError(t, h.c.SetManual("a", ManualForcedOpen))
	assert.Equal(t, AdmitNone, b.Admission())
	_, ok := b.Allow()
	require.False(t, ok)

	require.NoError(t, h.c.SetManual("a", ManualDisabled))
	assert.Equal(t, AdmitAll, b.Admission())
	for range 10 {
		call(t, b, Failure) // not recorded by the machine
	}
	assert.Equal(t, Closed, wordState(b.word.Load()))

	require.NoError(t, h.c.SetManual("a", ManualMetricsOnly))
	trip(t, b)
	assert.Equal(t, Open, wordState(b.word.Load()), "the shadow machine tripped")
	assert.Equal(t, AdmitAll, b.Admission(), "callers still see closed")
	rejectedBefore := b.nRejected.Load()
	call(t, b, Success) // admitted although the machine is open
	assert.Equal(t, rejectedBefore+1, b.nRejected.Load(), "shadow rejection is counted")
	snap := b.Snapshot(mono(h.clk), h.clk.Now())
	assert.Equal(t, Open, snap.Machine)
	assert.Equal(t, AdmitAll, snap.Admission)
	assert.Equal(t, ManualMetricsOnly, snap.Manual)
	require.False(t, snap.NextProbe.IsZero())

	require.NoError(t, h.c.SetManual("a", ManualNone))
	assert.Equal(t, AdmitNone, b.Admission(), "back to automatic: the machine's state shows")
	_, ok = b.Allow()
	require.False(t, ok)

	h.mu.Lock()
	defer h.mu.Unlock()
	var shadow, manual int
	for _, e := range h.events {
		if e.Shadow {
			shadow++
		}
		if len(e.Reason) > 7 && e.Reason[:7] == "manual:" {
			manual++
		}
	}
	assert.Equal(t, 1, shadow, "the metrics_only trip is a shadow change")
	assert.Equal(t, 4, manual)
}

func TestManualStatesFromConfig(t *testing.T) {
	h := newHarness(t, testPolicy(), func(c *Config) {
		c.Manual = map[string]Manual{"canary-*": ManualForcedOpen, "*": ManualMetricsOnly}
	})
	assert.Equal(t, AdmitNone, h.br("canary-1").Admission())
	b := h.br("other")
	for range 10 {
		call(t, b, Failure)
	}
	assert.Equal(t, AdmitAll, b.Admission())
}

func TestSubscribersInOrderOutsideLocks(t *testing.T) {
	h := newHarness(t, testPolicy())
	b := h.br("a")
	var seen []string
	// A subscriber that calls back into the breaker (State takes its lock;
	// SetManual causes a nested change): must neither deadlock nor
	// reorder.
	h.c.Subscribe(func(ch Change) {
		seen = append(seen, ch.To.String()+"/"+b.Admission().String())
		if ch.To == AdmitNone && ch.Reason == "consecutive_failures" {
			require.NoError(t, h.c.SetManual("a", ManualForcedOpen))
		}
	})
	trip(t, b)
	assert.Equal(t, []string{"open/open", "open/open"}, seen)
	assert.Equal(t, []string{"closed>open:consecutive_failures", "open>open:manual:forced_open"}, h.transitions())
}

func TestGenerationOnlyGrows(t *testing.T) {
	h := newHarness(t, testPolicy())
	b := h.br("a")
	var last uint64
	h.c.Subscribe(func(ch Change) {
		if ch.Reason[:min(len(ch.Reason), 6)] != "manual" {
			assert.Greater(t, ch.Generation, last)
		}
		last = ch.Generation
	})
	for range 3 {
		trip(t, b)
		h.clk.Advance(time.Minute)
		call(t, b, Success)
	}
	assert.Equal(t, uint64(10), last, "three cycles of three transitions from generation 1")
}

func TestIdleExpiry(t *testing.T) {
	h := newHarness(t, testPolicy(), func(c *Config) { c.IdleExpiry = time.Minute })
	h.c.Start()
	defer h.c.Stop()
	keep := h.br("keep")
	gone := h.br("gone")
	call(t, gone, Success)
	call(t, gone, Failure)
	opened := h.br("opened")
	trip(t, opened)
	require.NoError(t, h.c.SetManual("manual", ManualForcedOpen))
	for range 6 {
		call(t, keep, Success)
		h.clk.Advance(30 * time.Second)
	}
	_, ok := h.c.breakers.Load("gone")
	assert.False(t, ok, "unused key is forgotten")
	_, ok = h.c.breakers.Load("keep")
	assert.True(t, ok)
	_, ok = h.c.breakers.Load("manual")
	assert.True(t, ok, "manual states are kept")
	_, ok = h.c.breakers.Load("opened")
	assert.False(t, ok, "an idle tripped key is forgotten too")
	assert.Equal(t, uint64(1+5), h.c.retired.failure.Load(), "forgotten counts stay in the totals")
	assert.Equal(t, uint64(1+6), h.c.Totals().Success)

	// A holder of the forgotten breaker uses it again: it comes back.
	call(t, gone, Success)
	v, ok := h.c.breakers.Load("gone")
	require.True(t, ok)
	assert.Same(t, gone, v.(*Breaker))
	assert.Zero(t, gone.word.Load()&flagDetached)
	assert.Equal(t, int64(3), h.c.count.Load())
}

func TestPolicyByGlob(t *testing.T) {
	h := newHarness(t, testPolicy(), func(c *Config) {
		strict := c.Default
		strict.ConsecutiveFailures = 1
		lax := c.Default
		lax.ConsecutiveFailures = 100
		c.Policies = map[string]Policy{"strict": strict, "lax": lax}
		c.Keys = map[string]string{"*:4317": "lax", "critical-*:4317": "strict"}
	})
	assert.Equal(t, "strict", h.br("critical-1:4317").p.name)
	assert.Equal(t, "lax", h.br("x:4317").p.name)
	assert.Equal(t, "default", h.br("x:4318").p.name)
	call(t, h.br("critical-1:4317"), Failure)
	assert.Equal(t, AdmitNone, h.br("critical-1:4317").Admission())
}

// TestPolicyGlobWithStarInKey: a key may contain `*`; the glob's star is
// still a wildcard (`a*c` used not to match `a*bc`). Globs are the module's
// one matcher (internal/glob); `?` is one character, and brackets are
// literal (IPv6 endpoints).
func TestPolicyGlobWithStarInKey(t *testing.T) {
	h := newHarness(t, testPolicy(), func(c *Config) {
		strict := c.Default
		strict.ConsecutiveFailures = 1
		c.Policies = map[string]Policy{"strict": strict}
		c.Keys = map[string]string{"a*c": "strict", "[::1]:43?7": "strict", "caf?:4317": "strict"}
	})
	assert.Equal(t, "strict", h.br("a*bc").p.name)
	assert.Equal(t, "strict", h.br("abc").p.name)
	assert.Equal(t, "default", h.br("a*b").p.name)
	assert.Equal(t, "strict", h.br("[::1]:4317").p.name)
	assert.Equal(t, "default", h.br("1:4317").p.name)
	assert.Equal(t, "strict", h.br("café:4317").p.name)
}

func TestLostProbeTimesOut(t *testing.T) {
	p := testPolicy()
	p.MaxOpenDuration = 10 * time.Second
	h := newHarness(t, p)
	b := h.br("a")
	toHalfOpen(t, h, b)
	lost, ok := b.Allow() // a probe whose Done never comes
	require.True(t, ok)
	_, ok = b.Allow()
	require.False(t, ok)
	h.clk.Advance(10*time.Second - time.Millisecond)
	require.Equal(t, AdmitProbes, b.Admission())
	h.clk.Advance(time.Millisecond)
	require.Equal(t, AdmitNone, b.Admission())
	h.clk.Advance(2 * time.Second) // backoff level 1: 2s
	require.Equal(t, AdmitProbes, b.Admission())
	call(t, b, Success)
	assert.Equal(t, AdmitAll, b.Admission())
	lost.Done(Success, 0) // very late: ignored
	assert.Equal(t, 0, h.clk.PendingTimers(), "closing stopped the half-open timer")
}

func TestPanickingSubscriberDoesNotBreakDelivery(t *testing.T) {
	h := newHarness(t, testPolicy())
	unsub := h.c.Subscribe(func(Change) { panic("subscriber bug") })
	b := h.br("a")
	trip(t, b)
	assert.Equal(t, AdmitNone, b.Admission())
	unsub()
	h.clk.Advance(time.Second)
	assert.Equal(t, []string{"closed>open:consecutive_failures", "open>half_open:open_duration_elapsed"}, h.transitions(),
		"later subscribers still got every change")
}

func TestCallsHungBeforeCloseDoNotRetrip(t *testing.T) {
	h := stallHarness(t, func(p *Policy) {
		p.ConsecutiveFailures = 3
	})
	b := h.br("a")
	var hung []Permit
	for range 3 {
		pm, ok := b.Allow()
		require.True(t, ok)
		hung = append(hung, pm)
	}
	h.clk.Advance(200 * time.Millisecond)
	require.Equal(t, AdmitNone, b.Admission(), "tripped on stall")
	h.clk.Advance(time.Second)
	call(t, b, Success) // the probe is fine: closed
	require.Equal(t, AdmitAll, b.Admission())
	h.clk.Advance(5 * time.Second) // the old calls are still hung (now ancient)
	assert.Equal(t, AdmitAll, b.Admission(), "calls hung before the close must not re-trip it")
	assert.Equal(t, int64(0), b.stalled(mono(h.clk)))
	hung[0].Done(Failure, 0) // one old call gives up
	// New calls hang after the close: those count.
	for range 3 {
		_, ok := b.Allow()
		require.True(t, ok)
	}
	h.clk.Advance(160 * time.Millisecond)
	assert.Equal(t, AdmitNone, b.Admission())
	// Long after, the new ones still count and the remaining old ones do not.
	assert.Equal(t, int64(3), b.stalled(mono(h.clk)+int64(10*time.Second)))
}

func TestStalledProbeReopens(t *testing.T) {
	h := stallHarness(t, func(p *Policy) {
		p.MaxOpenDuration = time.Minute
	})
	b := h.br("a")
	toHalfOpen(t, h, b)
	require.Equal(t, AdmitProbes, b.Admission())
	h.clk.Advance(time.Second) // half-open with no probe: nothing stalls
	require.Equal(t, AdmitProbes, b.Admission())
	probe, ok := b.Allow()
	require.True(t, ok)
	h.clk.Advance(100 * time.Millisecond)
	require.Equal(t, AdmitProbes, b.Admission())
	h.clk.Advance(60 * time.Millisecond)
	require.Equal(t, AdmitNone, b.Admission(), "a probe stuck past slow_call_duration reopens it long before max_open_duration")
	assert.Equal(t, "half_open>open:probe_stalled", h.transitions()[len(h.transitions())-1])
	probe.Done(Success, 0) // late: ignored
	assert.Equal(t, AdmitNone, b.Admission())
}

// TestTrippedIdleBreakerDoesNotCycle: a breaker that tripped and then gets
// no calls goes half-open once and waits there for a call; it does not
// reopen for want of a probe nobody asked for (it used to cycle open →
// half_open → open all hour, two log lines and a status flip each time).
func TestTrippedIdleBreakerDoesNotCycle(t *testing.T) {
	p := testPolicy()
	p.MaxOpenDuration = 10 * time.Second
	h := newHarness(t, p, func(c *Config) { c.IdleExpiry = 2 * time.Hour })
	h.c.Start()
	defer h.c.Stop()
	b := h.br("gone-pod:4317")
	trip(t, b)
	for range 60 {
		h.clk.Advance(time.Minute)
	}
	tr := h.transitions()
	require.Len(t, tr, 2, "transitions in an idle hour, first ones: %v", tr[:min(len(tr), 6)])
	assert.Equal(t, []string{"closed>open:consecutive_failures", "open>half_open:open_duration_elapsed"}, tr)
	assert.Equal(t, AdmitProbes, b.Admission())
	assert.Empty(t, h.c.OpenKeys())
	assert.Equal(t, 2, h.clk.PendingTimers(), "no breaker timer pending, only the coarse and idle tickers")
	// The first call after the idle hour is the probe.
	call(t, b, Success)
	assert.Equal(t, AdmitAll, b.Admission())
}

// TestIdleExpiryForgetsEveryAutomaticState: keys unused for idle_expiry are
// forgotten whatever their automatic state (a pod that disappeared while
// its breaker was open leaves nothing behind); manual ones are kept, and an
// open breaker that keeps refusing calls is in use.
func TestIdleExpiryForgetsEveryAutomaticState(t *testing.T) {
	p := testPolicy()
	p.OpenDuration = 10 * time.Minute
	p.MaxOpenDuration = 10 * time.Minute
	h := newHarness(t, p, func(c *Config) {
		c.IdleExpiry = time.Minute
		short := c.Default
		short.OpenDuration = time.Second
		c.Policies = map[string]Policy{"short": short}
		c.Keys = map[string]string{"half*": "short"}
	})
	h.c.Start()
	defer h.c.Stop()
	tripKey := func(key string) *Breaker {
		b := h.br(key)
		trip(t, b)
		return b
	}
	open, idleOpen, half := tripKey("open"), tripKey("idle-open"), tripKey("half")
	require.NoError(t, h.c.SetManual("forced", ManualForcedOpen))
	for range 9 {
		h.clk.Advance(20 * time.Second)
		_, ok := open.Allow()
		require.False(t, ok)
	}
	assert.Equal(t, AdmitAll, idleOpen.Admission(), "forgotten within its open_duration: a new key")
	_, ok := h.c.breakers.Load("open")
	assert.True(t, ok, "an open breaker that keeps refusing calls is in use")
	for _, k := range []string{"idle-open", "half"} {
		_, ok := h.c.breakers.Load(k)
		assert.False(t, ok, "idle %s breaker forgotten", k)
	}
	_, ok = h.c.breakers.Load("forced")
	assert.True(t, ok, "manual states are kept")
	assert.Equal(t, []string{"forced", "open"}, h.c.OpenKeys(), "forgotten keys leave the open set")
	assert.Equal(t, uint64(15), h.c.Totals().Failure, "forgotten counts stay in the totals")
	assert.Contains(t, h.transitions(), "open>closed:idle_expiry")
	assert.Contains(t, h.transitions(), "half_open>closed:idle_expiry")
	// A holder of a forgotten breaker starts afresh, as a new key would.
	assert.Equal(t, AdmitAll, half.Admission())
	call(t, half, Success)
	v, ok := h.c.breakers.Load("half")
	require.True(t, ok)
	assert.Same(t, half, v.(*Breaker))
	assert.Equal(t, uint64(1), half.nSuccess.Load())
	assert.Zero(t, half.nFailure.Load())
	snap := half.Snapshot(mono(h.clk), h.clk.Now())
	assert.Zero(t, snap.Trips)
}

// TestForgottenHeldBreakerStaysTheKeysBreaker: after the sweeper forgot a
// key whose breaker a caller still holds (the fanout keeps one per
// backend), everything that looks the key up again (SetManual over
// HTTP or the API, Provider.Breaker, the endpoint, metrics) finds that same
// breaker, never a second one.
func TestForgottenHeldBreakerStaysTheKeysBreaker(t *testing.T) {
	h := newHarness(t, testPolicy(), func(c *Config) { c.IdleExpiry = time.Minute })
	h.c.Start()
	defer h.c.Stop()
	held := h.c.Get("backend:4317")
	call(t, held, Success)
	h.clk.Advance(3 * time.Minute)
	_, ok := h.c.breakers.Load("backend:4317")
	require.False(t, ok, "idle: forgotten")

	require.NoError(t, h.c.SetManual("backend:4317", ManualForcedOpen))
	assert.Same(t, held, h.c.Get("backend:4317"))
	_, ok = held.Allow()
	require.False(t, ok, "the operator's forced_open reaches the breaker the caller holds")
	snaps := h.c.Snapshots()
	require.Len(t, snaps, 1)
	assert.Equal(t, ManualForcedOpen, snaps[0].Manual)
	assert.Equal(t, int64(1), h.c.count.Load())

	// Forgotten again and used again by its holder first: still one breaker.
	require.NoError(t, h.c.SetManual("backend:4317", ManualNone))
	h.clk.Advance(3 * time.Minute)
	_, ok = h.c.breakers.Load("backend:4317")
	require.False(t, ok)
	call(t, held, Success)
	assert.Same(t, held, h.c.Get("backend:4317"))
	assert.Equal(t, int64(1), h.c.count.Load())
}

// TestForgottenUnheldBreakerIsReleased: once nothing holds a forgotten
// breaker, the registry keeps nothing of it.
func TestForgottenUnheldBreakerIsReleased(t *testing.T) {
	h := newHarness(t, testPolicy(), func(c *Config) { c.IdleExpiry = time.Minute })
	h.c.Start()
	defer h.c.Stop()
	func() { call(t, h.c.Get("gone:4317"), Failure) }()
	h.clk.Advance(3 * time.Minute)
	runtime.GC()
	h.clk.Advance(time.Minute)
	h.c.regMu.Lock()
	n := len(h.c.detached)
	h.c.regMu.Unlock()
	assert.Zero(t, n)
	assert.Zero(t, h.c.count.Load())
}
