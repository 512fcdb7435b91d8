package deltamergeprocessor // import "github.com/otelcsp/otelcsp/processor/deltamergeprocessor"

import (
	"context"

	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/otelcsp/otelcsp/processor/deltamergeprocessor/internal/merge"
	"github.com/otelcsp/otelcsp/processor/deltamergeprocessor/internal/metadata"
)

// telemetry records the processor's own metrics (declared in
// metadata.yaml). Every one carries the `processor` attribute, the
// processor's component ID: the collector adds none to component metrics
// while the telemetry.newPipelineTelemetry gate is off (its default at
// v0.161.0), and two deltamerge processors would otherwise be one series.
// The attribute sets are built once here: a batch must not build any.
type telemetry struct {
	tb *metadata.TelemetryBuilder

	// The option lists of the counters' Adds: passing a prebuilt list
	// costs nothing, while a list written out at each call is allocated
	// every time (it escapes through the instrument's interface).
	attrs                []metric.AddOption // processor
	reasonBoundsMismatch []metric.AddOption // processor, reason
	reasonInvalid        []metric.AddOption
	reasonOverflowFull   []metric.AddOption
	observeAttrs         metric.ObserveOption
}

// newTelemetry registers the streams gauge, which observes streams.
func newTelemetry(set processor.Settings, streams func() int64) (*telemetry, error) {
	tb, err := metadata.NewTelemetryBuilder(set.TelemetrySettings)
	if err != nil {
		return nil, err
	}
	id := attribute.String("processor", set.ID.String())
	reason := func(r string) []metric.AddOption {
		return []metric.AddOption{metric.WithAttributeSet(attribute.NewSet(id, attribute.String("reason", r)))}
	}
	own := metric.WithAttributeSet(attribute.NewSet(id))
	t := &telemetry{
		tb:                   tb,
		attrs:                []metric.AddOption{own},
		observeAttrs:         own,
		reasonBoundsMismatch: reason("bounds_mismatch"),
		reasonInvalid:        reason("invalid"),
		reasonOverflowFull:   reason("overflow_full"),
	}
	if err := tb.RegisterDeltamergeStreamsCallback(func(_ context.Context, o metric.Int64Observer) error {
		o.Observe(streams(), t.observeAttrs)
		return nil
	}); err != nil {
		tb.Shutdown()
		return nil, err
	}
	return t, nil
}

// consumed counts what merging one batch did.
func (t *telemetry) consumed(ctx context.Context, r merge.Result) {
	t.add(ctx, t.tb.DeltamergePointsMerged, r.Merged, t.attrs)
	t.add(ctx, t.tb.DeltamergePointsOutOfOrder, r.OutOfOrder, t.attrs)
	t.add(ctx, t.tb.DeltamergeDuplicatesDropped, r.Duplicates, t.attrs)
	t.add(ctx, t.tb.DeltamergeOverflowed, r.Overflowed, t.attrs)
	t.add(ctx, t.tb.DeltamergePointsDropped, r.DroppedBoundsMismatch, t.reasonBoundsMismatch)
	t.add(ctx, t.tb.DeltamergePointsDropped, r.DroppedInvalid, t.reasonInvalid)
	t.add(ctx, t.tb.DeltamergePointsDropped, r.DroppedOverflowFull, t.reasonOverflowFull)
	t.add(ctx, t.tb.DeltamergeWritersEvicted, r.WritersEvicted, t.attrs)
}

// flushed counts the streams a flush expired.
func (t *telemetry) flushed(ctx context.Context, fr merge.FlushResult) {
	t.add(ctx, t.tb.DeltamergeExpired, fr.Expired, t.attrs)
}

// add skips zero counts: most batches have no drops, and an Add costs a
// lookup of the attribute set even for 0.
func (*telemetry) add(ctx context.Context, c metric.Int64Counter, n int64, opts []metric.AddOption) {
	if n > 0 {
		c.Add(ctx, n, opts...)
	}
}

func (t *telemetry) shutdown() { t.tb.Shutdown() }
