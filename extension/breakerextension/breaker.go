// Copyright The otelcsp Authors
// SPDX-License-Identifier: Apache-2.0

package breakerextension // import "github.com/otelcsp/otelcsp/extension/breakerextension"

import (
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/otelcsp/otelcsp/internal/clock"
)

type permitKind uint8

const (
	permitClosed permitKind = iota + 1
	// permitProbe is one of the half-open probes.
	permitProbe
	// permitShadow is a metrics_only admission the machine would have
	// rejected: its outcome feeds nothing.
	permitShadow
	// permitDisabled is an admission of a disabled breaker.
	permitDisabled
)

// The state word packs everything Allow needs into one atomic load: the
// state in the low two bits, flags that force the slow path, and the
// generation in the upper 32 bits. A closed breaker without flags has a low
// byte of 0, so the closed path is a load and a compare.
const (
	stClosed   uint64 = uint64(StateClosed)
	stHalfOpen uint64 = uint64(StateHalfOpen)
	stOpen     uint64 = uint64(StateOpen)
	stateMask  uint64 = 0x3

	flagRamp     uint64 = 1 << 2 // closed, ramping up: admission is rationed
	flagManual   uint64 = 1 << 3 // a manual state is set
	flagDetached uint64 = 1 << 4 // forgotten by the provider; re-attach on use
	lowMask      uint64 = 0xff
	genShift            = 32
)

func wordState(w uint64) uint64 { return w & stateMask }
func wordGen(w uint64) uint32   { return uint32(w >> genShift) }
func makeWord(state, flags uint64, gen uint32) uint64 {
	return uint64(gen)<<genShift | flags | state
}

// Stall detection counts in-flight calls in cohorts by start time. A cohort
// is a quarter of slow_call_duration wide; a call of cohort c has certainly
// been in flight longer than slow_call_duration once the current cohort is
// c+stallAge. Cohorts pushed out of the ring move to `ancient` atomically.
const (
	cohortSlots    = 8
	cohortsPerSlow = 4
	stallAge       = cohortsPerSlow + 1
)

// slot kinds recorded in a Permit for stall accounting.
const (
	slotNone    uint8 = 0
	slotCohort  uint8 = 1
	slotAncient uint8 = 2
)

type bucket struct {
	epoch atomic.Int64 // bucket number (now / width), -1 when empty
	calls atomic.Int64
	fails atomic.Int64
	slows atomic.Int64
}

// policy is a validated PolicyConfig in the units the hot path uses.
type policy struct {
	name             string
	consecutive      int64
	failureRatio     float64
	bucketWidth      int64
	buckets          int64
	ringMask         int64 // ring length - 1: a power of two ≥ buckets, so indexing is a mask, not a division
	minCalls         int64
	slowDur          int64
	slowRatio        float64
	cohortWidth      int64
	openDur          int64
	maxOpen          int64
	mult             float64
	jitter           float64
	halfOpenPermits  int32
	successThreshold int32
	rampUp           int64
}

func compilePolicy(name string, c PolicyConfig) *policy {
	p := &policy{
		name:             name,
		consecutive:      int64(c.ConsecutiveFailures),
		failureRatio:     c.FailureRatio,
		buckets:          int64(c.WindowBuckets),
		bucketWidth:      int64(c.Window) / int64(c.WindowBuckets),
		minCalls:         int64(c.MinCalls),
		slowDur:          int64(c.SlowCallDuration),
		slowRatio:        c.SlowCallRatio,
		openDur:          int64(c.OpenDuration),
		maxOpen:          int64(c.MaxOpenDuration),
		mult:             c.BackoffMultiplier,
		jitter:           c.Jitter,
		halfOpenPermits:  int32(c.HalfOpenPermits),
		successThreshold: int32(c.SuccessThreshold),
		rampUp:           int64(c.RampUp),
	}
	ring := int64(1)
	for ring < p.buckets {
		ring <<= 1
	}
	p.ringMask = ring - 1
	if p.slowDur > 0 {
		p.cohortWidth = max(p.slowDur/cohortsPerSlow, 1)
	}
	return p
}

