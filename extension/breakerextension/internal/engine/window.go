// Copyright The otelcsp Authors
// SPDX-License-Identifier: Apache-2.0

package engine // import "github.com/otelcsp/otelcsp/extension/breakerextension/internal/engine"

import "sync/atomic"

// bucket is one slice of the sliding window.
type bucket struct {
	epoch atomic.Int64 // bucket number (now / width), -1 when empty
	calls atomic.Int64
	fails atomic.Int64
	slows atomic.Int64
}

// bucket returns the window bucket for now, claiming it for the current
// epoch when it holds an old one. Adds that race with the reset may be lost:
// the window is a statistic, exact to within a few calls at bucket borders.
func (b *Breaker) bucket(now int64) *bucket {
	e := now / b.p.bucketWidth
	bk := &b.buckets[e&b.p.ringMask]
	for {
		old := bk.epoch.Load()
		if old >= e {
			return bk
		}
		if bk.epoch.CompareAndSwap(old, e) {
			bk.calls.Store(0)
			bk.fails.Store(0)
			bk.slows.Store(0)
			return bk
		}
	}
}

// window sums the buckets of the last window.
func (b *Breaker) window(now int64) (calls, fails, slows int64) {
	cur := now / b.p.bucketWidth
	for i := range b.buckets {
		bk := &b.buckets[i]
		if e := bk.epoch.Load(); e > cur-b.p.buckets && e <= cur {
			calls += bk.calls.Load()
			fails += bk.fails.Load()
			slows += bk.slows.Load()
		}
	}
	return calls, fails, slows
}

func (b *Breaker) clearWindow() {
	for i := range b.buckets {
		b.buckets[i].epoch.Store(-1)
		b.buckets[i].calls.Store(0)
		b.buckets[i].fails.Store(0)
		b.buckets[i].slows.Store(0)
	}
}

// evaluate is the ratio detectors: a trip on the window's failure ratio,
// or its slow-call ratio with stalled calls counted as slow ones.
func (b *Breaker) evaluate(now int64, gen uint32) {
	if b.p.failureRatio == 0 && (b.p.slowRatio == 0 || b.p.slowDur == 0) {
		return
	}
	calls, fails, slows := b.window(now)
	if b.p.failureRatio > 0 && calls >= b.p.minCalls && float64(fails) >= b.p.failureRatio*float64(calls) {
		b.fire(gen, EvTrip, "failure_ratio", 0)
		return
	}
	if b.p.slowRatio > 0 && b.p.slowDur > 0 {
		st := b.stalled(now)
		if calls+st >= b.p.minCalls && float64(slows+st) >= b.p.slowRatio*float64(calls+st) {
			reason := "slow_call_ratio"
			if st > 0 && slows == 0 {
				reason = "stall"
			}
			b.fire(gen, EvTrip, reason, 0)
		}
	}
}
