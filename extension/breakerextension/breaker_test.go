// Copyright The otelcsp Authors
// SPDX-License-Identifier: Apache-2.0

package breakerextension

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/otelcsp/otelcsp/internal/clock/clocktest"
)

var errBackend = status.Error(codes.Unavailable, "backend down")

// testPolicy is deterministic: no jitter, ratios off unless a test sets them.
func testPolicy() PolicyConfig {
	p := defaultPolicy()
	p.Jitter = 0
	p.FailureRatio = 0
	p.SlowCallRatio = 0
	p.SuccessThreshold = 1
	return p
}

type harness struct {
	t      *testing.T
	clk    *clocktest.Fake
	c      *core
	mu     sync.Mutex
	events []StateChange
}

func newHarness(t *testing.T, p PolicyConfig, mutate ...func(*Config)) *harness {
	t.Helper()
	cfg := createDefaultConfig()
	cfg.PolicyConfig = p
	for _, m := range mutate {
		m(cfg)
	}
	require.NoError(t, cfg.Validate())
	h := &harness{t: t, clk: newFakeClock()}
	h.c = newCore(cfg, h.clk, zap.NewNop(), 42)
	h.c.Subscribe(func(ch StateChange) {
		h.mu.Lock()
		h.events = append(h.events, ch)
		h.mu.Unlock()
	})
	return h
}

func (h *harness) br(key string) *breaker { return h.c.get(key) }

func (h *harness) transitions() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]string, 0, len(h.events))
	for _, e := range h.events {
		out = append(out, e.From.String()+">"+e.To.String()+":"+e.Reason)
	}
	return out
}

// call makes one call with the given outcome.
func call(t *testing.T, b Breaker, err error) {
	t.Helper()
	p, aerr := b.Allow()
	require.NoError(t, aerr)
	p.Done(err)
}

func TestConsecutiveFailuresTrip(t *testing.T) {
	h := newHarness(t, testPolicy())
	b := h.br("a")
	for range 4 {
		call(t, b, errBackend)
	}
	assert.Equal(t, StateClosed, b.State())
	call(t, b, nil) // a success resets the run
	for range 4 {
		call(t, b, errBackend)
	}
	assert.Equal(t, StateClosed, b.State())
	call(t, b, errBackend)
	assert.Equal(t, StateOpen, b.State())
	_, err := b.Allow()
	assert.ErrorIs(t, err, ErrOpen)
	assert.Equal(t, []string{"closed>open:consecutive_failures"}, h.transitions())
}

func TestFullCycle(t *testing.T) {
	p := testPolicy()
	p.HalfOpenPermits = 2
	p.SuccessThreshold = 2
	h := newHarness(t, p)
	b := h.br("a")
	for range 5 {
		call(t, b, errBackend)
	}
	require.Equal(t, StateOpen, b.State())
	h.clk.Advance(999 * time.Millisecond)
	require.Equal(t, StateOpen, b.State())
	h.clk.Advance(time.Millisecond)
	require.Equal(t, StateHalfOpen, b.State())

	p1, err := b.Allow()
	require.NoError(t, err)
	p2, err := b.Allow()
	require.NoError(t, err)
	_, err = b.Allow()
	require.ErrorIs(t, err, ErrOpen, "third probe exceeds half_open_permits")
	p1.Done(nil)
	assert.Equal(t, StateHalfOpen, b.State())
	p3, err := b.Allow() // p1's slot is free again
	require.NoError(t, err)
	p2.Done(nil)
	assert.Equal(t, StateClosed, b.State())
	p3.Done(errBackend) // from the half-open generation: ignored
	assert.Equal(t, StateClosed, b.State())
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
	for range 5 {
		call(t, b, errBackend)
	}
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 10 * time.Second, 10 * time.Second}
	for i, d := range want {
		require.Equal(t, StateOpen, b.State(), "round %d", i)
		h.clk.Advance(d - time.Millisecond)
		require.Equal(t, StateOpen, b.State(), "round %d: opened for less than %v", i, d)
		h.clk.Advance(time.Millisecond)
		require.Equal(t, StateHalfOpen, b.State(), "round %d: still open after %v", i, d)
		call(t, b, errBackend) // the probe fails
	}
}