// breaker is one key's circuit breaker. The closed path touches only
// atomics of this breaker; its mutex guards transitions and the rare paths
// (half-open, ramp-up, manual states).
type breaker struct {
	// Read on every call, written only on transitions: kept together and
	// away from the counters below, so counting does not invalidate the
	// cache line every Allow reads.
	word    atomic.Uint64
	p       *policy
	core    *core
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

	cfgManual ManualState // the manual state config gives the key (immutable)

	mu sync.Mutex
	// guarded by mu
	manual         ManualState
	probes         int32
	probeSuccesses int32
	level          int   // backoff level: trips since the breaker last stayed closed long
	closedAt       int64 // clock reading of the last close (0: never opened)
	openUntil      int64 // clock reading when the open state ends
	lastReason     string
	changedAt      int64 // clock reading of the last change of machine or manual state (or of creation)
	timer          clock.Timer
	stopped        bool // the provider stopped: arm no timer
	rampAcc        float64
	trips          uint64
	lastActive     int64  // clock reading when the sweeper last saw it used
	lastCalls      uint64 // outcome and rejection counts the sweeper last saw
	halfOpenCohort int64  // stall cohort when the breaker last went half-open
	ejected        bool   // open because outlier detection ejected it
}

func newBreaker(c *core, key string, p *policy, m ManualState) *breaker {
	b := &breaker{key: key, p: p, core: c, buckets: make([]bucket, p.ringMask+1), manual: m, cfgManual: m, changedAt: c.now()}
	for i := range b.buckets {
		b.buckets[i].epoch.Store(-1)
	}
	flags := uint64(0)
	if m != ManualNone {
		flags = flagManual
	}
	b.word.Store(makeWord(stClosed, flags, 1))
	return b
}

// Allow implements Breaker.
func (b *breaker) Allow() (Permit, error) {
	w := b.word.Load()
	if w&lowMask == stClosed {
		if b.p.slowDur == 0 {
			return Permit{b: b, gen: wordGen(w), kind: permitClosed}, nil
		}
		return b.enter(Permit{b: b, gen: wordGen(w), kind: permitClosed}), nil
	}
	if w&lowMask == stOpen {
		b.nRejected.Add(1)
		return Permit{}, ErrOpen
	}
	return b.allowSlow(w)
}

// State implements Breaker: the admission state callers see.
func (b *breaker) State() State {
	w := b.word.Load()
	if w&flagManual != 0 {
		b.mu.Lock()
		m := b.manual
		b.mu.Unlock()
		return effectiveState(m, State(wordState(w)))
	}
	return State(wordState(w))
}

func effectiveState(m ManualState, machine State) State {
	switch m {
	case ManualForcedOpen:
		return StateOpen
	case ManualDisabled, ManualMetricsOnly:
		return StateClosed
	}
	return machine
}

func (b *breaker) allowSlow(w uint64) (Permit, error) {
	if w&flagDetached != 0 {
		b.core.reattach(b)
	}
	if w&flagManual != 0 {
		b.mu.Lock()
		m := b.manual
		b.mu.Unlock()
		switch m {
		case ManualForcedOpen:
			b.nRejected.Add(1)
			return Permit{}, ErrOpen
		case ManualDisabled:
			return Permit{b: b, kind: permitDisabled}, nil
		case ManualMetricsOnly:
			if p, ok := b.allowAuto(); ok {
				return p, nil
			}
			// The machine would reject: count it, admit it anyway.
			b.nRejected.Add(1)
			return Permit{b: b, kind: permitShadow}, nil
		}
	}
	if p, ok := b.allowAuto(); ok {
		return p, nil
	}
	b.nRejected.Add(1)
	return Permit{}, ErrOpen
}

// allowAuto is the state machine's own admission decision.
func (b *breaker) allowAuto() (Permit, bool) {
	w := b.word.Load()
	switch wordState(w) {
	case stOpen:
		return Permit{}, false
	case stClosed:
		if w&flagRamp == 0 {
			return b.enter(Permit{b: b, gen: wordGen(w), kind: permitClosed}), true
		}
		b.mu.Lock()
		w = b.word.Load()
		if wordState(w) != stClosed {
			b.mu.Unlock()
			return b.allowAuto()
		}
		if w&flagRamp != 0 && !b.rampAdmitLocked(b.core.now()) {
			b.mu.Unlock()
			return Permit{}, false
		}
		b.mu.Unlock()
		return b.enter(Permit{b: b, gen: wordGen(w), kind: permitClosed}), true
	default: // half-open
		b.mu.Lock()
		w = b.word.Load()
		if wordState(w) != stHalfOpen {
			b.mu.Unlock()
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
			// the breaker half-open for good: if the state has not moved
			// on max_open_duration after the first probe, give up on the
			// probes in flight and open again. Without a probe there is
			// nothing to time out: half-open waits for a call.
			hgen := wordGen(w)
			b.armLocked(time.Duration(b.p.maxOpen), func() { b.halfOpenExpired(hgen) })
		}
		b.mu.Unlock()
		return b.enter(Permit{b: b, gen: wordGen(w), kind: permitProbe}), true
	}
}

