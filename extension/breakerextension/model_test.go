// Copyright The otelcsp Authors
// SPDX-License-Identifier: Apache-2.0

package breakerextension

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// The reference model of one breaker: the README's state machine written
// as an explicit transition table, with the time-driven events (open period
// elapsed, probe timeout) taken in due-time order. It covers the
// consecutive-failure trip, throttle holds, backoff with its reset after a
// long close, half-open permits, success_threshold and the probe timeout;
// ratios, slow calls, ramp-up, jitter and manual states are off in the
// test that compares it with the engine.

type modelEvent int

const (
	evSuccess modelEvent = iota
	evFailure
	evThrottle
	evIgnored
	evOpenElapsed
	evProbeTimeout
)

// modelRow is one row of the table: in state from, on event, if the guard
// holds, move to to with reason (to == from and reason "" means no
// transition; the row's action still runs).
type modelRow struct {
	from   State
	event  modelEvent
	probe  bool // the outcome is a half-open probe's
	guard  func(*model) bool
	to     State
	reason string
	action func(*model)
}

type model struct {
	p          PolicyConfig
	state      State
	gen        uint64
	consec     int
	level      int
	closedAt   time.Duration // 0: never opened
	openUntil  time.Duration
	probeDue   time.Duration // 0: no probe timeout armed
	probes     int
	successes  int
	hold       time.Duration // the throttle delay of the outcome at hand
	now        time.Duration
	log        []string
	table      []modelRow
	rejections int
}

func newModel(p PolicyConfig) *model {
	m := &model{p: p, state: StateClosed, gen: 1, log: []string{}}
	always := func(*model) bool { return true }
	m.table = []modelRow{
		{StateClosed, evSuccess, false, always, StateClosed, "", func(m *model) { m.consec = 0 }},
		{StateClosed, evFailure, false, func(m *model) bool { return m.consec+1 >= m.p.ConsecutiveFailures && m.p.ConsecutiveFailures > 0 },
			StateOpen, "consecutive_failures", func(m *model) { m.consec++; m.trip(0) }},
		{StateClosed, evFailure, false, always, StateClosed, "", func(m *model) { m.consec++ }},
		{StateClosed, evThrottle, false, always, StateOpen, "throttled", func(m *model) { m.consec++; m.trip(m.hold) }},
		{StateClosed, evIgnored, false, always, StateClosed, "", nil},
		{StateOpen, evOpenElapsed, false, always, StateHalfOpen, "open_duration_elapsed", func(m *model) { m.probes, m.successes = 0, 0 }},
		{StateHalfOpen, evSuccess, true, func(m *model) bool { return m.successes+1 >= m.p.SuccessThreshold },
			StateClosed, "success_threshold", func(m *model) { m.probes--; m.close() }},
		{StateHalfOpen, evSuccess, true, always, StateHalfOpen, "", func(m *model) { m.probes--; m.successes++ }},
		{StateHalfOpen, evFailure, true, always, StateOpen, "probe_failed", func(m *model) { m.probes--; m.open(0) }},
		{StateHalfOpen, evThrottle, true, always, StateOpen, "throttled", func(m *model) { m.probes--; m.open(m.hold) }},
		{StateHalfOpen, evIgnored, true, always, StateHalfOpen, "", func(m *model) { m.probes-- }},
		{StateHalfOpen, evProbeTimeout, false, func(m *model) bool { return m.probes > 0 }, StateOpen, "probe_timeout", func(m *model) { m.open(0) }},
		{StateHalfOpen, evProbeTimeout, false, always, StateHalfOpen, "", func(m *model) { m.probeDue = 0 }},
	}
	return m
}

// trip opens from closed: a long close resets the backoff first.
func (m *model) trip(hold time.Duration) {
	if m.closedAt != 0 && m.now-m.closedAt >= m.p.MaxOpenDuration {
		m.level = 0
	}
	m.open(hold)
}

func (m *model) open(hold time.Duration) {
	var d time.Duration
	if hold > 0 {
		d = min(hold, m.p.MaxOpenDuration)
	} else {
		f := float64(m.p.OpenDuration) * math.Pow(m.p.BackoffMultiplier, float64(m.level))
		d = time.Duration(min(f, float64(m.p.MaxOpenDuration)))
		m.level = min(m.level+1, 62)
	}
	m.openUntil, m.probeDue = m.now+d, 0
}

func (m *model) close() {
	m.consec, m.closedAt, m.probeDue = 0, m.now, 0
}

// fire applies the first row matching (state, event, probe) whose guard holds.
func (m *model) fire(ev modelEvent, probe bool) {
	for _, r := range m.table {
		if r.from != m.state || r.event != ev || r.probe != probe || !r.guard(m) {
			continue
		}
		if r.action != nil {
			r.action(m)
		}
		if r.reason != "" {
			m.gen++
			m.log = append(m.log, fmt.Sprintf("%s>%s:%s", m.state, r.to, r.reason))
			m.state = r.to
		}
		return
	}
}

type modelPermit struct {
	gen   uint64
	probe bool
}