func TestBackoffResetsAfterLongClose(t *testing.T) {
	p := testPolicy()
	p.MaxOpenDuration = 5 * time.Second
	h := newHarness(t, p)
	b := h.br("a")
	trip := func() {
		for range 5 {
			call(t, b, errBackend)
		}
		require.Equal(t, StateOpen, b.State())
	}
	trip()
	h.clk.Advance(time.Second)
	call(t, b, errBackend) // probe fails: level 2 → 2s
	h.clk.Advance(2 * time.Second)
	call(t, b, nil) // closes
	require.Equal(t, StateClosed, b.State())
	trip() // soon after closing: keeps growing (4s)
	h.clk.Advance(3 * time.Second)
	require.Equal(t, StateOpen, b.State())
	h.clk.Advance(time.Second)
	call(t, b, nil)
	require.Equal(t, StateClosed, b.State())
	h.clk.Advance(5 * time.Second) // stays closed for max_open_duration
	trip()
	h.clk.Advance(time.Second) // back to open_duration
	assert.Equal(t, StateHalfOpen, b.State())
}

func TestJitterBounds(t *testing.T) {
	p := testPolicy()
	p.Jitter = 0.5
	p.OpenDuration = time.Second
	p.MaxOpenDuration = 4 * time.Second
	h := newHarness(t, p)
	for i := range 200 {
		b := h.br("k" + string(rune('a'+i%26)) + string(rune('a'+i/26)))
		for range 5 {
			call(t, b, errBackend)
		}
		b.mu.Lock()
		d := time.Duration(b.openUntil - mono(h.clk))
		b.mu.Unlock()
		require.GreaterOrEqual(t, d, 500*time.Millisecond)
		require.LessOrEqual(t, d, time.Second)
	}
	// The capped duration is jittered below the cap, never above.
	b := h.br("capped")
	for range 5 {
		call(t, b, errBackend)
	}
	seen := map[time.Duration]bool{}
	for range 20 {
		b.mu.Lock()
		until := b.openUntil
		b.mu.Unlock()
		h.clk.Advance(time.Duration(until - mono(h.clk)))
		require.Equal(t, StateHalfOpen, b.State())
		call(t, b, errBackend)
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
			call(t, b, errBackend)
		} else {
			call(t, b, nil)
		}
	}
	require.Equal(t, StateClosed, b.State())
	// Let them slide out of the window, then the ratio starts afresh.
	h.clk.Advance(11 * time.Second)
	for range 9 {
		call(t, b, nil)
	}
	call(t, b, errBackend) // 1/10
	require.Equal(t, StateClosed, b.State())
	for range 8 {
		call(t, b, errBackend)
	}
	require.Equal(t, StateOpen, b.State(), "9 failures of 18 calls reach 0.5")
	assert.Equal(t, []string{"closed>open:failure_ratio"}, h.transitions())
}

func TestSlowCallRatio(t *testing.T) {
	p := testPolicy()
	p.SlowCallDuration = 100 * time.Millisecond
	p.SlowCallRatio = 0.5
	p.MinCalls = 4
	h := newHarness(t, p)
	b := h.br("a")
	fast := func() { call(t, b, nil) }
	slow := func() {
		pm, err := b.Allow()
		require.NoError(t, err)
		h.clk.Advance(150 * time.Millisecond)
		pm.Done(nil)
	}
	fast()
	fast()
	slow()
	require.Equal(t, StateClosed, b.State())
	slow()
	require.Equal(t, StateOpen, b.State())
	assert.Equal(t, []string{"closed>open:slow_call_ratio"}, h.transitions())
}