// rampAdmitLocked admits the share (now-closedAt)/ramp_up of calls, spread
// evenly and deterministically: each call adds the current share to an
// accumulator and is admitted when it reaches one (error diffusion), so the
// share admitted follows the ramp without bursts or catch-up. It ends the
// ramp (clears flagRamp) once ramp_up has elapsed.
func (b *breaker) rampAdmitLocked(now int64) bool {
	elapsed := now - b.closedAt
	if elapsed >= b.p.rampUp {
		w := b.word.Load()
		b.word.Store(w &^ flagRamp)
		return true
	}
	b.rampAcc += float64(elapsed) / float64(b.p.rampUp)
	if b.rampAcc >= 1 {
		b.rampAcc--
		return true
	}
	return false
}

// enter stamps the permit with its start time and in-flight cohort when the
// policy watches slow calls.
func (b *breaker) enter(p Permit) Permit {
	if b.p.slowDur == 0 {
		return p
	}
	now := b.core.now()
	p.start = now
	c := uint32(now / b.p.cohortWidth)
	s := &b.slots[c%cohortSlots]
	for {
		v := s.Load()
		vc := uint32(v >> 32)
		switch {
		case vc == c:
			if s.CompareAndSwap(v, v+1) {
				p.slot, p.cohort = slotCohort, c
				return p
			}
		case int32(c-vc) > 0:
			// The slot holds an older cohort: retire it into ancient.
			if s.CompareAndSwap(v, uint64(c)<<32|1) {
				if n := int64(uint32(v)); n > 0 {
					b.ancient.Add(n)
				}
				p.slot, p.cohort = slotCohort, c
				return p
			}
		default:
			// Our clock reading lost a race to a newer cohort: count the
			// call as ancient; it is at most one cohort off.
			b.ancient.Add(1)
			p.slot = slotAncient
			return p
		}
	}
}

func (b *breaker) exit(p Permit) {
	if p.slot == slotCohort {
		s := &b.slots[p.cohort%cohortSlots]
		for {
			v := s.Load()
			if uint32(v>>32) != p.cohort {
				break // retired: its count lives in ancient now
			}
			if s.CompareAndSwap(v, v-1) {
				return
			}
		}
	}
	b.ancient.Add(-1)
}

