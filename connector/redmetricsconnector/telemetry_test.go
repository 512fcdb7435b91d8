package redmetricsconnector

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/metric/metricdata/metricdatatest"

	"github.com/otelcsp/otelcsp/connector/redmetricsconnector/internal/metadatatest"
)

// ownAttrs is what every own metric carries: the ID metadatatest.NewSettings
// gives the connector.
var ownAttrs = attribute.NewSet(attribute.String("connector", "redmetrics"))

func TestOwnMetrics(t *testing.T) {
	tel := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tel.Shutdown(context.Background())) })
	cfg := createDefaultConfig()
	cfg.CardinalityLimit = 3
	cfg.SeriesExpiration = time.Minute
	clk := newManualClock()
	c, err := newConnector(metadatatest.NewSettings(tel), cfg, new(consumertest.MetricsSink), clk)
	require.NoError(t, err)

	var specs []spanSpec
	for i := 0; i < 10; i++ {
		specs = append(specs, spanSpec{service: "a", name: fmt.Sprint("op", i), durMs: 1})
	}
	specs = append(specs, spanSpec{name: "no service"}, spanSpec{name: "no service"})
	consume(t, c, specs...)
	flushNow(t, c, clk, time.Second)

	metadatatest.AssertEqualRedmetricsSeriesCreated(t, tel, []metricdata.DataPoint[int64]{{Value: 3, Attributes: ownAttrs}}, metricdatatest.IgnoreTimestamp())
	metadatatest.AssertEqualRedmetricsSpansOverflowed(t, tel, []metricdata.DataPoint[int64]{{Value: 7, Attributes: ownAttrs}}, metricdatatest.IgnoreTimestamp())
	metadatatest.AssertEqualRedmetricsSpansSkipped(t, tel, []metricdata.DataPoint[int64]{{Value: 2, Attributes: ownAttrs}}, metricdatatest.IgnoreTimestamp())
	metadatatest.AssertEqualRedmetricsSeriesActive(t, tel, []metricdata.DataPoint[int64]{{Value: 3, Attributes: ownAttrs}}, metricdatatest.IgnoreTimestamp())

	flushNow(t, c, clk, 2*time.Minute)
	metadatatest.AssertEqualRedmetricsSeriesExpired(t, tel, []metricdata.DataPoint[int64]{{Value: 3, Attributes: ownAttrs}}, metricdatatest.IgnoreTimestamp())
	metadatatest.AssertEqualRedmetricsSeriesActive(t, tel, []metricdata.DataPoint[int64]{{Value: 0, Attributes: ownAttrs}}, metricdatatest.IgnoreTimestamp())
	require.NoError(t, c.Shutdown(context.Background()))
}

// otelcol_redmetrics_graph_store_spans: the spans waiting in the service
// graph store after each flush.
func TestOwnMetricsGraphStore(t *testing.T) {
	tel := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tel.Shutdown(context.Background())) })
	cfg := createDefaultConfig()
	cfg.ServiceGraph.Enabled = true
	clk := newManualClock()
	c, err := newConnector(metadatatest.NewSettings(tel), cfg, new(consumertest.MetricsSink), clk)
	require.NoError(t, err)
	consumeSG(t, c,
		sgSpan{service: "a", kind: ptrace.SpanKindClient, trace: 1, id: 1},
		sgSpan{service: "a", kind: ptrace.SpanKindClient, trace: 2, id: 1},
	)
	flushNow(t, c, clk, time.Second)
	metadatatest.AssertEqualRedmetricsGraphStoreSpans(t, tel, []metricdata.DataPoint[int64]{{Value: 2, Attributes: ownAttrs}}, metricdatatest.IgnoreTimestamp())
	flushNow(t, c, clk, 2*time.Second)
	metadatatest.AssertEqualRedmetricsGraphStoreSpans(t, tel, []metricdata.DataPoint[int64]{{Value: 0, Attributes: ownAttrs}}, metricdatatest.IgnoreTimestamp())
	require.NoError(t, c.Shutdown(context.Background()))
}
