// Copyright The otelcsp Authors
// SPDX-License-Identifier: Apache-2.0

package engine // import "github.com/otelcsp/otelcsp/extension/breakerextension/internal/engine"

import (
	"sync"
	"sync/atomic"

	"github.com/otelcsp/otelcsp/internal/clock"
)

// The admission word packs everything Allow needs into one atomic load: the
// state in the low three bits, flags that force the slow path, and the
// generation in the upper 32 bits. A closed breaker without flags has a low
// byte of 0, so the closed path is a load and a compare.
const (
	stateMask    uint64 = 0x7
	flagManual   uint64 = 1 << 3 // a manual state is set
	flagDetached uint64 = 1 << 4 // forgotten by the registry; re-attach on use
	lowMask      uint64 = 0xff
	// flagSlowWatch marks a policy that watches slow calls (the closed
	// path must stamp the permit); outside lowMask, so it does not keep an
	// open breaker off the rejection fast path.
	flagSlowWatch uint64 = 1 << 8
	fastMask             = lowMask | flagSlowWatch
	keptFlags            = flagManual | flagDetached | flagSlowWatch
	genShift             = 32
)

func wordState(w uint64) State { return State(w & stateMask) }
func wordGen(w uint64) uint32  { return uint32(w >> genShift) }
func makeWord(s State, flags uint64, gen uint32) uint64 {
	return uint64(gen)<<genShift | flags | uint64(s)
}

// rejects says whether a word with no flags set refuses every call (Open
// or Ejected): one subtraction and one compare.
func rejects(w uint64) bool { return w&lowMask-uint64(Open) <= uint64(Ejected-Open) }

// Breaker is one key's circuit breaker. The closed path touches only
// atomics of this breaker; its mutex guards the table's transitions and the
// rare paths (half-open, ramp-up, manual states).
type Breaker struct {
	// Read on every call, written only on transitions: kept together and
	// away from the counters below, so counting does not invalidate the
	// cache line every Allow reads.
	word    atomic.Uint64
	p       *policy
	reg     *Registry
	buckets []bucket
	key     string
	_       [16]byte

	consec atomic.Int64 // written on failures (and the first success after)
	_      [56]byte
	// Written on every outcome: one line for the outcome counters, one for
	// rejections, which the open path writes from every caller.
	nSuccess  atomic.Uint64
	nFailure  atomic.Uint64
	nIgnored  atomic.Uint64
	_         [40]byte
	nRejected atomic.Uint64
	_         [56]byte

	inflight // stall detection's accounting of calls in flight

	cfgManual Manual // the manual state config gives the key (immutable)

	mu sync.Mutex
	// guarded by mu
	manual         Manual
	probes         int32
	probeSuccesses int32
	level          int   // backoff level: trips since the breaker last stayed closed long
	closedAt       int64 // clock reading of the last close (0: never opened)
	openUntil      int64 // clock reading when the open state ends
	lastReason     string
	changedAt      int64 // clock reading of the last change of machine or manual state (or of creation)
	// The one timer of the breaker belongs to its current state: only the
	// table's actions arm or stop it. timerSeq names the armed one, so a
	// callback that lost a race with a stop or a re-arm is dropped.
	timer          clock.Timer
	timerSeq       uint64
	stopped        bool // the registry stopped: arm no timer
	rampAcc        float64
	trips          uint64
	lastActive     int64  // clock reading when the sweeper last saw it used
	lastCalls      uint64 // outcome and rejection counts the sweeper last saw
	halfOpenCohort int64  // stall cohort when the breaker last went half-open
}

func newBreaker(r *Registry, key string, p *policy, m Manual) *Breaker {
	b := &Breaker{key: key, p: p, reg: r, buckets: make([]bucket, p.ringMask+1), manual: m, cfgManual: m, changedAt: r.now()}
	for i := range b.buckets {
		b.buckets[i].epoch.Store(-1)
	}
	flags := uint64(0)
	if m != ManualNone {
		flags = flagManual
	}
	if p.slowDur > 0 {
		flags |= flagSlowWatch
	}
	b.word.Store(makeWord(Closed, flags, 1))
	return b
}

// Key is the breaker's key.
func (b *Breaker) Key() string { return b.key }

// Verdict is Decide's answer.
type Verdict uint8

const (
	// Undecided: the word alone cannot decide; Allow does.
	Undecided Verdict = iota
	// Admitted: the permit is the call's.
	Admitted
	// Refused: the call must not be made (counted as a rejection).
	Refused
)

