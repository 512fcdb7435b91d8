package redmetricsconnector

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/metric/metricdata/metricdatatest"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/otelcsp/otelcsp/connector/redmetricsconnector/internal/metadatatest"
)

// A metrics pipeline that refuses must not fail the spans (the sender
// would retry them elsewhere: traces delivered twice, RED counted twice).
// The refusal is counted in points_refused and logged at most once per
// 10 s of monotonic time, with what the quiet period added up to.
func TestRefusedFlushCountedAndLoggedNotFailed(t *testing.T) {
	tel := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tel.Shutdown(context.Background())) })
	core, logs := observer.New(zapcore.InfoLevel)
	set := metadatatest.NewSettings(tel)
	set.Logger = zap.New(core)
	set.Resource = testSettings().Resource
	clk := newManualClock()
	refused := errors.New("metrics pipeline is full")
	c, err := newConnector(set, createDefaultConfig(), consumertest.NewErr(refused), clk)
	require.NoError(t, err)
	require.NoError(t, c.Start(context.Background(), componenttest.NewNopHost()))

	// Two series: 4 points a flush (calls and duration each).
	spans := []spanSpec{{service: "a", name: "x", durMs: 1}, {service: "a", name: "y", durMs: 1}}
	require.NoError(t, c.ConsumeTraces(context.Background(), buildTraces(spans...)))
	for range 3 {
		flushNow(t, c, clk, time.Second)
		require.NoError(t, c.ConsumeTraces(context.Background(), buildTraces(spans...)))
	}
	metadatatest.AssertEqualRedmetricsPointsRefused(t, tel, []metricdata.DataPoint[int64]{{Value: 12, Attributes: ownAttrs}}, metricdatatest.IgnoreTimestamp())
	require.Equal(t, 1, logs.Len(), "one line for three refusals within 10s")
	first := logs.All()[0]
	assert.Equal(t, zapcore.ErrorLevel, first.Level)
	assert.Equal(t, map[string]any{
		"error": refused.Error(), "times": int64(1), "data_points": int64(4), "log_period": refusalLogEvery,
	}, first.ContextMap())

	// 10s after the first line, the next refusal is logged with the three
	// held back before it.
	flushNow(t, c, clk, 7*time.Second)
	assert.Equal(t, 1, logs.Len(), "9s after the first line")
	flushNow(t, c, clk, time.Second)
	require.Equal(t, 2, logs.Len())
	assert.Equal(t, int64(4), logs.All()[1].ContextMap()["times"])
	assert.Equal(t, int64(16), logs.All()[1].ContextMap()["data_points"])

	// Shutdown's final flush is refused too: counted, and Shutdown succeeds.
	require.NoError(t, c.Shutdown(context.Background()))
	metadatatest.AssertEqualRedmetricsPointsRefused(t, tel, []metricdata.DataPoint[int64]{{Value: 24, Attributes: ownAttrs}}, metricdatatest.IgnoreTimestamp())
	assert.Equal(t, 2, logs.Len(), "within 10s of the last line")
}
