// Copyright The otelcsp Authors
// SPDX-License-Identifier: Apache-2.0

package breakerextension

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/otelcsp/otelcsp/extension/breakerextension/internal/engine"
)

// The state machine's own tests are the engine's (internal/engine); these
// are what the public API adds to it: classification of the error given to
// Permit.Done, ErrOpen, and the API under concurrent use.

var errBackend = status.Error(codes.Unavailable, "backend down")

// testExtension is an extension with the default policy made
// deterministic (no jitter, ratios off, one probe success closes), on a
// fake clock, recording the transitions it announces.
func testExtension(t *testing.T, mutate func(*Config)) (*breakerExtension, func(time.Duration), func() []string) {
	t.Helper()
	cfg := createDefaultConfig()
	cfg.Jitter, cfg.FailureRatio, cfg.SlowCallRatio, cfg.SuccessThreshold = 0, 0, 0, 1
	if mutate != nil {
		mutate(cfg)
	}
	require.NoError(t, cfg.Validate())
	e, clk := newTestExtension(t, cfg, nil)
	var mu sync.Mutex
	var seen []string
	e.Subscribe(func(ch StateChange) {
		mu.Lock()
		seen = append(seen, ch.From.String()+">"+ch.To.String()+":"+ch.Reason)
		mu.Unlock()
	})
	return e, clk.Advance, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), seen...)
	}
}

// call makes one call with the given outcome.
func call(t *testing.T, b Breaker, err error) {
	t.Helper()
	p, aerr := b.Allow()
	require.NoError(t, aerr)
	p.Done(err)
}

func TestThrottleHoldsOpen(t *testing.T) {
	e, advance, transitions := testExtension(t, func(c *Config) { c.MaxOpenDuration = 30 * time.Second })
	b := e.Breaker("a")
	st, err := status.New(codes.ResourceExhausted, "slow down").WithDetails(retryInfo(7 * time.Second))
	require.NoError(t, err)
	call(t, b, st.Err())
	require.Equal(t, StateOpen, b.State(), "one throttle response opens it")
	advance(7*time.Second - time.Millisecond)
	require.Equal(t, StateOpen, b.State())
	advance(time.Millisecond)
	require.Equal(t, StateHalfOpen, b.State())
	// A throttled probe holds it open again, capped at max_open_duration.
	call(t, b, &HTTPStatusError{StatusCode: 429, RetryAfter: time.Hour})
	advance(30*time.Second - time.Millisecond)
	require.Equal(t, StateOpen, b.State())
	advance(time.Millisecond)
	require.Equal(t, StateHalfOpen, b.State())
	assert.Equal(t, []string{
		"closed>open:throttled", "open>half_open:open_duration_elapsed",
		"half_open>open:throttled", "open>half_open:open_duration_elapsed",
	}, transitions())
}

func TestIgnoredOutcomesDoNotTrip(t *testing.T) {
	e, _, _ := testExtension(t, nil)
	b := e.Breaker("a")
	for range 20 {
		call(t, b, context.Canceled)
		call(t, b, status.Error(codes.InvalidArgument, "bad"))
	}
	assert.Equal(t, StateClosed, b.State())
	assert.Equal(t, uint64(40), e.snapshot("a").Ignored)
}

// TestFailuresTripToErrOpen: the errors Classify calls failures trip the
// breaker, which then refuses with ErrOpen.
func TestFailuresTripToErrOpen(t *testing.T) {
	e, _, transitions := testExtension(t, nil)
	b := e.Breaker("a")
	for _, err := range []error{errBackend, context.DeadlineExceeded, &HTTPStatusError{StatusCode: 502}, errors.New("unknown"), errBackend} {
		call(t, b, err)
	}
	_, err := b.Allow()
	require.ErrorIs(t, err, ErrOpen)
	assert.Equal(t, StateOpen, b.State())
	var zero Permit
	zero.Done(errBackend) // no-op
	assert.Equal(t, []string{"closed>open:consecutive_failures"}, transitions())
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

func TestConcurrentUse(t *testing.T) {
	e, advance, _ := testExtension(t, func(c *Config) {
		c.FailureRatio = 0.3
		c.MinCalls = 10
		c.SlowCallDuration = 50 * time.Millisecond
		c.SlowCallRatio = 0.5
		c.HalfOpenPermits = 3
		c.RampUp = time.Second
	})
	e.reg.Start()
	defer e.reg.Stop()
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Add(1)
	go func() { // time moves while workers run
		defer wg.Done()
		for i := 0; i < 2000; i++ {
			advance(7 * time.Millisecond)
			if i%500 == 0 {
				e.SetManualState("k1", ManualState(i/500%4))
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
				b := e.Breaker(keys[(i+w)%3])
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
	for _, s := range e.Snapshot() {
		assert.Equal(t, int64(0), s.Stalled, s.Key)
		assert.LessOrEqual(t, s.HalfOpenInFlight, int32(3))
	}
}

// TestEngineValuesArePublicOnes: the adapters convert outcomes, states and
// manual states by value, so the engine's must be numbered as the public
// ones are.
func TestEngineValuesArePublicOnes(t *testing.T) {
	assert.Equal(t, []int{int(OutcomeSuccess), int(OutcomeFailure), int(OutcomeIgnored)},
		[]int{int(engine.Success), int(engine.Failure), int(engine.Ignored)})
	assert.Equal(t, []int{int(StateClosed), int(StateHalfOpen), int(StateOpen)},
		[]int{int(engine.AdmitAll), int(engine.AdmitProbes), int(engine.AdmitNone)})
	for m := ManualNone; m <= ManualMetricsOnly; m++ {
		assert.Equal(t, m.String(), engine.Manual(m).String())
	}
}
