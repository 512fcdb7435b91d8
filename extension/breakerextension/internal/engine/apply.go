// Copyright The otelcsp Authors
// SPDX-License-Identifier: Apache-2.0

package engine // import "github.com/otelcsp/otelcsp/extension/breakerextension/internal/engine"

import (
	"math"
	"time"
)

// applyLocked looks up the table's row for the current state and ev and
// runs it: the one place the machine changes state. reason names the event
// where the row does not; d is the event's duration (a throttle's hold, an
// ejection time). It reports whether a row applied.
func (b *Breaker) applyLocked(ev Event, reason string, d int64) bool {
	w := b.word.Load()
	from := wordState(w)
	r := table[from][ev]
	if r == nil {
		return false
	}
	if r.reason != "" {
		reason = r.reason
	}
	to := r.to
	if r.acts&actRampUp != 0 && b.p.rampUp > 0 {
		to = RampingUp
	}
	now := b.reg.now()
	gen := wordGen(w)
	acts := r.acts

	if acts&actNewIncident != 0 && b.closedAt != 0 && now-b.closedAt >= b.p.maxOpen {
		// It stayed closed long enough: this is a new incident.
		b.level = 0
	}
	if acts&(actEnter|actNewGeneration) != 0 {
		gen++
		b.stopTimerLocked()
	}
	if acts&actForget != 0 {
		b.forgetLocked(now)
	}
	if acts&actStartClosed != 0 {
		b.startClosedLocked(now)
	}
	if acts&actStartProbing != 0 {
		b.probes, b.probeSuccesses = 0, 0
		if b.p.slowDur > 0 {
			b.halfOpenCohort = now / b.p.cohortWidth
		}
	}
	if acts&actDisarm != 0 {
		b.timer = nil
		b.timerSeq++
	}
	b.word.Store(makeWord(to, w&keptFlags, gen))
	switch {
	case acts&actOpenBackoff != 0:
		d = b.openDurationLocked()
		if b.level < 62 {
			b.level++
		}
		b.openForLocked(now, d)
	case acts&actOpenFor != 0:
		b.openForLocked(now, d)
	case acts&actArmProbeTimeout != 0:
		b.armLocked(b.p.maxOpen)
	}
	if acts&actEnter != 0 {
		b.lastReason = reason
		b.changedAt = now
		ch := Change{Key: b.key, Generation: uint64(gen), Reason: reason, From: from.Admission(), To: to.Admission(), Shadow: b.manual != ManualNone}
		b.reg.enqueue(ch, b.manual.over(ch.To))
	}
	return true
}

// openForLocked starts an open period of d.
func (b *Breaker) openForLocked(now, d int64) {
	b.openUntil = now + d
	b.trips++
	b.armLocked(d)
}

// openDurationLocked is open_duration * multiplier^level capped at
// max_open_duration, shortened by up to jitter of itself so breakers that
// tripped together do not probe together.
func (b *Breaker) openDurationLocked() int64 {
	d := float64(b.p.openDur) * math.Pow(b.p.mult, float64(b.level))
	if d > float64(b.p.maxOpen) || math.IsInf(d, 0) {
		d = float64(b.p.maxOpen)
	}
	if b.p.jitter > 0 {
		d -= d * b.p.jitter * b.reg.random()
	}
	return max(int64(d), 1)
}

// armLocked sets the breaker's one timer, unless the registry stopped: a
// timer firing during shutdown must not leave a new one behind.
func (b *Breaker) armLocked(d int64) {
	b.stopTimerLocked()
	if b.stopped {
		return
	}
	seq := b.timerSeq
	b.timer = b.reg.clk.AfterFunc(time.Duration(d), func() { b.timerFired(seq) })
}

func (b *Breaker) stopTimerLocked() {
	if b.timer != nil {
		b.timer.Stop()
		b.timer = nil
	}
	b.timerSeq++
}

// startClosedLocked clears what the closed state judges by: the failure
// run, the window, and the calls in flight from before (stall detection
// ignores them, so calls hung since an old incident cannot trip a
// recovered breaker again and again).
func (b *Breaker) startClosedLocked(now int64) {
	b.consec.Store(0)
	b.clearWindow()
	b.closedAt = now
	b.rampAcc = 0
	b.resetStallFloor(now)
}

// forgetLocked returns an idle breaker to the state of a new key (nothing
// counted, backoff at its first step); the new generation the row starts
// keeps permits still out from counting.
func (b *Breaker) forgetLocked(now int64) {
	b.consec.Store(0)
	b.clearWindow()
	b.resetStallFloor(now)
	b.probes, b.probeSuccesses = 0, 0
	b.level, b.closedAt, b.openUntil, b.rampAcc, b.trips = 0, 0, 0, 0, 0
	b.lastActive, b.lastCalls = 0, 0
	b.changedAt = now
}
