// Copyright The otelcsp Authors
// SPDX-License-Identifier: Apache-2.0

package breakerextension // import "github.com/otelcsp/otelcsp/extension/breakerextension"

import (
	"context"
	"errors"
	"sync"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/otelcsp/otelcsp/extension/breakerextension/internal/engine"
	"github.com/otelcsp/otelcsp/extension/breakerextension/internal/metadata"
)

// telemetry is the extension's own metrics (declared in metadata.yaml).
// Every one carries `extension`, the component ID, as core's helpers label
// theirs: without it two breaker extensions of one collector would add up
// into one series (the gate that would add it, telemetry.newPipelineTelemetry,
// is off at v0.161.0). The attribute sets they carry are built once: the outcomes and transitions
// here, each key's set when the key is first observed, kept while the key
// is.
type telemetry struct {
	tb   *metadata.TelemetryBuilder
	reg  *engine.Registry
	self attribute.KeyValue // extension=<component ID>
	own  metric.MeasurementOption

	outcomes    [4]metric.MeasurementOption // by outcomeSuccess..outcomeRejected
	transitions [3][3][2]metric.MeasurementOption

	// keys is the state callback's; two readers may collect at once.
	keysMu     sync.Mutex
	keys       map[string]*keyAttrs
	collection uint64
}

type keyAttrs struct {
	opt  metric.MeasurementOption
	seen uint64 // the collection that last observed the key
}

const (
	outcomeSuccess = iota
	outcomeFailure
	outcomeIgnored
	outcomeRejected
)

func newTelemetry(set component.TelemetrySettings, id component.ID, reg *engine.Registry) (*telemetry, error) {
	tb, err := metadata.NewTelemetryBuilder(set)
	if err != nil {
		return nil, err
	}
	self := attribute.String("extension", id.String())
	t := &telemetry{tb: tb, reg: reg, self: self, own: metric.WithAttributeSet(attribute.NewSet(self)), keys: map[string]*keyAttrs{}}
	for i, o := range []string{"success", "failure", "ignored", "rejected"} {
		t.outcomes[i] = metric.WithAttributeSet(attribute.NewSet(self, attribute.String("outcome", o)))
	}
	for from := range t.transitions {
		for to := range t.transitions[from] {
			for shadow := range t.transitions[from][to] {
				t.transitions[from][to][shadow] = metric.WithAttributeSet(attribute.NewSet(
					self,
					attribute.String("from", State(from).String()),
					attribute.String("to", State(to).String()),
					attribute.Bool("shadow", shadow == 1),
				))
			}
		}
	}
	err = errors.Join(
		tb.RegisterBreakerStateCallback(t.observeStates),
		tb.RegisterBreakerKeysCallback(func(_ context.Context, o metric.Int64Observer) error {
			o.Observe(reg.Count(), t.own)
			return nil
		}),
		tb.RegisterBreakerCallsCallback(t.observeCalls),
	)
	if err != nil {
		tb.Shutdown()
		return nil, err
	}
	return t, nil
}

// transition counts one state change (a subscriber of every key).
func (t *telemetry) transition(ch StateChange) {
	shadow := 0
	if ch.Shadow {
		shadow = 1
	}
	t.tb.BreakerTransitions.Add(context.Background(), 1, t.transitions[ch.From][ch.To][shadow])
}

func (t *telemetry) observeStates(_ context.Context, o metric.Int64Observer) error {
	t.keysMu.Lock()
	defer t.keysMu.Unlock()
	t.collection++
	t.reg.Each(func(b *engine.Breaker) {
		ka := t.keys[b.Key()]
		if ka == nil {
			ka = &keyAttrs{opt: metric.WithAttributeSet(attribute.NewSet(t.self, attribute.String("key", b.Key())))}
			t.keys[b.Key()] = ka
		}
		ka.seen = t.collection
		o.Observe(int64(b.Admission()), ka.opt)
	})
	for k, ka := range t.keys {
		if ka.seen != t.collection {
			delete(t.keys, k) // forgotten by the sweeper
		}
	}
	return nil
}

func (t *telemetry) observeCalls(_ context.Context, o metric.Int64Observer) error {
	tot := t.reg.Totals()
	o.Observe(int64(tot.Success), t.outcomes[outcomeSuccess])
	o.Observe(int64(tot.Failure), t.outcomes[outcomeFailure])
	o.Observe(int64(tot.Ignored), t.outcomes[outcomeIgnored])
	o.Observe(int64(tot.Rejected), t.outcomes[outcomeRejected])
	return nil
}

func (t *telemetry) shutdown() { t.tb.Shutdown() }
