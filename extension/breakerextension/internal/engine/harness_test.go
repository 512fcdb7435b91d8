// Copyright The otelcsp Authors
// SPDX-License-Identifier: Apache-2.0

package engine

import (
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"go.uber.org/zap"

	"github.com/otelcsp/otelcsp/internal/clock/clocktest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testPolicy is the extension's default policy made deterministic: no
// jitter, ratios off unless a test sets them, one probe success closes.
func testPolicy() Policy {
	return Policy{
		ConsecutiveFailures: 5,
		Window:              10 * time.Second,
		WindowBuckets:       10,
		MinCalls:            20,
		OpenDuration:        time.Second,
		MaxOpenDuration:     60 * time.Second,
		BackoffMultiplier:   2,
		HalfOpenPermits:     1,
		SuccessThreshold:    1,
	}
}

// fakeWallOrigin is the wall time at monotonic reading 0: the fake clock's
// wall clock is this date plus the monotonic reading, so snapshots' times
// are exact.
var fakeWallOrigin = time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)

// newFakeClock starts the monotonic clock at an hour: positive, and far
// from bucket 0. Its timers fire synchronously inside Advance, in due-time
// order, with the time set to each timer's due time.
func newFakeClock() *clocktest.Fake {
	return clocktest.New(fakeWallOrigin.Add(time.Hour), time.Hour)
}

// mono is c's monotonic reading in the engine's unit (nanoseconds).
func mono(c *clocktest.Fake) int64 { return int64(c.Monotonic()) }

type harness struct {
	t      *testing.T
	clk    *clocktest.Fake
	c      *Registry
	mu     sync.Mutex
	events []Change
}

func newHarness(t *testing.T, p Policy, mutate ...func(*Config)) *harness {
	t.Helper()
	cfg := Config{Default: p, IdleExpiry: 10 * time.Minute, MaxManualKeys: 100}
	for _, m := range mutate {
		m(&cfg)
	}
	h := &harness{t: t, clk: newFakeClock()}
	h.c = New(cfg, h.clk, zap.NewNop(), 42)
	h.c.Subscribe(func(ch Change) {
		h.mu.Lock()
		h.events = append(h.events, ch)
		h.mu.Unlock()
	})
	return h
}

// stallHarness is a started harness whose policy watches slow calls
// (slow_call_duration 100ms), changed by mutate.
func stallHarness(t *testing.T, mutate func(*Policy)) *harness {
	t.Helper()
	p := testPolicy()
	p.SlowCallDuration = 100 * time.Millisecond
	if mutate != nil {
		mutate(&p)
	}
	h := newHarness(t, p)
	h.c.Start()
	t.Cleanup(h.c.Stop)
	return h
}

func (h *harness) br(key string) *Breaker { return h.c.Get(key) }

// transitions lists the changes seen as from>to:reason, in the public
// State's spelling.
func (h *harness) transitions() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]string, 0, len(h.events))
	for _, e := range h.events {
		out = append(out, e.From.String()+">"+e.To.String()+":"+e.Reason)
	}
	return out
}

func (a Admission) String() string {
	return [...]string{"closed", "half_open", "open"}[a]
}

// call makes one call with the given outcome.
func call(t *testing.T, b *Breaker, out Outcome) {
	t.Helper()
	p, ok := b.Allow()
	require.True(t, ok, "call refused")
	p.Done(out, 0)
}

// trip makes consecutive_failures (5, testPolicy's) failing calls.
func trip(t *testing.T, b *Breaker) {
	t.Helper()
	for range 5 {
		call(t, b, Failure)
	}
}

// toHalfOpen trips b and waits out testPolicy's open_duration (1s).
func toHalfOpen(t *testing.T, h *harness, b *Breaker) {
	t.Helper()
	trip(t, b)
	h.clk.Advance(time.Second)
	require.Equal(t, AdmitProbes, b.Admission())
}

func (b *Breaker) manualState() Manual {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.manual
}
