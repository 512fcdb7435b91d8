package syntheticreceiver

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/metric/metricdata/metricdatatest"

	"github.com/otelcsp/otelcsp/receiver/syntheticreceiver/internal/metadatatest"
)

// TestTelemetryNamesTheReceiver: every own metric carries the receiver's
// ID, the attribute metadata.yaml declares, and a refused logs batch is
// counted as generated and as refused.
func TestTelemetryNamesTheReceiver(t *testing.T) {
	tt := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tt.Shutdown(context.Background())) })
	set := metadatatest.NewSettings(tt)
	set.ID = component.MustNewIDWithName("synthetic", "load")
	cfg := testConfig(1000, 10, 0)
	cfg.Services = eventful()
	r, err := newReceiver(cfg, set, newFakeClock())
	require.NoError(t, err)
	traces := &consumertest.TracesSink{}
	r.nextTraces = traces
	r.nextLogs, err = consumer.NewLogs(func(context.Context, plog.Logs) error { return errors.New("logs backend down") })
	require.NoError(t, err)

	r.emit(context.Background(), 10)
	require.NoError(t, r.Shutdown(context.Background()))

	attrs := attribute.NewSet(attribute.String("receiver", "synthetic/load"))
	spans := int64(traces.SpanCount())
	_, records := eventsToLogs(traces.AllTraces()[0])
	require.Positive(t, records)
	point := func(v int64) []metricdata.DataPoint[int64] {
		return []metricdata.DataPoint[int64]{{Value: v, Attributes: attrs}}
	}
	metadatatest.AssertEqualSyntheticTracesGenerated(t, tt, point(10), metricdatatest.IgnoreTimestamp())
	metadatatest.AssertEqualSyntheticSpansGenerated(t, tt, point(spans), metricdatatest.IgnoreTimestamp())
	metadatatest.AssertEqualSyntheticLogRecordsGenerated(t, tt, point(int64(records)), metricdatatest.IgnoreTimestamp())
	metadatatest.AssertEqualSyntheticLogRecordsRefused(t, tt, point(int64(records)), metricdatatest.IgnoreTimestamp())
}