func TestStallDetection(t *testing.T) {
	p := testPolicy()
	p.SlowCallDuration = 100 * time.Millisecond
	p.ConsecutiveFailures = 3
	h := newHarness(t, p)
	h.c.start()
	defer h.c.stop()
	b := h.br("blackhole")
	// advance moves the clock while other calls keep finishing: the backend
	// is alive, so only the number of stuck calls can trip it.
	advance := func(d time.Duration) {
		for step := 20 * time.Millisecond; d > 0; d -= step {
			h.clk.Advance(min(step, d))
			if pm, err := b.Allow(); err == nil {
				pm.Done(nil)
			}
		}
	}
	// Two calls hang: fewer than consecutive_failures, no trip.
	p1, _ := b.Allow()
	p2, _ := b.Allow()
	advance(time.Second)
	require.Equal(t, StateClosed, b.State())
	assert.Equal(t, int64(2), b.stalled(mono(h.clk)))
	// A third one: as soon as it is in flight past slow_call_duration, trip.
	p3, _ := b.Allow()
	advance(100 * time.Millisecond)
	require.Equal(t, StateClosed, b.State(), "100ms is not yet past 100ms at cohort precision")
	advance(60 * time.Millisecond)
	require.Equal(t, StateOpen, b.State())
	assert.Equal(t, []string{"closed>open:stall"}, h.transitions())
	// They finish late: in-flight accounting returns to zero.
	p1.Done(errBackend)
	p2.Done(nil)
	p3.Done(context.DeadlineExceeded)
	assert.Equal(t, int64(0), b.stalled(mono(h.clk)))
	assert.Equal(t, int64(0), b.ancient.Load())
}

// A frozen backend finishes nothing: one call stuck past slow_call_duration
// is enough, however few calls are in flight (a queue sending one batch at
// a time never has consecutive_failures of them).
func TestStallOfFrozenBackend(t *testing.T) {
	p := testPolicy()
	p.SlowCallDuration = 100 * time.Millisecond
	p.ConsecutiveFailures = 5
	h := newHarness(t, p)
	h.c.start()
	defer h.c.stop()
	b := h.br("frozen")
	call(t, b, nil)
	h.clk.Advance(time.Second)
	stuck, _ := b.Allow()
	h.clk.Advance(100 * time.Millisecond)
	require.Equal(t, StateClosed, b.State(), "not yet past slow_call_duration at cohort precision")
	h.clk.Advance(60 * time.Millisecond)
	require.Equal(t, StateOpen, b.State())
	assert.Equal(t, []string{"closed>open:stall"}, h.transitions())
	stuck.Done(context.DeadlineExceeded)
}

func TestStalledCallsWeighInSlowRatio(t *testing.T) {
	p := testPolicy()
	p.SlowCallDuration = 100 * time.Millisecond
	p.SlowCallRatio = 0.5
	p.MinCalls = 4
	p.ConsecutiveFailures = 0
	h := newHarness(t, p)
	h.c.start()
	defer h.c.stop()
	b := h.br("a")
	call(t, b, nil)
	call(t, b, nil)
	_, _ = b.Allow()
	_, _ = b.Allow()
	h.clk.Advance(200 * time.Millisecond)
	assert.Equal(t, StateOpen, b.State(), "2 stalled of 4 reaches 0.5")
}

func TestRampUp(t *testing.T) {
	p := testPolicy()
	p.RampUp = 10 * time.Second
	h := newHarness(t, p)
	b := h.br("a")
	for range 5 {
		call(t, b, errBackend)
	}
	h.clk.Advance(time.Second)
	call(t, b, nil) // the probe closes it
	require.Equal(t, StateClosed, b.State())
	admitted := func(n int) int {
		ok := 0
		for range n {
			if pm, err := b.Allow(); err == nil {
				ok++
				pm.Done(nil)
			} else {
				require.ErrorIs(t, err, ErrOpen)
			}
		}
		return ok
	}
	assert.Equal(t, 0, admitted(100), "right after closing nothing is admitted")
	h.clk.Advance(2500 * time.Millisecond)
	assert.InDelta(t, 25, admitted(100), 2)
	h.clk.Advance(5 * time.Second)
	assert.InDelta(t, 75, admitted(100), 2)
	h.clk.Advance(2500 * time.Millisecond)
	assert.Equal(t, 100, admitted(100))
	assert.Zero(t, b.word.Load()&flagRamp, "ramp flag cleared: back on the fast path")
}

