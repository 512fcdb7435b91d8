package syntheticreceiver // import "github.com/otelcsp/otelcsp/receiver/syntheticreceiver"

import (
	"context"

	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/collector/receiver/receiverhelper"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/otelcsp/otelcsp/receiver/syntheticreceiver/internal/metadata"
)

const (
	// transport and format label the collector's standard receiver metrics.
	transport = "synthetic"
	format    = "pdata"
)

// telemetry records the receiver's own metrics (declared in metadata.yaml)
// and the collector's standard receiver metrics (otelcol_receiver_accepted_spans,
// ...). The `receiver` attribute set, the receiver's ID as on the
// collector's otelcol_receiver_* metrics, is built once here: the hot path
// must not build an attribute set per batch.
type telemetry struct {
	tb    *metadata.TelemetryBuilder
	attrs metric.AddOption
	obs   *receiverhelper.ObsReport
}

func newTelemetry(set receiver.Settings) (*telemetry, error) {
	tb, err := metadata.NewTelemetryBuilder(set.TelemetrySettings)
	if err != nil {
		return nil, err
	}
	obs, err := receiverhelper.NewObsReport(receiverhelper.ObsReportSettings{
		ReceiverID: set.ID, Transport: transport, ReceiverCreateSettings: set,
	})
	if err != nil {
		return nil, err
	}
	return &telemetry{
		tb:    tb,
		attrs: metric.WithAttributeSet(attribute.NewSet(attribute.String("receiver", set.ID.String()))),
		obs:   obs,
	}, nil
}

// generated counts a batch of traces and spans, accepted or refused.
func (t *telemetry) generated(ctx context.Context, traces, spans int) {
	t.tb.SyntheticTracesGenerated.Add(ctx, int64(traces), t.attrs)
	t.tb.SyntheticSpansGenerated.Add(ctx, int64(spans), t.attrs)
}

// consumeTraces hands a batch to next and counts the outcome: in the
// standard metrics by span, in traces_refused by trace.
func (t *telemetry) consumeTraces(ctx context.Context, next consumer.Traces, td ptrace.Traces, traces, spans int) error {
	octx := t.obs.StartTracesOp(ctx)
	err := next.ConsumeTraces(octx, td)
	t.obs.EndTracesOp(octx, format, spans, err)
	if err != nil {
		t.tb.SyntheticTracesRefused.Add(ctx, int64(traces), t.attrs)
	}
	return err
}

// consumeLogs counts the batch's log records as generated, hands them to
// next and counts the outcome.
func (t *telemetry) consumeLogs(ctx context.Context, next consumer.Logs, ld plog.Logs, records int) error {
	t.tb.SyntheticLogRecordsGenerated.Add(ctx, int64(records), t.attrs)
	octx := t.obs.StartLogsOp(ctx)
	err := next.ConsumeLogs(octx, ld)
	t.obs.EndLogsOp(octx, format, records, err)
	if err != nil {
		t.tb.SyntheticLogRecordsRefused.Add(ctx, int64(records), t.attrs)
	}
	return err
}

func (t *telemetry) shutdown() { t.tb.Shutdown() }
