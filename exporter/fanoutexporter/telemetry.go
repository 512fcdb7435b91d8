package fanoutexporter

import (
	"context"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/otelcsp/otelcsp/exporter/fanoutexporter/internal/metadata"
)

// The attribute sets of the fanout's metrics (declared in metadata.yaml),
// built once: recording a count then only adds to an existing series.
var (
	outcomeSuccess     = metric.WithAttributeSet(attribute.NewSet(attribute.String("outcome", "success")))
	outcomeFailure     = metric.WithAttributeSet(attribute.NewSet(attribute.String("outcome", "failure")))
	reasonMaxWait      = metric.WithAttributeSet(attribute.NewSet(attribute.String("reason", "max_wait")))
	reasonDrainTimeout = metric.WithAttributeSet(attribute.NewSet(attribute.String("reason", "drain_timeout")))
)

// backendAttrs is the attribute set of one backend's series, built when
// the backend joins the set. It is kept as the options slice Add takes, so
// that recording passes it on as it is instead of building a new one.
type backendAttrs []metric.AddOption

func newBackendAttrs(endpoint string) backendAttrs {
	return backendAttrs{metric.WithAttributeSet(attribute.NewSet(attribute.String("backend", endpoint)))}
}

// fanoutTelemetry records the fanout's own metrics; the gauges are
// registered by the fanout, which owns what they observe.
type fanoutTelemetry struct {
	*metadata.TelemetryBuilder
}

func newFanoutTelemetry(set component.TelemetrySettings) (*fanoutTelemetry, error) {
	tb, err := metadata.NewTelemetryBuilder(set)
	if err != nil {
		return nil, err
	}
	return &fanoutTelemetry{tb}, nil
}

// delivered counts items a backend accepted, rerouted of them for keys
// whose first choice could not take them.
func (t *fanoutTelemetry) delivered(ctx context.Context, backend backendAttrs, items, rerouted int64) {
	t.FanoutItemsSent.Add(ctx, items, backend...)
	if rerouted > 0 {
		t.FanoutItemsRerouted.Add(ctx, rerouted, backend...)
	}
}

// failed counts items a backend did not take.
func (t *fanoutTelemetry) failed(ctx context.Context, backend backendAttrs, items int64) {
	t.FanoutItemsFailed.Add(ctx, items, backend...)
}

// refused counts items handed back to a waiting caller.
func (t *fanoutTelemetry) refused(ctx context.Context, items int64) {
	t.FanoutItemsRefused.Add(ctx, items)
}

// droppedMaxWait and droppedAtDrainTimeout count queued items given up.
func (t *fanoutTelemetry) droppedMaxWait(ctx context.Context, items int64) {
	t.FanoutItemsDropped.Add(ctx, items, reasonMaxWait)
}

func (t *fanoutTelemetry) droppedAtDrainTimeout(ctx context.Context, items int64) {
	t.FanoutItemsDropped.Add(ctx, items, reasonDrainTimeout)
}

// resolved counts one resolver refresh.
func (t *fanoutTelemetry) resolved(ok bool) {
	outcome := outcomeSuccess
	if !ok {
		outcome = outcomeFailure
	}
	t.FanoutResolverUpdates.Add(context.Background(), 1, outcome)
}
