package fanoutexporter

import (
	"context"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/otelcsp/otelcsp/exporter/fanoutexporter/internal/metadata"
)

// The fanout's metrics (declared in metadata.yaml) all carry `exporter`,
// the component ID, as core's exporterhelper metrics do: without it the
// agent's fanouts (traces, metrics, logs, canary) would add up into one
// series, and their gauges overwrite each other (the gate that would add
// it, telemetry.newPipelineTelemetry, is off at v0.161.0). Every attribute
// set is built once: recording a count then only adds to an existing
// series.

// backendAttrs is the attribute set of one backend's series, built when
// the backend joins the set. It is kept as the options slice Add takes, so
// that recording passes it on as it is instead of building a new one.
type backendAttrs []metric.AddOption

func newBackendAttrs(id component.ID, endpoint string) backendAttrs {
	return backendAttrs{metric.WithAttributeSet(attribute.NewSet(exporterAttr(id), attribute.String("backend", endpoint)))}
}

func exporterAttr(id component.ID) attribute.KeyValue {
	return attribute.String("exporter", id.String())
}

// fanoutTelemetry records the fanout's own metrics; the gauges are
// registered by the fanout, which owns what they observe (observed with
// own).
type fanoutTelemetry struct {
	*metadata.TelemetryBuilder
	own                               metric.MeasurementOption
	outcomeSuccess, outcomeFailure    metric.MeasurementOption
	reasonMaxWait, reasonDrainTimeout metric.MeasurementOption
}

func newFanoutTelemetry(set component.TelemetrySettings, id component.ID) (*fanoutTelemetry, error) {
	tb, err := metadata.NewTelemetryBuilder(set)
	if err != nil {
		return nil, err
	}
	self := exporterAttr(id)
	with := func(k, v string) metric.MeasurementOption {
		return metric.WithAttributeSet(attribute.NewSet(self, attribute.String(k, v)))
	}
	return &fanoutTelemetry{
		TelemetryBuilder:   tb,
		own:                metric.WithAttributeSet(attribute.NewSet(self)),
		outcomeSuccess:     with("outcome", "success"),
		outcomeFailure:     with("outcome", "failure"),
		reasonMaxWait:      with("reason", "max_wait"),
		reasonDrainTimeout: with("reason", "drain_timeout"),
	}, nil
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
	t.FanoutItemsRefused.Add(ctx, items, t.own)
}

// droppedMaxWait and droppedAtDrainTimeout count queued items given up.
func (t *fanoutTelemetry) droppedMaxWait(ctx context.Context, items int64) {
	t.FanoutItemsDropped.Add(ctx, items, t.reasonMaxWait)
}

func (t *fanoutTelemetry) droppedAtDrainTimeout(ctx context.Context, items int64) {
	t.FanoutItemsDropped.Add(ctx, items, t.reasonDrainTimeout)
}

// resolved counts one resolver refresh.
func (t *fanoutTelemetry) resolved(ok bool) {
	outcome := t.outcomeSuccess
	if !ok {
		outcome = t.outcomeFailure
	}
	t.FanoutResolverUpdates.Add(context.Background(), 1, outcome)
}