// Decide answers the calls the admission word alone decides: closed, not
// watching slow calls, no flag (admitted), and open or ejected with no flag
// (refused, counted). It is small enough to be inlined, so an adapter that
// asks it first pays no call of its own on the closed and open paths: one
// load and a compare or two, and one add when refused.
func (b *Breaker) Decide() (Permit, Verdict) {
	w := b.word.Load()
	if w&fastMask == 0 {
		return Permit{b: b, at: stamp{gen: wordGen(w)}, kind: permitClosed}, Admitted
	}
	if rejects(w) {
		b.nRejected.Add(1)
		return Permit{}, Refused
	}
	return Permit{}, Undecided
}

// Allow asks to make one call; ok false means the call must not be made.
// It is Decide, then AllowUndecided when Decide cannot tell; the
// extension's adapter takes the same two steps itself so that Decide is
// inlined into it.
func (b *Breaker) Allow() (p Permit, ok bool) {
	if p, v := b.Decide(); v != Undecided {
		return p, v == Admitted
	}
	return b.AllowUndecided()
}

// AllowUndecided is Allow for a call Decide left undecided: ramp-up,
// half-open, manual states, a forgotten breaker, stall accounting.
func (b *Breaker) AllowUndecided() (Permit, bool) {
	w := b.word.Load()
	if w&lowMask == uint64(Closed) { // watching slow calls
		return b.enter(Permit{b: b, at: stamp{gen: wordGen(w)}, kind: permitClosed}), true
	}
	if rejects(w) { // opened since Decide
		b.nRejected.Add(1)
		return Permit{}, false
	}
	return b.allowSlow(w)
}

// Admission is what callers see: the machine's state under the manual one.
func (b *Breaker) Admission() Admission {
	w := b.word.Load()
	if w&flagManual != 0 {
		b.mu.Lock()
		m := b.manual
		b.mu.Unlock()
		return m.over(wordState(w).Admission())
	}
	return wordState(w).Admission()
}

func (b *Breaker) allowSlow(w uint64) (Permit, bool) {
	if w&flagDetached != 0 {
		b.reg.reattach(b)
	}
	if w&flagManual != 0 {
		b.mu.Lock()
		m := b.manual
		b.mu.Unlock()
		switch m {
		case ManualForcedOpen:
			b.nRejected.Add(1)
			return Permit{}, false
		case ManualDisabled:
			return Permit{b: b, kind: permitDisabled}, true
		case ManualMetricsOnly:
			if p, ok := b.allowAuto(); ok {
				return p, true
			}
			// The machine would reject: count it, admit it anyway.
			b.nRejected.Add(1)
			return Permit{b: b, kind: permitShadow}, true
		}
	}
	if p, ok := b.allowAuto(); ok {
		return p, true
	}
	b.nRejected.Add(1)
	return Permit{}, false
}

// allowAuto is the state machine's own admission decision.
func (b *Breaker) allowAuto() (Permit, bool) {
	w := b.word.Load()
	switch wordState(w) {
	case Closed:
		return b.enter(Permit{b: b, at: stamp{gen: wordGen(w)}, kind: permitClosed}), true
	case RampingUp:
		w, locked := b.lockIn(RampingUp)
		if !locked {
			return b.allowAuto()
		}
		ok := b.rampAdmitLocked(b.reg.now())
		b.mu.Unlock()
		if !ok {
			return Permit{}, false
		}
		return b.enter(Permit{b: b, at: stamp{gen: wordGen(w)}, kind: permitClosed}), true
	case HalfOpen:
		w, locked := b.lockIn(HalfOpen)
		if !locked {
			return b.allowAuto()
		}
		if b.probes >= b.p.halfOpenPermits {
			b.mu.Unlock()
			return Permit{}, false
		}
		b.probes++
		if b.timer == nil {
			// A probe whose Done never comes (a lost permit, a call hung
			// without a deadline) would hold its slot forever and leave
			// the breaker half-open for good: the first probe arms the
			// probe timeout. Without a probe there is nothing to time
			// out: half-open waits for a call.
			b.applyLocked(EvFirstProbe, "", 0)
		}
		b.mu.Unlock()
		return b.enter(Permit{b: b, at: stamp{gen: wordGen(w)}, kind: permitProbe}), true
	}
	return Permit{}, false // Open, Ejected
}

// lockIn takes the lock if the machine is still in st, as the caller read
// it without the lock, and returns the word; a transition in between
// leaves the lock free.
func (b *Breaker) lockIn(st State) (uint64, bool) {
	b.mu.Lock()
	w := b.word.Load()
	if wordState(w) != st {
		b.mu.Unlock()
		return w, false
	}
	return w, true
}