func TestThrottleHoldsOpen(t *testing.T) {
	p := testPolicy()
	p.MaxOpenDuration = 30 * time.Second
	h := newHarness(t, p)
	b := h.br("a")
	st, err := status.New(codes.ResourceExhausted, "slow down").WithDetails(retryInfo(7 * time.Second))
	require.NoError(t, err)
	call(t, b, st.Err())
	require.Equal(t, StateOpen, b.State(), "one throttle response opens it")
	h.clk.Advance(7*time.Second - time.Millisecond)
	require.Equal(t, StateOpen, b.State())
	h.clk.Advance(time.Millisecond)
	require.Equal(t, StateHalfOpen, b.State())
	// A throttled probe holds it open again, capped at max_open_duration.
	call(t, b, &HTTPStatusError{StatusCode: 429, RetryAfter: time.Hour})
	h.clk.Advance(30*time.Second - time.Millisecond)
	require.Equal(t, StateOpen, b.State())
	h.clk.Advance(time.Millisecond)
	require.Equal(t, StateHalfOpen, b.State())
	assert.Equal(t, []string{
		"closed>open:throttled", "open>half_open:open_duration_elapsed",
		"half_open>open:throttled", "open>half_open:open_duration_elapsed",
	}, h.transitions())
}

func TestIgnoredOutcomesDoNotTrip(t *testing.T) {
	h := newHarness(t, testPolicy())
	b := h.br("a")
	for range 20 {
		call(t, b, context.Canceled)
		call(t, b, status.Error(codes.InvalidArgument, "bad"))
	}
	assert.Equal(t, StateClosed, b.State())
	assert.Equal(t, uint64(40), b.nIgnored.Load())
}

func TestIgnoredProbeFreesItsSlot(t *testing.T) {
	h := newHarness(t, testPolicy())
	b := h.br("a")
	for range 5 {
		call(t, b, errBackend)
	}
	h.clk.Advance(time.Second)
	call(t, b, context.Canceled)
	require.Equal(t, StateHalfOpen, b.State())
	call(t, b, nil)
	require.Equal(t, StateClosed, b.State())
}

func TestStalePermitsDoNotCount(t *testing.T) {
	h := newHarness(t, testPolicy())
	b := h.br("a")
	old := make([]Permit, 0, 10)
	for range 10 {
		pm, err := b.Allow()
		require.NoError(t, err)
		old = append(old, pm)
	}
	for _, pm := range old[:5] {
		pm.Done(errBackend)
	}
	require.Equal(t, StateOpen, b.State())
	h.clk.Advance(time.Second)
	call(t, b, nil)
	require.Equal(t, StateClosed, b.State())
	for _, pm := range old[5:] {
		pm.Done(errBackend) // from before the trip: must not re-open it
	}
	assert.Equal(t, StateClosed, b.State())
	var zero Permit
	zero.Done(errBackend) // no-op
}

func TestManualStates(t *testing.T) {
	h := newHarness(t, testPolicy())
	b := h.br("a")

	h.c.SetManualState("a", ManualForcedOpen)
	assert.Equal(t, StateOpen, b.State())
	_, err := b.Allow()
	require.ErrorIs(t, err, ErrOpen)

	h.c.SetManualState("a", ManualDisabled)
	assert.Equal(t, StateClosed, b.State())
	for range 10 {
		call(t, b, errBackend) // not recorded by the machine
	}
	assert.Equal(t, StateClosed, State(wordState(b.word.Load())))

	h.c.SetManualState("a", ManualMetricsOnly)
	for range 5 {
		call(t, b, errBackend)
	}
	assert.Equal(t, StateOpen, State(wordState(b.word.Load())), "the shadow machine tripped")
	assert.Equal(t, StateClosed, b.State(), "callers still see closed")
	rejectedBefore := b.nRejected.Load()
	call(t, b, nil) // admitted although the machine is open
	assert.Equal(t, rejectedBefore+1, b.nRejected.Load(), "shadow rejection is counted")
	snap := b.snapshot(mono(h.clk), h.clk.Now())
	assert.Equal(t, "open", snap.Machine)
	assert.Equal(t, "closed", snap.State)
	assert.Equal(t, "metrics_only", snap.Manual)
	require.NotNil(t, snap.NextProbe)

	h.c.SetManualState("a", ManualNone)
	assert.Equal(t, StateOpen, b.State(), "back to automatic: the machine's state shows")
	_, err = b.Allow()
	require.ErrorIs(t, err, ErrOpen)

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
		c.Manual = map[string]string{"canary-*": "forced_open", "*": "metrics_only"}
	})
	assert.Equal(t, StateOpen, h.br("canary-1").State())
	b := h.br("other")
	for range 10 {
		call(t, b, errBackend)
	}
	assert.Equal(t, StateClosed, b.State())
}

