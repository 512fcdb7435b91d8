// Copyright The otelcsp Authors
// SPDX-License-Identifier: Apache-2.0

package breakerextension // import "github.com/otelcsp/otelcsp/extension/breakerextension"

import (
	"go.uber.org/zap"

	"github.com/otelcsp/otelcsp/extension/breakerextension/internal/engine"
	"github.com/otelcsp/otelcsp/internal/clock"
)

// provider is the public API (Provider, Subscriber, Controller) over the
// engine's registry: conversions between the public types and the
// engine's, nothing else.
type provider struct {
	reg    *engine.Registry
	clk    clock.TimerClock
	logger *zap.Logger
}

var (
	_ Provider   = (*provider)(nil)
	_ Subscriber = (*provider)(nil)
	_ Controller = (*provider)(nil)
)

func newProvider(cfg *Config, clk clock.TimerClock, logger *zap.Logger, seed uint64) *provider {
	return &provider{reg: engine.New(engineConfig(cfg), clk, logger, seed), clk: clk, logger: logger}
}

// keyBreaker is the public Breaker of one engine breaker: Provider.Breaker
// converts the pointer, so handing one out allocates nothing.
type keyBreaker engine.Breaker

func (b *keyBreaker) engine() *engine.Breaker { return (*engine.Breaker)(b) }

// Allow implements Breaker. The engine's Decide is inlined here, so the
// closed and open paths cost no call beyond this one.
func (b *keyBreaker) Allow() (Permit, error) {
	switch p, v := b.engine().Decide(); v {
	case engine.Admitted:
		return Permit{p}, nil
	case engine.Refused:
		return Permit{}, ErrOpen
	}
	if p, ok := b.engine().AllowUndecided(); ok {
		return Permit{p}, nil
	}
	return Permit{}, ErrOpen
}

// State implements Breaker.
func (b *keyBreaker) State() State { return State(b.engine().Admission()) }

// Breaker implements Provider.
func (p *provider) Breaker(key string) Breaker { return p.get(key) }

func (p *provider) get(key string) *keyBreaker { return (*keyBreaker)(p.reg.Get(key)) }

// Subscribe implements Subscriber.
func (p *provider) Subscribe(fn func(StateChange)) func() {
	return p.reg.Subscribe(func(c engine.Change) {
		fn(StateChange{Key: c.Key, From: State(c.From), To: State(c.To), Generation: c.Generation, Reason: c.Reason, Shadow: c.Shadow})
	})
}

// SetManualState implements Controller. Beyond max_manual_keys runtime
// overrides, a new one is refused and logged (the HTTP endpoint answers
// 409); setting a key back to its configured state always works.
func (p *provider) SetManualState(key string, m ManualState) {
	if err := p.reg.SetManual(key, engine.Manual(m)); err != nil {
		p.logger.Warn("breaker manual state refused", zap.String("key", key), zap.Stringer("manual", m), zap.Error(err))
	}
}

// Snapshot implements Controller: every known key, sorted.
func (p *provider) Snapshot() []KeySnapshot {
	snaps := p.reg.Snapshots()
	out := make([]KeySnapshot, 0, len(snaps))
	for _, s := range snaps {
		out = append(out, keySnapshot(s))
	}
	return out
}

// snapshot is one key's KeySnapshot.
func (p *provider) snapshot(key string) KeySnapshot {
	return keySnapshot(p.reg.Get(key).Snapshot(p.reg.Now(), p.clk.Now()))
}
