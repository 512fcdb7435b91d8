package canaryprocessor

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/receiver/receivertest"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/metric/metricdata/metricdatatest"

	"github.com/otelcsp/otelcsp/internal/clock"
	"github.com/otelcsp/otelcsp/processor/canaryprocessor/internal/metadatatest"
	"github.com/otelcsp/otelcsp/receiver/syntheticreceiver"
)

// TestSyntheticReceiver runs the real synthetic receiver in canary mode,
// in a traces and a logs pipeline, into the processor: every trace it
// generates is recognised by the attributes it really sets, counted once,
// none lost, and (drop: true) neither its spans nor its span-event logs go
// further; the app's traffic would.
func TestSyntheticReceiver(t *testing.T) {
	const traces = 500
	ctx := context.Background()
	tel := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tel.Shutdown(ctx)) })
	tp, err := newTracesProcessor(metadatatest.NewSettings(tel), createDefaultConfig(), newTraceRecorder(), clock.Real{})
	require.NoError(t, err)
	passed := &logRecorder{}
	lp := newLogsProcessor(createDefaultConfig(), passed)

	// Count what reaches the processors; signal when every trace did.
	var mu sync.Mutex
	roots, records := 0, 0
	done := make(chan struct{})
	traceIn, err := consumer.NewTraces(func(ctx context.Context, td ptrace.Traces) error {
		n := 0
		for _, rs := range td.ResourceSpans().All() {
			for _, ss := range rs.ScopeSpans().All() {
				for _, s := range ss.Spans().All() {
					if s.ParentSpanID().IsEmpty() {
						n++
					}
				}
			}
		}
		err := tp.ConsumeTraces(ctx, td)
		mu.Lock()
		roots += n
		if roots == traces {
			close(done)
		}
		mu.Unlock()
		return err
	})
	require.NoError(t, err)
	logIn, err := consumer.NewLogs(func(ctx context.Context, ld plog.Logs) error {
		mu.Lock()
		records += ld.LogRecordCount()
		mu.Unlock()
		return lp.ConsumeLogs(ctx, ld)
	})
	require.NoError(t, err)

	f := syntheticreceiver.NewFactory()
	cfg := f.CreateDefaultConfig().(*syntheticreceiver.Config)
	cfg.Rate = 100_000
	cfg.BatchSize = 50
	cfg.MaxTraces = traces
	cfg.Seed = 7
	cfg.Canary.Enabled = true
	set := receivertest.NewNopSettings(component.MustNewType("synthetic"))
	rt, err := f.CreateTraces(ctx, set, cfg, traceIn)
	require.NoError(t, err)
	rl, err := f.CreateLogs(ctx, set, cfg, logIn)
	require.NoError(t, err)
	require.NoError(t, tp.Start(ctx, componenttest.NewNopHost()))
	// Every trace is generated (its root ends) after start and counted
	// before done: its latency lies between 0 and the time in between,
	// however slow the machine.
	start := time.Now()
	require.NoError(t, rt.Start(ctx, componenttest.NewNopHost()))
	require.NoError(t, rl.Start(ctx, componenttest.NewNopHost()))
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("the synthetic receiver did not generate its traces")
	}
	elapsed := time.Since(start)
	require.NoError(t, rt.Shutdown(ctx))
	require.NoError(t, rl.Shutdown(ctx))
	ign := metricdatatest.IgnoreTimestamp()
	metadatatest.AssertEqualCanaryGenerators(t, tel, []metricdata.DataPoint[int64]{{Value: 1, Attributes: ownAttrs()}}, ign)
	require.NoError(t, tp.Shutdown(ctx))
	metadatatest.AssertEqualCanaryReceived(t, tel, []metricdata.DataPoint[int64]{{Value: traces, Attributes: ownAttrs()}}, ign)
	for _, name := range []string{"otelcol_canary_lost", "otelcol_canary_duplicated", "otelcol_canary_reordered", "otelcol_canary_invalid", "otelcol_canary_restarts"} {
		_, err := tel.GetMetric(name)
		assert.Error(t, err, "%s: nothing to count", name)
	}
	m, err := tel.GetMetric("otelcol_canary_latency")
	require.NoError(t, err)
	h := m.Data.(metricdata.Histogram[float64]).DataPoints[0]
	assert.Equal(t, uint64(traces), h.Count)
	lo, ok := h.Min.Value()
	require.True(t, ok)
	hi, ok := h.Max.Value()
	require.True(t, ok)
	assert.GreaterOrEqual(t, lo, 0.0)
	assert.LessOrEqual(t, hi, elapsed.Seconds(), "no trace took longer than the whole run")
	assert.Equal(t, ownAttrs(), h.Attributes)

	mu.Lock()
	defer mu.Unlock()
	assert.Positive(t, records, "the receiver made span-event logs")
	assert.Zero(t, passed.records(), "and the processor dropped every one")
}