func TestSubscribersInOrderOutsideLocks(t *testing.T) {
	h := newHarness(t, testPolicy())
	b := h.br("a")
	var seen []string
	// A subscriber that calls back into the breaker (State takes its lock;
	// SetManualState causes a nested change): must neither deadlock nor
	// reorder.
	h.c.Subscribe(func(ch StateChange) {
		seen = append(seen, ch.To.String()+"/"+b.State().String())
		if ch.To == StateOpen && ch.Reason == "consecutive_failures" {
			h.c.SetManualState("a", ManualForcedOpen)
		}
	})
	for range 5 {
		call(t, b, errBackend)
	}
	assert.Equal(t, []string{"open/open", "open/open"}, seen)
	assert.Equal(t, []string{"closed>open:consecutive_failures", "open>open:manual:forced_open"}, h.transitions())
}

func TestGenerationOnlyGrows(t *testing.T) {
	h := newHarness(t, testPolicy())
	b := h.br("a")
	var last uint64
	h.c.Subscribe(func(ch StateChange) {
		if ch.Reason[:min(len(ch.Reason), 6)] != "manual" {
			assert.Greater(t, ch.Generation, last)
		}
		last = ch.Generation
	})
	for range 3 {
		for range 5 {
			call(t, b, errBackend)
		}
		h.clk.Advance(time.Minute)
		call(t, b, nil)
	}
	assert.Equal(t, uint64(10), last, "three cycles of three transitions from generation 1")
}

func TestIdleExpiry(t *testing.T) {
	h := newHarness(t, testPolicy(), func(c *Config) { c.IdleExpiry = time.Minute })
	h.c.start()
	defer h.c.stop()
	keep := h.br("keep")
	gone := h.br("gone")
	call(t, gone, nil)
	call(t, gone, errBackend)
	opened := h.br("opened")
	for range 5 {
		call(t, opened, errBackend)
	}
	h.c.SetManualState("manual", ManualForcedOpen)
	for range 6 {
		call(t, keep, nil)
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
	assert.Equal(t, uint64(1+6), h.c.totals().success)

	// A holder of the forgotten breaker uses it again: it comes back.
	call(t, gone, nil)
	v, ok := h.c.breakers.Load("gone")
	require.True(t, ok)
	assert.Same(t, gone, v.(*breaker))
	assert.Zero(t, gone.word.Load()&flagDetached)
	assert.Equal(t, int64(3), h.c.count.Load())
}

func TestPolicyByGlob(t *testing.T) {
	h := newHarness(t, testPolicy(), func(c *Config) {
		strict := c.PolicyConfig
		strict.ConsecutiveFailures = 1
		lax := c.PolicyConfig
		lax.ConsecutiveFailures = 100
		c.Policies = map[string]PolicyConfig{"strict": strict, "lax": lax}
		c.Keys = map[string]string{"*:4317": "lax", "critical-*:4317": "strict"}
	})
	assert.Equal(t, "strict", h.br("critical-1:4317").p.name)
	assert.Equal(t, "lax", h.br("x:4317").p.name)
	assert.Equal(t, "default", h.br("x:4318").p.name)
	call(t, h.br("critical-1:4317"), errBackend)
	assert.Equal(t, StateOpen, h.br("critical-1:4317").State())
}

// TestPolicyGlobWithStarInKey: a key may contain `*`; the glob's star is
// still a wildcard (`a*c` used not to match `a*bc`). Globs are the module's
// one matcher (internal/glob); `?` is one character, and brackets are
// literal (IPv6 endpoints).
func TestPolicyGlobWithStarInKey(t *testing.T) {
	h := newHarness(t, testPolicy(), func(c *Config) {
		strict := c.PolicyConfig
		strict.ConsecutiveFailures = 1
		c.Policies = map[string]PolicyConfig{"strict": strict}
		c.Keys = map[string]string{"a*c": "strict", "[::1]:43?7": "strict", "caf?:4317": "strict"}
	})
	assert.Equal(t, "strict", h.br("a*bc").p.name)
	assert.Equal(t, "strict", h.br("abc").p.name)
	assert.Equal(t, "default", h.br("a*b").p.name)
	assert.Equal(t, "strict", h.br("[::1]:4317").p.name)
	assert.Equal(t, "default", h.br("1:4317").p.name)
	assert.Equal(t, "strict", h.br("café:4317").p.name)
}

func TestConcurrentUse(t *testing.T) {
	p := testPolicy()
	p.FailureRatio = 0.3
	p.MinCalls = 10
	p.SlowCallDuration = 50 * time.Millisecond
	p.SlowCallRatio = 0.5
	p.HalfOpenPermits = 3
	p.RampUp = time.Second
	h := newHarness(t, p)
	h.c.start()
	defer h.c.stop()
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Add(1)
	go func() { // time moves while workers run
		defer wg.Done()
		for i := 0; i < 2000; i++ {
			h.clk.Advance(7 * time.Millisecond)
			if i%500 == 0 {
				h.c.SetManualState("k1", ManualState(i/500%4))
			}
		}
		close(stop)
	}()
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			keys := []string{"k0", "k1", "k2"}
			for i := 0; i < 20000; i++ {
				select {
				case <-stop:
					return
				default:
				}
				b := h.c.Breaker(keys[(i+w)%3])
				pm, err := b.Allow()
				if err != nil {
					continue
				}
				if (i*7+w)%5 == 0 {
					pm.Done(errBackend)
				} else {
					pm.Done(nil)
				}
				_ = b.State()
			}
		}()
	}
	wg.Wait()
	for _, s := range h.c.Snapshot() {
		assert.Equal(t, int64(0), s.Stalled, s.Key)
		assert.LessOrEqual(t, s.HalfOpenInFlight, int32(3))
	}
}

