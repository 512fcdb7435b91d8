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

	// inAncient marks a call stall detection counts in ancient rather
	// than in its cohort.
	inAncient permitKind = 0x80
)

// Permit is the right to make one call: a small value, no allocation. The
// zero Permit's Done does nothing. It has four fields, the most the
// compiler keeps in registers, so handing it through the extension's
// adapter costs no copies through memory.
type Permit struct {
	b *Breaker
	// start is the clock reading at Allow when the policy watches slow
	// calls (the call is then counted in flight), 0 otherwise.
	start int64
	at    stamp
	// kind says how the permit was issued (closed, probe, shadow), and
	// whether stall detection counts the call in ancient (inAncient).
	kind permitKind
}

// stamp is where a permit belongs: the breaker generation it was issued
// in (outcomes of an older generation do not count in a newer one) and the
// in-flight cohort stall detection counts it in.
type stamp struct{ gen, cohort uint32 }

// issued is how the permit was issued.
func (p Permit) issued() permitKind { return p.kind &^ inAncient }

// Done reports the call's outcome; hold > 0 is a throttle's retry-after.
func (p Permit) Done(out Outcome, hold time.Duration) {
	if p.b != nil {
		p.b.done(p, out, int64(hold))
	}
}
