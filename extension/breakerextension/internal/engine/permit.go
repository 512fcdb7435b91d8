// Copyright The otelcsp Authors
// SPDX-License-Identifier: Apache-2.0

package engine // import "github.com/otelcsp/otelcsp/extension/breakerextension/internal/engine"

import "time"

// Outcome is how a call's result counts; its values are those of the
// extension's public Outcome.
type Outcome int8

const (
	Success Outcome = iota
	Failure
	Ignored
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

// Permit is the right to make one call: a small value, no allocation. The
// zero Permit's Done does nothing.
type Permit struct {
	b *Breaker
	// start is the clock reading at Allow (0 when the policy does not need it).
	start int64
	// gen is the breaker generation the permit was issued in; outcomes of an
	// older generation do not count in a newer one.
	gen uint32
	// kind says how the permit was issued (closed, probe, shadow).
	kind permitKind
	// cohort identifies the in-flight slot used by stall detection; slot
	// says whether the call is counted in a cohort, in ancient, or not at all.
	cohort uint32
	slot   uint8
}

// Done reports the call's outcome; hold > 0 is a throttle's retry-after.
func (p Permit) Done(out Outcome, hold time.Duration) {
	if p.b != nil {
		p.b.done(p, out, int64(hold))
	}
}