func TestRejectedErrorIsErrOpen(t *testing.T) {
	err := error(&RejectedError{Key: "a", RetryAfter: time.Second})
	assert.ErrorIs(t, err, ErrOpen)
	st, ok := status.FromError(err)
	require.True(t, ok)
	assert.Equal(t, codes.Unavailable, st.Code())
	assert.Len(t, st.Details(), 1)
	o, _ := Classify(err)
	assert.Equal(t, OutcomeIgnored, o, "a rejection says nothing about the backend")
	assert.False(t, errors.Is(errBackend, ErrOpen))
}

func TestLostProbeTimesOut(t *testing.T) {
	p := testPolicy()
	p.MaxOpenDuration = 10 * time.Second
	h := newHarness(t, p)
	b := h.br("a")
	for range 5 {
		call(t, b, errBackend)
	}
	h.clk.Advance(time.Second)
	lost, err := b.Allow() // a probe whose Done never comes
	require.NoError(t, err)
	_, err = b.Allow()
	require.ErrorIs(t, err, ErrOpen)
	h.clk.Advance(10*time.Second - time.Millisecond)
	require.Equal(t, StateHalfOpen, b.State())
	h.clk.Advance(time.Millisecond)
	require.Equal(t, StateOpen, b.State())
	h.clk.Advance(2 * time.Second) // backoff level 1: 2s
	require.Equal(t, StateHalfOpen, b.State())
	call(t, b, nil)
	assert.Equal(t, StateClosed, b.State())
	lost.Done(nil) // very late: ignored
	assert.Equal(t, 0, h.clk.PendingTimers(), "closing stopped the half-open timer")
}

func TestPanickingSubscriberDoesNotBreakDelivery(t *testing.T) {
	h := newHarness(t, testPolicy())
	unsub := h.c.Subscribe(func(StateChange) { panic("subscriber bug") })
	b := h.br("a")
	for range 5 {
		call(t, b, errBackend)
	}
	assert.Equal(t, StateOpen, b.State())
	unsub()
	h.clk.Advance(time.Second)
	assert.Equal(t, []string{"closed>open:consecutive_failures", "open>half_open:open_duration_elapsed"}, h.transitions(),
		"later subscribers still got every change")
}

