// Copyright The otelcsp Authors
// SPDX-License-Identifier: Apache-2.0

package breakerextension

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/otelcsp/otelcsp/internal/clock"
)

// fakeClock is advanced by tests; timers fire synchronously inside Advance,
// in due-time order, with the time set to each timer's due time. Its wall
// clock is a fixed date plus the monotonic reading, so snapshots' times are
// exact.
type fakeClock struct {
	now    atomic.Int64
	mu     sync.Mutex
	timers []*fakeTimer
	seq    int
}

type fakeTimer struct {
	c       *fakeClock
	at      int64
	seq     int
	f       func()
	stopped bool
	fired   bool
}

func newFakeClock() *fakeClock {
	c := &fakeClock{}
	c.now.Store(int64(time.Hour)) // positive, and far from bucket 0
	return c
}

var _ clock.TimerClock = (*fakeClock)(nil)

// fakeWallOrigin is the wall time at monotonic reading 0.
var fakeWallOrigin = time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)

// mono is the monotonic reading in the engine's unit (nanoseconds).
func (c *fakeClock) mono() int64 { return c.now.Load() }

func (c *fakeClock) Monotonic() time.Duration { return time.Duration(c.now.Load()) }

func (c *fakeClock) Now() time.Time { return fakeWallOrigin.Add(c.Monotonic()) }

func (c *fakeClock) AfterFunc(d time.Duration, f func()) clock.Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seq++
	t := &fakeTimer{c: c, at: c.now.Load() + int64(d), seq: c.seq, f: f}
	c.timers = append(c.timers, t)
	return t
}

func (t *fakeTimer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	was := !t.stopped && !t.fired
	t.stopped = true
	return was
}

// Advance moves time forward by d, firing due timers on the way.
func (c *fakeClock) Advance(d time.Duration) {
	target := c.now.Load() + int64(d)
	for {
		c.mu.Lock()
		var next *fakeTimer
		live := c.timers[:0]
		for _, t := range c.timers {
			if t.stopped || t.fired {
				continue
			}
			live = append(live, t)
			if t.at <= target && (next == nil || t.at < next.at || (t.at == next.at && t.seq < next.seq)) {
				next = t
			}
		}
		c.timers = live
		if next == nil {
			c.now.Store(target)
			c.mu.Unlock()
			return
		}
		if next.at > c.now.Load() {
			c.now.Store(next.at)
		}
		next.fired = true
		c.mu.Unlock()
		next.f()
	}
}

// pending counts live timers.
func (c *fakeClock) pending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, t := range c.timers {
		if !t.stopped && !t.fired {
			n++
		}
	}
	return n
}