// allow is the admission side: closed admits, open refuses, half-open
// admits half_open_permits probes, the first arming the probe timeout.
func (m *model) allow() (modelPermit, bool) {
	switch m.state {
	case StateClosed:
		return modelPermit{gen: m.gen}, true
	case StateHalfOpen:
		if m.probes >= m.p.HalfOpenPermits {
			m.rejections++
			return modelPermit{}, false
		}
		m.probes++
		if m.probeDue == 0 {
			m.probeDue = m.now + m.p.MaxOpenDuration
		}
		return modelPermit{gen: m.gen, probe: true}, true
	}
	m.rejections++
	return modelPermit{}, false
}

// done reports an outcome; permits of an older generation count for nothing.
func (m *model) done(pm modelPermit, ev modelEvent, hold time.Duration) {
	if pm.gen != m.gen {
		return
	}
	m.hold = hold
	m.fire(ev, pm.probe)
}

// advance moves time, firing the open and probe deadlines in order.
func (m *model) advance(d time.Duration) {
	target := m.now + d
	for {
		switch {
		case m.state == StateOpen && m.openUntil <= target:
			m.now = m.openUntil
			m.fire(evOpenElapsed, false)
		case m.state == StateHalfOpen && m.probeDue != 0 && m.probeDue <= target:
			m.now = m.probeDue
			m.fire(evProbeTimeout, false)
		default:
			m.now = target
			return
		}
	}
}

// TestEngineAgreesWithReferenceModel drives the engine and the reference
// model with the same random sequences of calls, outcomes and time steps on
// a fake clock, and requires them to agree on the admission of every call,
// on the state after every step and on every transition (from, to,
// reason) and generation.
func TestEngineAgreesWithReferenceModel(t *testing.T) {
	throttleErr := func(d time.Duration) error {
		st, err := status.New(codes.ResourceExhausted, "slow down").WithDetails(retryInfo(d))
		require.NoError(t, err)
		return st.Err()
	}
	seen := map[string]int{}
	for seed := uint64(1); seed <= 400; seed++ {
		r := rand.New(rand.NewPCG(seed, 14))
		p := testPolicy()
		p.ConsecutiveFailures = 1 + r.IntN(4)
		p.HalfOpenPermits = 1 + r.IntN(3)
		p.SuccessThreshold = 1 + r.IntN(3)
		p.OpenDuration = time.Duration(1+r.IntN(3)) * time.Second
		p.MaxOpenDuration = p.OpenDuration * time.Duration(1+r.IntN(8))
		p.BackoffMultiplier = []float64{1, 1.5, 2}[r.IntN(3)]
		h := newHarness(t, p)
		b := h.br("k")
		m := newModel(p)
		start := time.Duration(mono(h.clk))

		type held struct {
			engine Permit
			model  modelPermit
		}
		var permits []held
		trace := []string{}
		for step := range 300 {
			switch op := r.IntN(100); {
			case op < 40:
				pe, err := b.Allow()
				pm, ok := m.allow()
				trace = append(trace, fmt.Sprintf("allow:%v", ok))
				require.Equal(t, ok, err == nil, "seed %d step %d: admission differs (model %v); trace %v", seed, step, ok, trace)
				if ok {
					permits = append(permits, held{pe, pm})
				}
			case op < 85:
				if len(permits) == 0 {
					continue
				}
				i := r.IntN(len(permits))
				pr := permits[i]
				permits = append(permits[:i], permits[i+1:]...)
				var err error
				var ev modelEvent
				var hold time.Duration
				switch k := r.IntN(10); {
				case k < 4:
					ev = evSuccess
				case k < 8:
					err, ev = errBackend, evFailure
				case k < 9:
					hold = time.Duration(1+r.IntN(20)) * 500 * time.Millisecond
					err, ev = throttleErr(hold), evThrottle
				default:
					err, ev = context.Canceled, evIgnored
				}
				trace = append(trace, fmt.Sprintf("done:%d", ev))
				pr.engine.Done(err)
				m.done(pr.model, ev, hold)
			default:
				d := time.Duration(r.IntN(4000)) * time.Millisecond
				trace = append(trace, "advance:"+d.String())
				h.clk.Advance(d)
				m.advance(d)
				require.Equal(t, time.Duration(mono(h.clk))-start, m.now)
			}
			require.Equal(t, m.state, b.State(), "seed %d step %d: state differs; trace %v", seed, step, trace)
			require.Equal(t, m.log, h.transitions(), "seed %d step %d: transitions differ; trace %v", seed, step, trace)
			require.Equal(t, m.gen, uint64(wordGen(b.word.Load())), "seed %d step %d: generation", seed, step)
		}
		require.Equal(t, uint64(m.rejections), b.nRejected.Load(), "seed %d: rejections", seed)
		for _, l := range m.log {
			seen[l]++
		}
	}
	// The sequences must reach every row that makes a transition.
	for _, want := range []string{
		"closed>open:consecutive_failures", "closed>open:throttled", "open>half_open:open_duration_elapsed",
		"half_open>closed:success_threshold", "half_open>open:probe_failed", "half_open>open:throttled", "half_open>open:probe_timeout",
	} {
		require.Greater(t, seen[want], 20, "%s seen %d times: %v", want, seen[want], seen)
	}
}