func TestCallsHungBeforeCloseDoNotRetrip(t *testing.T) {
	p := testPolicy()
	p.SlowCallDuration = 100 * time.Millisecond
	p.ConsecutiveFailures = 3
	h := newHarness(t, p)
	h.c.start()
	defer h.c.stop()
	b := h.br("a")
	var hung []Permit
	for range 3 {
		pm, err := b.Allow()
		require.NoError(t, err)
		hung = append(hung, pm)
	}
	h.clk.Advance(200 * time.Millisecond)
	require.Equal(t, StateOpen, b.State(), "tripped on stall")
	h.clk.Advance(time.Second)
	call(t, b, nil) // the probe is fine: closed
	require.Equal(t, StateClosed, b.State())
	h.clk.Advance(5 * time.Second) // the old calls are still hung (now ancient)
	assert.Equal(t, StateClosed, b.State(), "calls hung before the close must not re-trip it")
	assert.Equal(t, int64(0), b.stalled(mono(h.clk)))
	hung[0].Done(context.DeadlineExceeded) // one old call gives up
	// New calls hang after the close: those count.
	for range 3 {
		_, err := b.Allow()
		require.NoError(t, err)
	}
	h.clk.Advance(160 * time.Millisecond)
	assert.Equal(t, StateOpen, b.State())
	// Long after, the new ones still count and the remaining old ones do not.
	assert.Equal(t, int64(3), b.stalled(mono(h.clk)+int64(10*time.Second)))
}

func TestStalledProbeReopens(t *testing.T) {
	p := testPolicy()
	p.SlowCallDuration = 100 * time.Millisecond
	p.MaxOpenDuration = time.Minute
	h := newHarness(t, p)
	h.c.start()
	defer h.c.stop()
	b := h.br("a")
	for range 5 {
		call(t, b, errBackend)
	}
	h.clk.Advance(time.Second)
	require.Equal(t, StateHalfOpen, b.State())
	h.clk.Advance(time.Second) // half-open with no probe: nothing stalls
	require.Equal(t, StateHalfOpen, b.State())
	probe, err := b.Allow()
	require.NoError(t, err)
	h.clk.Advance(100 * time.Millisecond)
	require.Equal(t, StateHalfOpen, b.State())
	h.clk.Advance(60 * time.Millisecond)
	require.Equal(t, StateOpen, b.State(), "a probe stuck past slow_call_duration reopens it long before max_open_duration")
	assert.Equal(t, "half_open>open:probe_stalled", h.transitions()[len(h.transitions())-1])
	probe.Done(nil) // late: ignored
	assert.Equal(t, StateOpen, b.State())
}

// TestTrippedIdleBreakerDoesNotCycle: a breaker that tripped and then gets
// no calls goes half-open once and waits there for a call; it does not
// reopen for want of a probe nobody asked for (it used to cycle open →
// half_open → open all hour, two log lines and a status flip each time).
func TestTrippedIdleBreakerDoesNotCycle(t *testing.T) {
	p := testPolicy()
	p.MaxOpenDuration = 10 * time.Second
	h := newHarness(t, p, func(c *Config) { c.IdleExpiry = 2 * time.Hour })
	h.c.start()
	defer h.c.stop()
	b := h.br("gone-pod:4317")
	for range 5 {
		call(t, b, errBackend)
	}
	for range 60 {
		h.clk.Advance(time.Minute)
	}
	tr := h.transitions()
	require.Len(t, tr, 2, "transitions in an idle hour, first ones: %v", tr[:min(len(tr), 6)])
	assert.Equal(t, []string{"closed>open:consecutive_failures", "open>half_open:open_duration_elapsed"}, tr)
	assert.Equal(t, StateHalfOpen, b.State())
	assert.Empty(t, h.c.openKeys())
	assert.Equal(t, 2, h.clk.PendingTimers(), "no breaker timer pending, only the coarse and idle tickers")
	// The first call after the idle hour is the probe.
	call(t, b, nil)
	assert.Equal(t, StateClosed, b.State())
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
		short := c.PolicyConfig
		short.OpenDuration = time.Second
		c.Policies = map[string]PolicyConfig{"short": short}
		c.Keys = map[string]string{"half*": "short"}
	})
	h.c.start()
	defer h.c.stop()
	trip := func(key string) *breaker {
		b := h.br(key)
		for range 5 {
			call(t, b, errBackend)
		}
		return b
	}
	open, idleOpen, half := trip("open"), trip("idle-open"), trip("half")
	h.c.SetManualState("forced", ManualForcedOpen)
	for range 9 {
		h.clk.Advance(20 * time.Second)
		_, err := open.Allow()
		require.ErrorIs(t, err, ErrOpen)
	}
	assert.Equal(t, StateClosed, idleOpen.State(), "forgotten within its open_duration: a new key")
	_, ok := h.c.breakers.Load("open")
	assert.True(t, ok, "an open breaker that keeps refusing calls is in use")
	for _, k := range []string{"idle-open", "half"} {
		_, ok := h.c.breakers.Load(k)
		assert.False(t, ok, "idle %s breaker forgotten", k)
	}
	_, ok = h.c.breakers.Load("forced")
	assert.True(t, ok, "manual states are kept")
	assert.Equal(t, []string{"forced", "open"}, h.c.openKeys(), "forgotten keys leave the open set")
	assert.Equal(t, uint64(15), h.c.totals().failure, "forgotten counts stay in the totals")
	assert.Contains(t, h.transitions(), "open>closed:idle_expiry")
	assert.Contains(t, h.transitions(), "half_open>closed:idle_expiry")
	// A holder of a forgotten breaker starts afresh, as a new key would.
	assert.Equal(t, StateClosed, half.State())
	call(t, half, nil)
	v, ok := h.c.breakers.Load("half")
	require.True(t, ok)
	assert.Same(t, half, v.(*breaker))
	assert.Equal(t, uint64(1), half.nSuccess.Load())
	assert.Zero(t, half.nFailure.Load())
	snap := half.snapshot(mono(h.clk), h.clk.Now())
	assert.Zero(t, snap.Trips)
}

