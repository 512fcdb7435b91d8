// Copyright The otelcsp Authors
// SPDX-License-Identifier: Apache-2.0

package engine

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// model is a reference breaker written the plain way, one method per input
// and a switch on the state, independent of the engine's table: what the
// README says a breaker does. It covers every state and every event of the
// table: consecutive-failure trips, throttle holds, backoff with its reset
// after a long close, half-open permits, success_threshold, the probe
// timeout and its idle case, ramp-up, ejection and forgetting. Ratios, slow
// calls and stalls (other detectors of the same EvTrip and EvProbeFailed),
// jitter and manual states are off. It names the cells of the engine's
// table it takes, so the test can require every cell to be taken.
type model struct {
	p          Policy
	state      State
	gen        uint32
	consec     int
	level      int
	closedAt   time.Duration // 0: never closed after a trip
	openUntil  time.Duration
	timerDue   time.Duration // 0: no timer
	probes     int
	successes  int
	rampAcc    float64
	now        time.Duration
	log        []string
	rejections int
	cells      map[[2]int]int // (State, Event) → times taken
}

type modelPermit struct {
	gen   uint32
	probe bool
}

func newModel(p Policy, now time.Duration) *model {
	return &model{p: p, state: Closed, gen: 1, now: now, log: []string{}, cells: map[[2]int]int{}}
}

func (m *model) took(ev Event) { m.cells[[2]int{int(m.state), int(ev)}]++ }

// moveTo is a visible change: a new generation, logged as callers see it.
func (m *model) moveTo(to State, reason string) {
	m.gen++
	m.log = append(m.log, fmt.Sprintf("%s>%s:%s", m.state.Admission(), to.Admission(), reason))
	m.state = to
}

func (m *model) openFor(d time.Duration, reason string) {
	m.openUntil, m.timerDue = m.now+d, m.now+d
	m.moveTo(Open, reason)
}

func (m *model) backoff() time.Duration {
	f := float64(m.p.OpenDuration) * math.Pow(m.p.BackoffMultiplier, float64(m.level))
	m.level = min(m.level+1, 62)
	return time.Duration(min(f, float64(m.p.MaxOpenDuration)))
}

// tripFromClosed opens a closed breaker: a long close first resets the
// backoff.
func (m *model) tripFromClosed(hold time.Duration, reason string) {
	if m.closedAt != 0 && m.now-m.closedAt >= m.p.MaxOpenDuration {
		m.level = 0
	}
	if hold > 0 {
		m.openFor(hold, reason)
		return
	}
	m.openFor(m.backoff(), reason)
}

func (m *model) closeAgain(reason string) {
	m.consec, m.closedAt, m.rampAcc, m.timerDue = 0, m.now, 0, 0
	to := Closed
	if m.p.RampUp > 0 {
		to = RampingUp
	}
	m.moveTo(to, reason)
}

func (m *model) allow() (modelPermit, bool) {
	switch m.state {
	case Closed:
		return modelPermit{gen: m.gen}, true
	case RampingUp:
		elapsed := m.now - m.closedAt
		if elapsed >= m.p.RampUp {
			m.took(EvRampDone)
			m.state = Closed
			return modelPermit{gen: m.gen}, true
		}
		m.rampAcc += float64(elapsed) / float64(m.p.RampUp)
		if m.rampAcc >= 1 {
			m.rampAcc--
			return modelPermit{gen: m.gen}, true
		}
	case HalfOpen:
		if m.probes < m.p.HalfOpenPermits {
			m.probes++
			if m.timerDue == 0 {
				m.took(EvFirstProbe)
				m.timerDue = m.now + m.p.MaxOpenDuration
			}
			return modelPermit{gen: m.gen, probe: true}, true
		}
	}
	m.rejections++
	return modelPermit{}, false
}

// done reports an outcome; permits of an older generation count for nothing.
func (m *model) done(pm modelPermit, out Outcome, hold time.Duration) {
	if pm.gen != m.gen {
		return
	}
	if pm.probe {
		m.probeDone(out, hold)
		return
	}
	switch {
	case out == Ignored:
	case out == Success:
		m.consec = 0
	case hold > 0:
		m.took(EvThrottle)
		m.tripFromClosed(min(hold, m.p.MaxOpenDuration), "throttled")
	default:
		m.consec++
		if m.consec >= m.p.ConsecutiveFailures {
			m.took(EvTrip)
			m.tripFromClosed(0, "consecutive_failures")
		}
	}
}

func (m *model) probeDone(out Outcome, hold time.Duration) {
	m.probes--
	switch {
	case hold > 0:
		m.took(EvThrottle)
		m.openFor(min(hold, m.p.MaxOpenDuration), "throttled")
	case out == Failure:
		m.took(EvProbeFailed)
		m.openFor(m.backoff(), "probe_failed")
	case out == Success:
		m.successes++
		if m.successes >= m.p.SuccessThreshold {
			m.took(EvProbesSucceeded)
			m.closeAgain("success_threshold")
		}
	}
}

func (m *model) timer() {
	switch m.state {
	case Open:
		m.took(EvTimer)
		m.probes, m.successes, m.timerDue = 0, 0, 0
		m.moveTo(HalfOpen, "open_duration_elapsed")
	case HalfOpen:
		if m.probes == 0 {
			m.took(EvProbesIdle)
			m.timerDue = 0
			return
		}
		m.took(EvTimer)
		m.openFor(m.backoff(), "probe_timeout")
	case Ejected:
		m.took(EvTimer)
		m.closeAgain("ejection_elapsed")
	}
}

