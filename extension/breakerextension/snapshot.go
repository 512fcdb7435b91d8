// Copyright The otelcsp Authors
// SPDX-License-Identifier: Apache-2.0

package breakerextension // import "github.com/otelcsp/otelcsp/extension/breakerextension"

import (
	"time"

	"github.com/otelcsp/otelcsp/extension/breakerextension/internal/engine"
)

// KeySnapshot is one key's state, counts and next probe time, as the HTTP
// endpoint lists it.
type KeySnapshot struct {
	Key    string `json:"key"`
	Policy string `json:"policy"`
	// State is what callers see; Machine is the state machine's own state
	// (they differ under a manual state).
	State      string `json:"state"`
	Machine    string `json:"machine_state"`
	Manual     string `json:"manual"`
	Generation uint64 `json:"generation"`
	LastReason string `json:"last_reason,omitempty"`
	// StateSince is when the machine or manual state last changed (or the
	// key was created).
	StateSince time.Time `json:"state_since"`
	Trips      uint64    `json:"trips"`

	ConsecutiveFailures int64 `json:"consecutive_failures"`
	WindowCalls         int64 `json:"window_calls"`
	WindowFailures      int64 `json:"window_failures"`
	WindowSlow          int64 `json:"window_slow"`
	Stalled             int64 `json:"stalled"`
	HalfOpenInFlight    int32 `json:"half_open_in_flight"`
	// Ejected says the key is open because outlier detection ejected it.
	Ejected bool `json:"ejected,omitempty"`

	Success  uint64 `json:"success"`
	Failure  uint64 `json:"failure"`
	Ignored  uint64 `json:"ignored"`
	Rejected uint64 `json:"rejected"`

	// NextProbe is when an open breaker lets its first probe through.
	NextProbe *time.Time `json:"next_probe,omitempty"`
}

// keySnapshot is the engine's snapshot as the endpoint lists it.
func keySnapshot(s engine.Snapshot) KeySnapshot {
	k := KeySnapshot{
		Key:                 s.Key,
		Policy:              s.Policy,
		State:               State(s.Admission).String(),
		Machine:             State(s.Machine.Admission()).String(),
		Manual:              ManualState(s.Manual).String(),
		Generation:          s.Generation,
		LastReason:          s.LastReason,
		StateSince:          s.StateSince,
		Trips:               s.Trips,
		ConsecutiveFailures: s.ConsecutiveFailures,
		WindowCalls:         s.WindowCalls,
		WindowFailures:      s.WindowFailures,
		WindowSlow:          s.WindowSlow,
		Stalled:             s.Stalled,
		HalfOpenInFlight:    s.HalfOpenInFlight,
		Ejected:             s.Machine == engine.Ejected,
		Success:             s.Success,
		Failure:             s.Failure,
		Ignored:             s.Ignored,
		Rejected:            s.Rejected,
	}
	if !s.NextProbe.IsZero() {
		k.NextProbe = &s.NextProbe
	}
	return k
}