// rampAdmitLocked admits the share (now-closedAt)/ramp_up of calls, spread
// evenly and deterministically: each call adds the current share to an
// accumulator and is admitted when it reaches one (error diffusion), so the
// share admitted follows the ramp without bursts or catch-up. Once ramp_up
// has elapsed the ramp is done (back on the fast path).
func (b *Breaker) rampAdmitLocked(now int64) bool {
	elapsed := now - b.closedAt
	if elapsed >= b.p.rampUp {
		b.applyLocked(EvRampDone, "", 0)
		return true
	}
	b.rampAcc += float64(elapsed) / float64(b.p.rampUp)
	if b.rampAcc >= 1 {
		b.rampAcc--
		return true
	}
	return false
}

func (b *Breaker) done(p Permit, out Outcome, hold int64) {
	var now int64
	slow := false
	if p.start != 0 {
		now = b.reg.now()
		b.exit(p)
		slow = now-p.start >= b.p.slowDur
		if now-b.lastDone.Load() >= b.p.cohortWidth {
			b.lastDone.Store(now)
		}
	}
	if p.issued() == permitShadow {
		return
	}
	switch out {
	case Success:
		b.nSuccess.Add(1)
	case Failure:
		b.nFailure.Add(1)
	default:
		b.nIgnored.Add(1)
	}
	switch p.issued() {
	case permitDisabled:
		return
	case permitProbe:
		b.probeDone(p, out, hold, slow)
		return
	}
	w := b.word.Load()
	if wordGen(w) != p.at.gen || !wordState(w).closedLike() {
		return // issued in an older generation: says nothing about this one
	}
	if out == Ignored {
		return
	}
	if now == 0 {
		now = b.reg.coarse()
	}
	bk := b.bucket(now)
	bk.calls.Add(1)
	if slow {
		bk.slows.Add(1)
	}
	if out == Success {
		if b.consec.Load() != 0 {
			b.consec.Store(0)
		}
		if slow && b.p.slowRatio > 0 {
			b.evaluate(now, p.at.gen)
		}
		return
	}
	bk.fails.Add(1)
	if hold > 0 {
		b.fire(p.at.gen, EvThrottle, "", min(hold, b.p.maxOpen))
		return
	}
	if n := b.consec.Add(1); b.p.consecutive > 0 && n >= b.p.consecutive {
		b.fire(p.at.gen, EvTrip, "consecutive_failures", 0)
		return
	}
	b.evaluate(now, p.at.gen)
}

// probeDone turns a probe's outcome into the table's event.
func (b *Breaker) probeDone(p Permit, out Outcome, hold int64, slow bool) {
	b.mu.Lock()
	w := b.word.Load()
	if wordGen(w) != p.at.gen || wordState(w) != HalfOpen {
		b.mu.Unlock()
		return
	}
	b.probes--
	switch {
	case hold > 0:
		b.applyLocked(EvThrottle, "", min(hold, b.p.maxOpen))
	case out == Failure:
		b.applyLocked(EvProbeFailed, "probe_failed", 0)
	case out == Ignored:
		// The probe told us nothing; its slot is free for another.
	case slow && b.p.slowRatio > 0:
		b.applyLocked(EvProbeFailed, "probe_slow", 0)
	default:
		b.probeSuccesses++
		if b.probeSuccesses >= b.p.successThreshold {
			b.applyLocked(EvProbesSucceeded, "", 0)
		}
	}
	b.mu.Unlock()
	b.reg.deliver()
}

// fire applies ev if the breaker is still in generation gen, the one the
// detector decided against; a stale event (a transition came in between)
// is dropped.
func (b *Breaker) fire(gen uint32, ev Event, reason string, d int64) {
	b.mu.Lock()
	if wordGen(b.word.Load()) != gen {
		b.mu.Unlock()
		return
	}
	b.applyLocked(ev, reason, d)
	b.mu.Unlock()
	b.reg.deliver()
}

// timerFired is the callback of the timer numbered seq: the state's timer
// event, unless that timer was stopped or replaced meanwhile. A probe
// timeout with no probe left in flight has nothing to time out.
func (b *Breaker) timerFired(seq uint64) {
	b.mu.Lock()
	if b.timer == nil || b.timerSeq != seq {
		b.mu.Unlock()
		return
	}
	ev := EvTimer
	if wordState(b.word.Load()) == HalfOpen && b.probes == 0 {
		ev = EvProbesIdle
	}
	b.applyLocked(ev, "", 0)
	b.mu.Unlock()
	b.reg.deliver()
}

// calls is the number of outcomes and rejections so far: the sweeper's
// measure of use, read from counters the call path keeps anyway.
func (b *Breaker) calls() uint64 {
	return b.nSuccess.Load() + b.nFailure.Load() + b.nIgnored.Load() + b.nRejected.Load()
}

// stop cancels the timer (shutdown).
func (b *Breaker) stop() {
	b.mu.Lock()
	b.stopped = true
	b.stopTimerLocked()
	b.mu.Unlock()
}