func (m *model) eject(d time.Duration, reason string) bool {
	if m.state != Closed && m.state != RampingUp {
		return false
	}
	m.took(EvEject)
	m.openUntil, m.timerDue = m.now+d, m.now+d
	m.moveTo(Ejected, reason)
	return true
}

func (m *model) forget() {
	m.took(EvIdle)
	if m.state == Closed || m.state == RampingUp {
		m.gen++
		m.state = Closed
	} else {
		m.moveTo(Closed, "idle_expiry")
	}
	m.consec, m.level, m.closedAt, m.openUntil, m.timerDue, m.rampAcc = 0, 0, 0, 0, 0, 0
	m.probes, m.successes = 0, 0
}

// advance moves time, firing the timer when it is due.
func (m *model) advance(d time.Duration) {
	target := m.now + d
	for m.timerDue != 0 && m.timerDue <= target {
		m.now = m.timerDue
		m.timer()
	}
	m.now = target
}

// TestEngineAgreesWithReferenceModel drives the engine's table and the
// reference model with the same random sequences of calls, outcomes, time
// steps, ejections and forgetting on a fake clock, and requires them to
// agree after every step on the admission of every call, the machine's
// state, what callers see, the generation, every transition (from, to,
// reason), whether a timer is armed and when the open period ends; and
// requires every cell of the table to be taken.
func TestEngineAgreesWithReferenceModel(t *testing.T) {
	cells := map[[2]int]int{}
	for seed := uint64(1); seed <= 400; seed++ {
		r := rand.New(rand.NewPCG(seed, 14))
		p := testPolicy()
		p.ConsecutiveFailures = 1 + r.IntN(4)
		p.HalfOpenPermits = 1 + r.IntN(3)
		p.SuccessThreshold = 1 + r.IntN(3)
		p.OpenDuration = time.Duration(1+r.IntN(3)) * time.Second
		p.MaxOpenDuration = p.OpenDuration * time.Duration(1+r.IntN(8))
		p.BackoffMultiplier = []float64{1, 1.5, 2}[r.IntN(3)]
		if r.IntN(2) == 0 {
			p.RampUp = time.Duration(2+r.IntN(9)) * time.Second
		}
		h := newHarness(t, p)
		b := h.br("k")
		m := newModel(p, time.Duration(mono(h.clk)))

		type held struct {
			engine Permit
			model  modelPermit
		}
		var permits []held
		trace := []string{}
		for step := range 300 {
			switch op := r.IntN(100); {
			case op < 40:
				pe, ok := b.Allow()
				pm, mok := m.allow()
				trace = append(trace, fmt.Sprintf("allow:%v", mok))
				require.Equal(t, mok, ok, "seed %d step %d: admission differs; trace %v", seed, step, trace)
				if ok {
					permits = append(permits, held{pe, pm})
				}
			case op < 80:
				if len(permits) == 0 {
					continue
				}
				i := r.IntN(len(permits))
				pr := permits[i]
				permits = append(permits[:i], permits[i+1:]...)
				out, hold := Success, time.Duration(0)
				switch k := r.IntN(10); {
				case k < 4:
				case k < 8:
					out = Failure
				case k < 9:
					out, hold = Failure, time.Duration(1+r.IntN(20))*500*time.Millisecond
				default:
					out = Ignored
				}
				trace = append(trace, fmt.Sprintf("done:%d/%v", out, hold))
				pr.engine.Done(out, hold)
				m.done(pr.model, out, hold)
			case op < 95:
				d := time.Duration(r.IntN(4000)) * time.Millisecond
				trace = append(trace, "advance:"+d.String())
				h.clk.Advance(d)
				m.advance(d)
				require.Equal(t, time.Duration(mono(h.clk)), m.now)
			case op < 98:
				d := time.Duration(1+r.IntN(10)) * time.Second
				trace = append(trace, "eject:"+d.String())
				require.Equal(t, m.eject(d, "outlier_success_rate"), b.eject(int64(d), "outlier_success_rate"),
					"seed %d step %d: ejection differs; trace %v", seed, step, trace)
			default:
				trace = append(trace, "forget")
				h.c.regMu.Lock()
				b.mu.Lock()
				h.c.forgetLocked(b)
				b.mu.Unlock()
				h.c.regMu.Unlock()
				h.c.deliver()
				m.forget()
			}
			w := b.word.Load()
			require.Equal(t, m.state, wordState(w), "seed %d step %d: machine state differs; trace %v", seed, step, trace)
			require.Equal(t, m.state.Admission(), b.Admission(), "seed %d step %d", seed, step)
			require.Equal(t, m.log, h.transitions(), "seed %d step %d: transitions differ; trace %v", seed, step, trace)
			require.Equal(t, m.gen, wordGen(w), "seed %d step %d: generation", seed, step)
			b.mu.Lock()
			armed, until := b.timer != nil, b.openUntil
			b.mu.Unlock()
			require.Equal(t, m.timerDue != 0, armed, "seed %d step %d: timer armed; trace %v", seed, step, trace)
			if rejects(uint64(m.state)) {
				require.Equal(t, m.openUntil, time.Duration(until), "seed %d step %d: open period", seed, step)
			}
		}
		require.Equal(t, uint64(m.rejections), b.nRejected.Load()+h.c.retired.rejected.Load(), "seed %d: rejections", seed)
		for c, n := range m.cells {
			cells[c] += n
		}
	}
	for s := range numStates {
		for ev := range numEvents {
			if table[s][ev] != nil {
				require.Greater(t, cells[[2]int{int(s), int(ev)}], 20, "cell (%s, %s) taken too rarely: %v", s, ev, cells)
			} else {
				require.Zero(t, cells[[2]int{int(s), int(ev)}], "the model took (%s, %s), which the table lacks", s, ev)
			}
		}
	}
}