// TestForgottenHeldBreakerStaysTheKeysBreaker: after the sweeper forgot a
// key whose breaker a caller still holds (the fanout keeps one per
// backend), everything that looks the key up again (SetManualState over
// HTTP or the API, Provider.Breaker, the endpoint, metrics) finds that same
// breaker, never a second one.
func TestForgottenHeldBreakerStaysTheKeysBreaker(t *testing.T) {
	h := newHarness(t, testPolicy(), func(c *Config) { c.IdleExpiry = time.Minute })
	h.c.start()
	defer h.c.stop()
	held := h.c.Breaker("backend:4317")
	call(t, held, nil)
	h.clk.Advance(3 * time.Minute)
	_, ok := h.c.breakers.Load("backend:4317")
	require.False(t, ok, "idle: forgotten")

	h.c.SetManualState("backend:4317", ManualForcedOpen)
	assert.Same(t, held, h.c.Breaker("backend:4317"))
	_, err := held.Allow()
	require.ErrorIs(t, err, ErrOpen, "the operator's forced_open reaches the breaker the caller holds")
	snaps := h.c.Snapshot()
	require.Len(t, snaps, 1)
	assert.Equal(t, "forced_open", snaps[0].Manual)
	assert.Equal(t, int64(1), h.c.count.Load())

	// Forgotten again and used again by its holder first: still one breaker.
	h.c.SetManualState("backend:4317", ManualNone)
	h.clk.Advance(3 * time.Minute)
	_, ok = h.c.breakers.Load("backend:4317")
	require.False(t, ok)
	call(t, held, nil)
	assert.Same(t, held, h.c.Breaker("backend:4317"))
	assert.Equal(t, int64(1), h.c.count.Load())
}

// TestForgottenUnheldBreakerIsReleased: once nothing holds a forgotten
// breaker, the registry keeps nothing of it.
func TestForgottenUnheldBreakerIsReleased(t *testing.T) {
	h := newHarness(t, testPolicy(), func(c *Config) { c.IdleExpiry = time.Minute })
	h.c.start()
	defer h.c.stop()
	func() { call(t, h.c.Breaker("gone:4317"), errBackend) }()
	h.clk.Advance(3 * time.Minute)
	runtime.GC()
	h.clk.Advance(time.Minute)
	h.c.regMu.Lock()
	n := len(h.c.detached)
	h.c.regMu.Unlock()
	assert.Zero(t, n)
	assert.Zero(t, h.c.count.Load())
}
