package canaryprocessor // import "github.com/otelcsp/otelcsp/processor/canaryprocessor"

import (
	"context"
	"time"

	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/otelcsp/otelcsp/processor/canaryprocessor/internal/metadata"
	"github.com/otelcsp/otelcsp/processor/canaryprocessor/internal/sequence"
)

// attrProcessor names the processor on every one of its metrics.
const attrProcessor = "processor"

// telemetry records the processor's own metrics (declared in
// metadata.yaml). Every one carries the `processor` attribute, the
// processor's component ID: the collector adds none to component metrics
// while the telemetry.newPipelineTelemetry gate is off (its default at
// v0.161.0), and two canary processors would otherwise be one series.
// The per-generator metrics also carry the generator's
// resource_attributes values; that set is built once per generator
// (sequenceAttrs), the processor's own once here.
type telemetry struct {
	tb    *metadata.TelemetryBuilder
	id    attribute.KeyValue
	attrs metric.MeasurementOption // processor
}

// newTelemetry registers the generators gauge, which observes generators.
func newTelemetry(set processor.Settings, generators func() int64) (*telemetry, error) {
	tb, err := metadata.NewTelemetryBuilder(set.TelemetrySettings)
	if err != nil {
		return nil, err
	}
	id := attribute.String(attrProcessor, set.ID.String())
	t := &telemetry{tb: tb, id: id, attrs: metric.WithAttributeSet(attribute.NewSet(id))}
	if err := tb.RegisterCanaryGeneratorsCallback(func(_ context.Context, o metric.Int64Observer) error {
		o.Observe(generators(), t.attrs)
		return nil
	}); err != nil {
		tb.Shutdown()
		return nil, err
	}
	return t, nil
}

// seqAttrs is the attribute set of a generator's metrics as the option
// lists of an Add and of a Record. Passing a prebuilt list costs nothing;
// a list written out at each call is allocated every time, as it escapes
// through the instrument's interface (two allocations per canary trace).
type seqAttrs struct {
	add []metric.AddOption
	rec []metric.RecordOption
}

// sequenceAttrs is the attribute set of a generator's metrics: the
// processor and the generator's resource_attributes values.
func (t *telemetry) sequenceAttrs(values []attribute.KeyValue) seqAttrs {
	opt := metric.WithAttributeSet(attribute.NewSet(append(values, t.id)...))
	return seqAttrs{add: []metric.AddOption{opt}, rec: []metric.RecordOption{opt}}
}

// arrival counts one numbered trace, with its generator's attributes;
// latency < 0 is unknown (the root span has no end time).
func (t *telemetry) arrival(ctx context.Context, o sequence.Observation[*streamTag], latency time.Duration) {
	attrs := o.Stream.Tag.attrs.add
	if o.Created {
		t.tb.CanaryGeneratorsNew.Add(ctx, 1, attrs...)
	}
	if o.Restart {
		t.tb.CanaryRestarts.Add(ctx, 1, attrs...)
	}
	switch o.Outcome {
	case sequence.Duplicate:
		t.tb.CanaryDuplicated.Add(ctx, 1, attrs...)
		return
	case sequence.Late:
		t.tb.CanaryLate.Add(ctx, 1, attrs...)
		t.tb.CanaryReordered.Add(ctx, 1, attrs...)
	case sequence.Reordered:
		t.tb.CanaryReordered.Add(ctx, 1, attrs...)
	}
	t.tb.CanaryReceived.Add(ctx, 1, attrs...)
	if latency >= 0 {
		t.tb.CanaryLatency.Record(ctx, latency.Seconds(), o.Stream.Tag.attrs.rec...)
	}
}

// invalid counts a span whose synthetic.sequence is not a number >= 1.
func (t *telemetry) invalid(ctx context.Context) { t.tb.CanaryInvalid.Add(ctx, 1, t.attrs) }

// lost counts the numbers of a lost range.
func (t *telemetry) lost(ctx context.Context, l sequence.Loss[*streamTag]) {
	t.tb.CanaryLost.Add(ctx, l.Count(), l.Stream.Tag.attrs.add...)
}

// evicted counts generators forgotten for max_generators.
func (t *telemetry) evicted(ctx context.Context, n int64) {
	t.tb.CanaryGeneratorsEvicted.Add(ctx, n, t.attrs)
}

func (t *telemetry) shutdown() { t.tb.Shutdown() }
