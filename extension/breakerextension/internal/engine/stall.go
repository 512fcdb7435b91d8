// Copyright The otelcsp Authors
// SPDX-License-Identifier: Apache-2.0

package engine // import "github.com/otelcsp/otelcsp/extension/breakerextension/internal/engine"

import "sync/atomic"

// inflight counts a breaker's calls in flight by start cohort, for stall
// detection (only when the policy sets slow_call_duration).
type inflight struct {
	ancient atomic.Int64
	slots   [cohortSlots]atomic.Uint64 // cohort<<32 | in-flight count
	// Calls that started before the breaker last closed say nothing about
	// the backend since then: stall detection ignores cohorts before
	// stallFloor and the ancient calls present at the close (ancientBase,
	// lowered as those finish), so calls hung since an old incident cannot
	// trip a recovered breaker again and again.
	stallFloor atomic.Int64
	// lastDone is when a call last finished (to a cohort width), so that a
	// stalled call with nothing finishing beside it reads as a frozen
	// backend at once, however few calls are in flight.
	lastDone    atomic.Int64
	ancientBase atomic.Int64
}

// enter stamps the permit with its start time and in-flight cohort when the
// policy watches slow calls.
func (b *Breaker) enter(p Permit) Permit {
	if b.p.slowDur == 0 {
		return p
	}
	now := b.reg.now()
	p.start = now
	c := uint32(now / b.p.cohortWidth)
	s := &b.slots[c%cohortSlots]
	for {
		v := s.Load()
		vc := uint32(v >> 32)
		switch {
		case vc == c:
			if s.CompareAndSwap(v, v+1) {
				p.at.cohort = c
				return p
			}
		case int32(c-vc) > 0:
			// The slot holds an older cohort: retire it into ancient.
			if s.CompareAndSwap(v, uint64(c)<<32|1) {
				if n := int64(uint32(v)); n > 0 {
					b.ancient.Add(n)
				}
				p.at.cohort = c
				return p
			}
		default:
			// Our clock reading lost a race to a newer cohort: count the
			// call as ancient; it is at most one cohort off.
			b.ancient.Add(1)
			p.kind |= inAncient
			return p
		}
	}
}

func (b *Breaker) exit(p Permit) {
	if p.kind&inAncient == 0 {
		s := &b.slots[p.at.cohort%cohortSlots]
		for {
			v := s.Load()
			if uint32(v>>32) != p.at.cohort {
				break // retired: its count lives in ancient now
			}
			if s.CompareAndSwap(v, v-1) {
				return
			}
		}
	}
	b.ancient.Add(-1)
}

// resetStallFloor leaves the calls in flight now out of stall detection.
func (b *Breaker) resetStallFloor(now int64) {
	if b.p.slowDur > 0 {
		b.stallFloor.Store(now / b.p.cohortWidth)
		b.ancientBase.Store(b.ancient.Load())
	}
}

// stalled counts calls in flight longer than slow_call_duration that started
// since the breaker last closed.
func (b *Breaker) stalled(now int64) int64 {
	if b.p.slowDur == 0 {
		return 0
	}
	cur := now / b.p.cohortWidth
	floor := b.stallFloor.Load()
	var n int64
	for i := range b.slots {
		v := b.slots[i].Load()
		age := int64(uint32(cur) - uint32(v>>32)) // wraps correctly for ages < 2^32 cohorts
		if age >= stallAge && cur-age >= floor {
			n += int64(uint32(v))
		}
	}
	a, base := b.ancient.Load(), b.ancientBase.Load()
	if a < base {
		// Old calls finished: lower the base so new ones count.
		b.ancientBase.CompareAndSwap(base, a)
		base = a
	}
	return max(n+a-base, 0)
}

// checkStall runs from the registry's ticker: a black-holed backend sends
// back no outcomes, so only the clock can notice it. A call stuck past
// slow_call_duration while no call at all finished for that long is a
// frozen backend; as many stuck calls as consecutive_failures is as strong a
// sign as that many failures in a row; fewer still weigh in the slow-call
// ratio.
func (b *Breaker) checkStall(now int64) {
	if b.p.slowDur == 0 {
		return
	}
	w := b.word.Load()
	switch st := wordState(w); {
	case st == HalfOpen:
		b.checkProbeStall(now, wordGen(w))
		return
	case !st.closedLike():
		return
	}
	st := b.stalled(now)
	if st == 0 {
		return
	}
	if now-b.lastDone.Load() >= b.p.slowDur || (b.p.consecutive > 0 && st >= b.p.consecutive) {
		b.fire(wordGen(w), EvTrip, "stall", 0)
		return
	}
	b.evaluate(now, wordGen(w))
}

// checkProbeStall reopens a half-open breaker whose probe has been in flight
// longer than slow_call_duration: it would count as slow when it finishes,
// and waiting for it only keeps the backend's recovery unknown for longer.
func (b *Breaker) checkProbeStall(now int64, gen uint32) {
	since := b.stallFloor.Load()
	b.mu.Lock()
	halfFrom := b.halfOpenCohort
	b.mu.Unlock()
	since = max(since, halfFrom)
	cur := now / b.p.cohortWidth
	for i := range b.slots {
		v := b.slots[i].Load()
		age := int64(uint32(cur) - uint32(v>>32))
		if uint32(v) > 0 && age >= stallAge && cur-age >= since {
			b.mu.Lock()
			if wordGen(b.word.Load()) == gen && b.probes > 0 {
				b.applyLocked(EvProbeFailed, "probe_stalled", 0)
			}
			b.mu.Unlock()
			b.reg.deliver()
			return
		}
	}
}