// stalled counts calls in flight longer than slow_call_duration that started
// since the breaker last closed.
func (b *breaker) stalled(now int64) int64 {
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

func (b *breaker) done(p Permit, err error) {
	out, hold := OutcomeSuccess, time.Duration(0)
	if err != nil {
		out, hold = Classify(err)
	}
	var now int64
	slow := false
	if p.slot != slotNone {
		now = b.core.now()
		b.exit(p)
		slow = now-p.start >= b.p.slowDur
		if now-b.lastDone.Load() >= b.p.cohortWidth {
			b.lastDone.Store(now)
		}
	}
	if p.kind == permitShadow {
		return
	}
	switch out {
	case OutcomeSuccess:
		b.nSuccess.Add(1)
	case OutcomeFailure:
		b.nFailure.Add(1)
	default:
		b.nIgnored.Add(1)
	}
	switch p.kind {
	case permitDisabled:
		return
	case permitProbe:
		b.probeDone(p, out, hold, slow)
		return
	}
	w := b.word.Load()
	if wordGen(w) != p.gen || wordState(w) != stClosed {
		return // issued in an older generation: says nothing about this one
	}
	if out == OutcomeIgnored {
		return
	}
	if now == 0 {
		now = b.core.coarse()
	}
	bk := b.bucket(now)
	bk.calls.Add(1)
	if slow {
		bk.slows.Add(1)
	}
	if out == OutcomeSuccess {
		if b.consec.Load() != 0 {
			b.consec.Store(0)
		}
		if slow && b.p.slowRatio > 0 {
			b.evaluate(now, p.gen)
		}
		return
	}
	bk.fails.Add(1)
	if hold > 0 {
		b.trip(p.gen, "throttled", int64(hold))
		return
	}
	if n := b.consec.Add(1); b.p.consecutive > 0 && n >= b.p.consecutive {
		b.trip(p.gen, "consecutive_failures", 0)
		return
	}
	b.evaluate(now, p.gen)
}

// bucket returns the window bucket for now, claiming it for the current
// epoch when it holds an old one. Adds that race with the reset may be lost:
// the window is a statistic, exact to within a few calls at bucket borders.
func (b *breaker) bucket(now int64) *bucket {
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
func (b *breaker) window(now int64) (calls, fails, slows int64) {
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

// evaluate trips on the window ratios; stalled calls count as slow calls.
func (b *breaker) evaluate(now int64, gen uint32) {
	if b.p.failureRatio == 0 && (b.p.slowRatio == 0 || b.p.slowDur == 0) {
		return
	}
	calls, fails, slows := b.window(now)
	if b.p.failureRatio > 0 && calls >= b.p.minCalls && float64(fails) >= b.p.failureRatio*float64(calls) {
		b.trip(gen, "failure_ratio", 0)
		return
	}
	if b.p.slowRatio > 0 && b.p.slowDur > 0 {
		st := b.stalled(now)
		if calls+st >= b.p.minCalls && float64(slows+st) >= b.p.slowRatio*float64(calls+st) {
			reason := "slow_call_ratio"
			if st > 0 && slows == 0 {
				reason = "stall"
			}
			b.trip(gen, reason, 0)
		}
	}
}

// checkStall runs from the provider's ticker: a black-holed backend sends
// back no outcomes, so only the clock can notice it. A call stuck past
// slow_call_duration while no call at all finished for that long is a
// frozen backend; as many stuck calls as consecutive_failures is as strong a
// sign as that many failures in a row; fewer still weigh in the slow-call
// ratio.
func (b *breaker) checkStall(now int64) {
	w := b.word.Load()
	if b.p.slowDur == 0 {
		return
	}
	if wordState(w) == stHalfOpen {
		b.checkProbeStall(now, wordGen(w))
		return
	}
	if wordState(w) != stClosed {
		return
	}
	st := b.stalled(now)
	if st == 0 {
		return
	}
	if now-b.lastDone.Load() >= b.p.slowDur {
		b.trip(wordGen(w), "stall", 0)
		return
	}
	if b.p.consecutive > 0 && st >= b.p.consecutive {
		b.trip(wordGen(w), "stall", 0)
		return
	}
	b.evaluate(now, wordGen(w))
}

// checkProbeStall reopens a half-open breaker whose probe has been in flight
// longer than slow_call_duration: it would count as slow when it finishes,
// and waiting for it only keeps the backend's recovery unknown for longer.
func (b *breaker) checkProbeStall(now int64, gen uint32) {
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
			w := b.word.Load()
			if wordGen(w) == gen && wordState(w) == stHalfOpen && b.probes > 0 {
				b.toOpenLocked(now, 0, "probe_stalled")
			}
			b.mu.Unlock()
			b.core.deliver()
			return
		}
	}
}

func (b *breaker) probeDone(p Permit, out Outcome, hold time.Duration, slow bool) {
	b.mu.Lock()
	w := b.word.Load()
	if wordGen(w) != p.gen || wordState(w) != stHalfOpen {
		b.mu.Unlock()
		return
	}
	b.probes--
	now := b.core.now()
	switch {
	case hold > 0:
		b.toOpenLocked(now, int64(hold), "throttled")
	case out == OutcomeFailure:
		b.toOpenLocked(now, 0, "probe_failed")
	case out == OutcomeIgnored:
		// The probe told us nothing; its slot is free for another.
	case slow && b.p.slowRatio > 0:
		b.toOpenLocked(now, 0, "probe_slow")
	default:
		b.probeSuccesses++
		if b.probeSuccesses >= b.p.successThreshold {
			b.toClosedLocked(now, "success_threshold")
		}
	}
	b.mu.Unlock()
	b.core.deliver()
}

// lockIfAt takes the key's lock if the machine is still in generation gen
// and state st, what a trip or a timer was decided against, and reports
// whether it did; a stale event (a transition came in between) leaves the
// lock free and is dropped.
func (b *breaker) lockIfAt(gen uint32, st uint64) bool {
	b.mu.Lock()
	w := b.word.Load()
	if wordGen(w) != gen || wordState(w) != st {
		b.mu.Unlock()
		return false
	}
	return true
}

// trip opens a closed breaker of generation gen (a stale trip is dropped).
func (b *breaker) trip(gen uint32, reason string, hold int64) {
	if !b.lockIfAt(gen, stClosed) {
		return
	}
	now := b.core.now()
	if b.closedAt != 0 && now-b.closedAt >= b.p.maxOpen {
		// It stayed closed long enough: this is a new incident.
		b.level = 0
	}
	b.toOpenLocked(now, hold, reason)
	b.mu.Unlock()
	b.core.deliver()
}

// openDurationLocked is open_duration * multiplier^level capped at
// max_open_duration, shortened by up to jitter of itself so breakers that
// tripped together do not probe together.
func (b *breaker) openDurationLocked() int64 {
	d := float64(b.p.openDur) * math.Pow(b.p.mult, float64(b.level))
	if d > float64(b.p.maxOpen) || math.IsInf(d, 0) {
		d = float64(b.p.maxOpen)
	}
	if b.p.jitter > 0 {
		d -= d * b.p.jitter * b.core.random()
	}
	return max(int64(d), 1)
}

func (b *breaker) toOpenLocked(now, hold int64, reason string) {
	var d int64
	if hold > 0 {
		d = min(hold, b.p.maxOpen)
	} else {
		d = b.openDurationLocked()
		if b.level < 62 {
			b.level++
		}
	}
	b.openUntil = now + d
	b.trips++
	gen := b.setStateLocked(stOpen, 0, reason)
	if b.timer != nil {
		b.timer.Stop()
	}
	b.armLocked(time.Duration(d), func() { b.openElapsed(gen) })
}

// armLocked sets the breaker's one timer, unless the provider stopped: a
// timer firing during shutdown must not leave a new one behind.
func (b *breaker) armLocked(d time.Duration, f func()) {
	if b.stopped {
		b.timer = nil
		return
	}
	b.timer = b.core.clk.AfterFunc(d, f)
}

func (b *breaker) openElapsed(gen uint32) {
	if !b.lockIfAt(gen, stOpen) {
		return
	}
	b.probes, b.probeSuccesses = 0, 0
	if b.p.slowDur > 0 {
		b.halfOpenCohort = b.core.now() / b.p.cohortWidth
	}
	b.timer = nil // it fired; the first probe arms the probe timeout
	b.setStateLocked(stHalfOpen, 0, "open_duration_elapsed")
	b.mu.Unlock()
	b.core.deliver()
}

func (b *breaker) halfOpenExpired(gen uint32) {
	if !b.lockIfAt(gen, stHalfOpen) {
		return
	}
	b.timer = nil
	if b.probes == 0 {
		// The probes came back (with nothing to say): wait for a call,
		// whose probe arms the timeout again.
		b.mu.Unlock()
		return
	}
	b.toOpenLocked(b.core.now(), 0, "probe_timeout")
	b.mu.Unlock()
	b.core.deliver()
}

func (b *breaker) toClosedLocked(now int64, reason string) {
	if b.timer != nil {
		b.timer.Stop()
		b.timer = nil
	}
	b.consec.Store(0)
	for i := range b.buckets {
		b.buckets[i].epoch.Store(-1)
		b.buckets[i].calls.Store(0)
		b.buckets[i].fails.Store(0)
		b.buckets[i].slows.Store(0)
	}
	b.closedAt = now
	b.rampAcc = 0
	if b.p.slowDur > 0 {
		b.stallFloor.Store(now / b.p.cohortWidth)
		b.ancientBase.Store(b.ancient.Load())
	}
	var flags uint64
	if b.p.rampUp > 0 {
		flags = flagRamp
	}
	b.setStateLocked(stClosed, flags, reason)
}

// setStateLocked moves to state with a new generation, keeping the manual
// and detached flags, and queues the change for subscribers.
func (b *breaker) setStateLocked(state, flags uint64, reason string) uint32 {
	w := b.word.Load()
	gen := wordGen(w) + 1
	keep := w & (flagManual | flagDetached)
	b.word.Store(makeWord(state, flags|keep, gen))
	b.lastReason = reason
	b.changedAt = b.core.now()
	b.ejected = false
	from, to := State(wordState(w)), State(state)
	ch := StateChange{Key: b.key, Generation: uint64(gen), Reason: reason, From: from, To: to}
	switch b.manual {
	case ManualMetricsOnly:
		ch.Shadow = true
	case ManualNone:
	default:
		// Forced open or disabled: the machine does not run visibly.
		ch.Shadow = true
	}
	b.core.enqueue(ch, effectiveState(b.manual, to))
	return gen
}

// setManual changes the manual state; the admission state callers see may
// change, which subscribers hear about. A key whose manual state differs
// from the one config gives it is a runtime override; there are at most
// max_manual_keys of them (errTooManyManual), because overrides are never
// forgotten.
func (b *breaker) setManual(m ManualState) error {
	b.mu.Lock()
	old := b.manual
	if old == m {
		b.mu.Unlock()
		return nil
	}
	if wasOverride, isOverride := old != b.cfgManual, m != b.cfgManual; isOverride && !wasOverride {
		if !b.core.addOverride() {
			b.mu.Unlock()
			return errTooManyManual
		}
	} else if wasOverride && !isOverride {
		b.core.overrides.Add(-1)
	}
	w := b.word.Load()
	machine := State(wordState(w))
	b.manual = m
	b.changedAt = b.core.now()
	if m == ManualNone {
		b.word.Store(w &^ flagManual)
	} else {
		b.word.Store(w | flagManual)
	}
	from, to := effectiveState(old, machine), effectiveState(m, machine)
	b.core.enqueue(StateChange{Key: b.key, From: from, To: to, Generation: uint64(wordGen(w)), Reason: "manual:" + m.String()}, to)
	b.mu.Unlock()
	b.core.deliver()
	return nil
}

// eject opens a closed breaker for d on outlier detection's word (reason
// says which ejection): the open period takes no backoff step, and when it
// has elapsed the key returns to service, closed, as an Envoy host is
// unejected, rather than probing. A breaker not closed, or forced open or
// disabled, is left alone.
func (b *breaker) eject(d int64, reason string) bool {
	b.mu.Lock()
	w := b.word.Load()
	if wordState(w) != stClosed || b.manual == ManualForcedOpen || b.manual == ManualDisabled {
		b.mu.Unlock()
		return false
	}
	b.openUntil = b.core.now() + d
	b.trips++
	gen := b.setStateLocked(stOpen, 0, reason)
	b.ejected = true
	if b.timer != nil {
		b.timer.Stop()
	}
	b.armLocked(time.Duration(d), func() { b.ejectionElapsed(gen) })
	b.mu.Unlock()
	b.core.deliver()
	return true
}

func (b *breaker) ejectionElapsed(gen uint32) {
	if !b.lockIfAt(gen, stOpen) {
		return
	}
	b.timer = nil
	b.toClosedLocked(b.core.now(), "ejection_elapsed")
	b.mu.Unlock()
	b.core.deliver()
}

func (b *breaker) isEjected() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.ejected
}

