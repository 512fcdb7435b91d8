// Copyright The otelcsp Authors
// SPDX-License-Identifier: Apache-2.0

package breakerextension // import "github.com/otelcsp/otelcsp/extension/breakerextension"

import (
	"errors"
	"fmt"

	"go.opentelemetry.io/collector/component"

	"github.com/otelcsp/otelcsp/extension/breakerextension/internal/engine"
)

// ErrOpen is returned by Breaker.Allow when the call must not be made: the
// breaker is open, forced open, its half-open probes are all in flight, or the
// call was shed during ramp-up. It is retryable and never permanent: the data
// was not sent and may be sent elsewhere or later.
var ErrOpen = errors.New("breaker is open")

// State is the admission state of one breaker.
type State int32

const (
	// StateClosed admits every call (or a growing share during ramp-up).
	StateClosed State = iota
	// StateHalfOpen admits at most half_open_permits probes at a time.
	StateHalfOpen
	// StateOpen rejects every call until the open duration elapses.
	StateOpen
)

// String returns the lowercase name used in config, metrics and the HTTP
// endpoint.
func (s State) String() string {
	switch s {
	case StateClosed:
		return "closed"
	case StateHalfOpen:
		return "half_open"
	case StateOpen:
		return "open"
	}
	return fmt.Sprintf("State(%d)", int32(s))
}

// ManualState overrides a breaker's automatic behaviour at runtime.
type ManualState int32

const (
	// ManualNone leaves the breaker automatic.
	ManualNone ManualState = iota
	// ManualForcedOpen rejects every call; State reports StateOpen.
	ManualForcedOpen
	// ManualDisabled admits every call and records nothing; State reports
	// StateClosed.
	ManualDisabled
	// ManualMetricsOnly runs the state machine on live traffic (metrics,
	// status, subscribers see its transitions) but never rejects a call: a
	// shadow mode to tune a policy. State reports StateClosed because every
	// call is admitted; the shadow state is visible in Snapshot.
	ManualMetricsOnly
)

// String returns the config spelling ("none", "forced_open", "disabled",
// "metrics_only").
func (m ManualState) String() string {
	switch m {
	case ManualNone:
		return "none"
	case ManualForcedOpen:
		return "forced_open"
	case ManualDisabled:
		return "disabled"
	case ManualMetricsOnly:
		return "metrics_only"
	}
	return fmt.Sprintf("ManualState(%d)", int32(m))
}

// ParseManualState parses the config spelling of a manual state.
func ParseManualState(s string) (ManualState, error) {
	switch s {
	case "", "none", "auto":
		return ManualNone, nil
	case "forced_open":
		return ManualForcedOpen, nil
	case "disabled":
		return ManualDisabled, nil
	case "metrics_only":
		return ManualMetricsOnly, nil
	}
	return ManualNone, fmt.Errorf("unknown manual state %q (want none, forced_open, disabled or metrics_only)", s)
}

// Provider hands out breakers by key.
type Provider interface {
	// Breaker returns the breaker for key (for example a backend endpoint),
	// creating it with the extension's policy on first use.
	Breaker(key string) Breaker
}

// Breaker guards calls to one key.
type Breaker interface {
	// Allow asks to make one call. It returns ErrOpen (retryable, never
	// permanent) when the call must not be made. When err is nil the caller
	// must call Permit.Done exactly once with the call's outcome.
	Allow() (Permit, error)
	// State is the breaker's current admission state.
	State() State
}

// Permit is the right to make one call. It is a small value (no allocation);
// Done reports the call's outcome. The zero Permit's Done does nothing.
type Permit struct{ p engine.Permit }

// Done reports the outcome of the call made with this permit. err == nil is a
// success; the extension classifies errors itself (see Classify).
func (p Permit) Done(err error) {
	if err == nil {
		p.p.Done(engine.Success, 0)
		return
	}
	out, hold := Classify(err)
	p.p.Done(engine.Outcome(out), hold)
}

// StateChange is delivered to subscribers, in order, outside any lock.
type StateChange struct {
	Key        string
	From, To   State
	Generation uint64
	// Reason says why the transition happened (e.g. "consecutive_failures",
	// "failure_ratio", "slow_call_ratio", "stall", "throttled", "probe_failed",
	// "success_threshold", "open_duration_elapsed", "manual", "idle_expiry",
	// "outlier_success_rate", "outlier_failure_percentage",
	// "ejection_elapsed").
	Reason string
	// Shadow is true when the breaker has a manual state (metrics_only,
	// forced_open, disabled): the machine changed state but admission did
	// not follow it. Routing decisions should ignore shadow changes.
	Shadow bool
}

// Subscriber is implemented by the extension: fn is called for every state
// change of every key, in order and outside any lock, so fn may call back into
// the breaker. The returned function removes the subscription.
type Subscriber interface {
	Subscribe(fn func(StateChange)) (unsubscribe func())
}

// Controller is implemented by the extension to set manual states at runtime.
type Controller interface {
	SetManualState(key string, m ManualState)
	Snapshot() []KeySnapshot
}

// FromHost finds the breaker extension with that ID among the host's
// extensions, with a clear error when it is missing or is not a breaker
// extension.
func FromHost(host component.Host, id component.ID) (Provider, error) {
	if host == nil {
		return nil, fmt.Errorf("breaker extension %q: no host", id)
	}
	ext, ok := host.GetExtensions()[id]
	if !ok {
		return nil, fmt.Errorf("breaker extension %q not found: add it under extensions and service::extensions", id)
	}
	p, ok := ext.(Provider)
	if !ok {
		return nil, fmt.Errorf("extension %q is a %T, not a breaker extension", id, ext)
	}
	return p, nil
}
