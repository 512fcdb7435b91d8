// Copyright The otelcsp Authors
// SPDX-License-Identifier: Apache-2.0

package engine // import "github.com/otelcsp/otelcsp/extension/breakerextension/internal/engine"

// State is a state of one key's machine. The values are the low bits of the
// admission word: Closed is 0 so the closed fast path is one compare, and
// Open and Ejected are adjacent so the rejection path is one compare too.
type State uint8

const (
	// Closed admits every call.
	Closed State = iota
	// RampingUp is closed with admission rationed: the share admitted grows
	// from 0 to 100 % over ramp_up after the breaker closed.
	RampingUp
	// HalfOpen admits at most half_open_permits probes at a time.
	HalfOpen
	// Open rejects every call until its open period ends, then probes.
	Open
	// Ejected rejects every call for the ejection time outlier detection
	// chose, then closes again without probing (as Envoy unejects a host).
	Ejected
	numStates
)

var stateNames = [numStates]string{"closed", "ramping_up", "half_open", "open", "ejected"}

func (s State) String() string { return nameOf(stateNames[:], s) }

// nameOf is names[v], or "?" for a value out of range.
func nameOf[T ~uint8 | ~int32](names []string, v T) string {
	if v >= 0 && int(v) < len(names) {
		return names[v]
	}
	return "?"
}

// Admission is what callers see of a state; its values are those of the
// public State (closed, half_open, open).
type Admission int32

const (
	AdmitAll    Admission = iota // closed (ramping up is closed to callers)
	AdmitProbes                  // half_open
	AdmitNone                    // open
)

// Admission maps the machine's state to what callers see.
func (s State) Admission() Admission {
	switch s {
	case HalfOpen:
		return AdmitProbes
	case Open, Ejected:
		return AdmitNone
	}
	return AdmitAll
}

// closedLike says whether outcomes of closed-state permits count in s.
func (s State) closedLike() bool { return s <= RampingUp }

// Event is what a row of the table is chosen by. The detectors (the
// outcome counters and windows, the stall check, probe accounting, the
// timer, the sweeper, outlier detection) turn what they see into events;
// only the table changes the state.
type Event uint8

const (
	// EvTrip: a closed breaker's trip condition holds (the event names
	// it: consecutive_failures, failure_ratio, slow_call_ratio, stall).
	EvTrip Event = iota
	// EvThrottle: the backend asked to be left alone for a while (its hold,
	// capped at max_open_duration, comes with the event).
	EvThrottle
	// EvProbeFailed: a probe failed, was slow, or is stalled (the event names
	// which: probe_failed, probe_slow, probe_stalled).
	EvProbeFailed
	// EvProbesSucceeded: success_threshold probes succeeded.
	EvProbesSucceeded
	// EvFirstProbe: the first probe of a half-open period was admitted.
	EvFirstProbe
	// EvTimer: the state's timer elapsed (open period, probe timeout,
	// ejection) with something left to decide.
	EvTimer
	// EvProbesIdle: the probe timeout elapsed with no probe in flight: the
	// probes came back with nothing to say, so half-open waits for a call.
	EvProbesIdle
	// EvRampDone: ramp_up has elapsed since the breaker closed.
	EvRampDone
	// EvEject: outlier detection ejects the key (the event carries the
	// ejection time and names the ejection).
	EvEject
	// EvIdle: the sweeper forgets the key (unused for idle_expiry).
	EvIdle
	numEvents
)

var eventNames = [numEvents]string{"trip", "throttle", "probe_failed", "probes_succeeded", "first_probe", "timer", "probes_idle", "ramp_done", "eject", "idle"}

func (e Event) String() string { return nameOf(eventNames[:], e) }

// action is what a row does besides moving to its state, as a set of bits,
// run in the order of the bits by apply.
type action uint16

const (
	// actNewIncident restarts the backoff at open_duration when the
	// breaker had stayed closed for max_open_duration.
	actNewIncident action = 1 << iota
	// actEnter is a visible change of state: a new generation (permits out
	// no longer count), the old state's timer stopped, the reason and time
	// recorded and the change announced to subscribers.
	actEnter
	// actNewGeneration starts a new generation without announcing anything.
	actNewGeneration
	// actOpenBackoff arms the timer for open_duration × multiplier^level
	// (capped, jittered) and takes one backoff step.
	actOpenBackoff
	// actOpenFor arms the timer for the event's duration (a throttle's
	// hold, an ejection time): no backoff step.
	actOpenFor
	// actStartProbing clears the probe accounting of a new half-open period.
	actStartProbing
	// actArmProbeTimeout arms the timer for max_open_duration.
	actArmProbeTimeout
	// actDisarm forgets the timer that just fired.
	actDisarm
	// actStartClosed clears the closed-state statistics (failure run,
	// window, stalled calls from before) and notes when it closed.
	actStartClosed
	// actRampUp: a policy with ramp_up enters RampingUp instead of Closed.
	actRampUp
	// actForget returns the breaker to the state of a new key.
	actForget
)

// row is one cell of the table: the next state, the actions, and the
// reason reported (empty: the event's own, named by its detector).
type row struct {
	to     State
	acts   action
	reason string
}

const (
	tripFromClosed = actEnter | actNewIncident | actOpenBackoff
	throttleClosed = actEnter | actNewIncident | actOpenFor
	reopen         = actEnter | actOpenBackoff
	closeAgain     = actEnter | actStartClosed | actRampUp
	forgetVisibly  = actEnter | actForget
)

// table is the whole state machine: state × event → next state and
// actions. A missing cell (nil) means the event does not apply in that
// state and is dropped. Manual states are not in it: they override what
// admission does with the machine's answer, and the machine runs on.
var table = [numStates][numEvents]*row{
	Closed: {
		EvTrip:     {Open, tripFromClosed, ""},
		EvThrottle: {Open, throttleClosed, "throttled"},
		EvEject:    {Ejected, actEnter | actOpenFor, ""},
		EvIdle:     {Closed, actNewGeneration | actForget, ""},
	},
	RampingUp: {
		EvTrip:     {Open, tripFromClosed, ""},
		EvThrottle: {Open, throttleClosed, "throttled"},
		EvEject:    {Ejected, actEnter | actOpenFor, ""},
		EvRampDone: {Closed, 0, ""},
		EvIdle:     {Closed, actNewGeneration | actForget, ""},
	},
	HalfOpen: {
		EvFirstProbe:      {HalfOpen, actArmProbeTimeout, ""},
		EvProbesSucceeded: {Closed, closeAgain, "success_threshold"},
		EvProbeFailed:     {Open, reopen, ""},
		EvThrottle:        {Open, actEnter | actOpenFor, "throttled"},
		EvTimer:           {Open, reopen, "probe_timeout"},
		EvProbesIdle:      {HalfOpen, actDisarm, ""},
		EvIdle:            {Closed, forgetVisibly, "idle_expiry"},
	},
	Open: {
		EvTimer: {HalfOpen, actEnter | actStartProbing, "open_duration_elapsed"},
		EvIdle:  {Closed, forgetVisibly, "idle_expiry"},
	},
	Ejected: {
		EvTimer: {Closed, closeAgain, "ejection_elapsed"},
		EvIdle:  {Closed, forgetVisibly, "idle_expiry"},
	},
}
