// Copyright The otelcsp Authors
// SPDX-License-Identifier: Apache-2.0

package engine // import "github.com/otelcsp/otelcsp/extension/breakerextension/internal/engine"

import (
	"sort"
	"time"
)

// Snapshot is one key's state and counts (the extension lists it as its
// KeySnapshot).
type Snapshot struct {
	Key, Policy string
	// Admission is what callers see; Machine the machine's own state.
	Admission  Admission
	Machine    State
	Manual     Manual
	Generation uint64
	LastReason string
	StateSince time.Time
	Trips      uint64

	ConsecutiveFailures                     int64
	WindowCalls, WindowFailures, WindowSlow int64
	Stalled                                 int64
	HalfOpenInFlight                        int32

	Success, Failure, Ignored, Rejected uint64

	// NextProbe is when the open period ends (zero unless Open or Ejected).
	NextProbe time.Time
}

// Snapshot is b's state as of now (monotonic) and wallNow.
func (b *Breaker) Snapshot(now int64, wallNow time.Time) Snapshot {
	b.mu.Lock()
	w := b.word.Load()
	st := wordState(w)
	s := Snapshot{
		Key:        b.key,
		Policy:     b.p.name,
		Machine:    st,
		Admission:  b.manual.over(st.Admission()),
		Manual:     b.manual,
		Generation: uint64(wordGen(w)),
		LastReason: b.lastReason,
		StateSince: wallNow.Add(time.Duration(b.changedAt - now)),
		Trips:      b.trips,
	}
	if rejects(uint64(st)) {
		s.NextProbe = wallNow.Add(time.Duration(b.openUntil - now))
	}
	if st == HalfOpen {
		s.HalfOpenInFlight = b.probes
	}
	b.mu.Unlock()
	s.ConsecutiveFailures = b.consec.Load()
	s.WindowCalls, s.WindowFailures, s.WindowSlow = b.window(now)
	s.Stalled = b.stalled(now)
	s.Success = b.nSuccess.Load()
	s.Failure = b.nFailure.Load()
	s.Ignored = b.nIgnored.Load()
	s.Rejected = b.nRejected.Load()
	return s
}

// RetryAfter is the time left until an open (or ejected) breaker's open
// period ends.
func (b *Breaker) RetryAfter() time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !rejects(uint64(wordState(b.word.Load()))) {
		return 0
	}
	return time.Duration(max(b.openUntil-b.reg.now(), 0))
}

// Snapshots lists every key in use, sorted.
func (r *Registry) Snapshots() []Snapshot {
	now, wall := r.now(), r.clk.Now()
	var out []Snapshot
	r.Each(func(b *Breaker) { out = append(out, b.Snapshot(now, wall)) })
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

// Totals are call counts over live keys and forgotten ones.
type Totals struct{ Success, Failure, Ignored, Rejected uint64 }

// Totals sums the call counts of every key ever used.
func (r *Registry) Totals() Totals {
	t := Totals{
		Success:  r.retired.success.Load(),
		Failure:  r.retired.failure.Load(),
		Ignored:  r.retired.ignored.Load(),
		Rejected: r.retired.rejected.Load(),
	}
	r.Each(func(b *Breaker) {
		t.Success += b.nSuccess.Load()
		t.Failure += b.nFailure.Load()
		t.Ignored += b.nIgnored.Load()
		t.Rejected += b.nRejected.Load()
	})
	return t
}
