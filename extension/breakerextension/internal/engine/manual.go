// Copyright The otelcsp Authors
// SPDX-License-Identifier: Apache-2.0

package engine // import "github.com/otelcsp/otelcsp/extension/breakerextension/internal/engine"

import "errors"

// Manual is a manual state; its values are those of the extension's public
// ManualState. It is an overlay on admission, not a state of the table: the
// machine runs on underneath (visibly so with metrics_only).
type Manual int32

const (
	ManualNone Manual = iota
	ManualForcedOpen
	ManualDisabled
	ManualMetricsOnly
)

var manualNames = [...]string{"none", "forced_open", "disabled", "metrics_only"}

func (m Manual) String() string { return nameOf(manualNames[:], m) }

// over is what callers see under manual state m of a machine admitting a.
func (m Manual) over(a Admission) Admission {
	switch m {
	case ManualForcedOpen:
		return AdmitNone
	case ManualDisabled, ManualMetricsOnly:
		return AdmitAll
	}
	return a
}

// ErrTooManyManual refuses a runtime manual state beyond max_manual_keys.
var ErrTooManyManual = errors.New("too many keys with a manual state set at runtime")

// setManual changes the manual state; the admission state callers see may
// change, which subscribers hear about. A key whose manual state differs
// from the one config gives it is a runtime override; there are at most
// max_manual_keys of them (ErrTooManyManual), because overrides are never
// forgotten.
func (b *Breaker) setManual(m Manual) error {
	b.mu.Lock()
	old := b.manual
	if old == m {
		b.mu.Unlock()
		return nil
	}
	if wasOverride, isOverride := old != b.cfgManual, m != b.cfgManual; isOverride && !wasOverride {
		if !b.reg.addOverride() {
			b.mu.Unlock()
			return ErrTooManyManual
		}
	} else if wasOverride && !isOverride {
		b.reg.overrides.Add(-1)
	}
	w := b.word.Load()
	machine := wordState(w).Admission()
	b.manual = m
	b.changedAt = b.reg.now()
	if m == ManualNone {
		b.word.Store(w &^ flagManual)
	} else {
		b.word.Store(w | flagManual)
	}
	from, to := old.over(machine), m.over(machine)
	b.reg.enqueue(Change{Key: b.key, From: from, To: to, Generation: uint64(wordGen(w)), Reason: "manual:" + m.String()}, to)
	b.mu.Unlock()
	b.reg.deliver()
	return nil
}