// calls is the number of outcomes and rejections so far: the sweeper's
// measure of use, read from counters the call path keeps anyway.
func (b *breaker) calls() uint64 {
	return b.nSuccess.Load() + b.nFailure.Load() + b.nIgnored.Load() + b.nRejected.Load()
}

// forgetLocked returns an idle automatic breaker to the state of a new key
// (closed, nothing counted, backoff at its first step, a new generation so
// that permits still out do not count) and marks it detached: a holder that
// uses it again puts it back into the provider's registry, and behaves
// exactly as a key created afresh would. A breaker that was not closed
// queues the change (reason idle_expiry), so the open-key status and
// subscribers follow.
func (b *breaker) forgetLocked(now int64) {
	if b.timer != nil {
		b.timer.Stop()
		b.timer = nil
	}
	w := b.word.Load()
	b.consec.Store(0)
	for i := range b.buckets {
		b.buckets[i].epoch.Store(-1)
		b.buckets[i].calls.Store(0)
		b.buckets[i].fails.Store(0)
		b.buckets[i].slows.Store(0)
	}
	if b.p.slowDur > 0 {
		b.stallFloor.Store(now / b.p.cohortWidth)
		b.ancientBase.Store(b.ancient.Load())
	}
	b.probes, b.probeSuccesses = 0, 0
	b.level, b.closedAt, b.openUntil, b.rampAcc, b.trips = 0, 0, 0, 0, 0
	b.lastActive, b.lastCalls = 0, 0
	if wordState(w) == stClosed {
		b.word.Store(makeWord(stClosed, w&flagManual|flagDetached, wordGen(w)+1))
		b.changedAt = now
		return
	}
	b.word.Store(w | flagDetached)
	b.setStateLocked(stClosed, 0, "idle_expiry")
}

// stop cancels the open timer (shutdown).
func (b *breaker) stop() {
	b.mu.Lock()
	b.stopped = true
	if b.timer != nil {
		b.timer.Stop()
		b.timer = nil
	}
	b.mu.Unlock()
}
