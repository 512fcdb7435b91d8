package deltamergeprocessor

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/processor/processortest"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/metric/metricdata/metricdatatest"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/otelcsp/otelcsp/internal/clock/clocktest"
	"github.com/otelcsp/otelcsp/processor/deltamergeprocessor/internal/metadata"
	"github.com/otelcsp/otelcsp/processor/deltamergeprocessor/internal/metadatatest"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// recorder is the next consumer: it keeps what it gets and signals each
// call, so tests wait for a flush on a channel instead of sleeping.
type recorder struct {
	mu    sync.Mutex
	got   []pmetric.Metrics
	calls chan struct{}
	err   error
}

func newRecorder() *recorder { return &recorder{calls: make(chan struct{}, 100)} }

func (r *recorder) Capabilities() consumer.Capabilities { return consumer.Capabilities{} }

func (r *recorder) ConsumeMetrics(_ context.Context, md pmetric.Metrics) error {
	r.mu.Lock()
	r.got = append(r.got, md)
	err := r.err
	r.mu.Unlock()
	r.calls <- struct{}{}
	return err
}

func (r *recorder) wait(t *testing.T) pmetric.Metrics {
	t.Helper()
	select {
	case <-r.calls:
	case <-time.After(10 * time.Second):
		t.Fatal("no call to the next consumer")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.got[len(r.got)-1]
}

func (r *recorder) none(t *testing.T) {
	t.Helper()
	select {
	case <-r.calls:
		t.Fatal("unexpected call to the next consumer")
	default:
	}
}

// delta builds one delta sum point from writer, the writer attribute on
// the data point as the gateways' transform puts it.
func delta(writer string, start, end int, v int64) pmetric.Metrics {
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	rm.Resource().Attributes().PutStr("service.name", "checkout")
	m := rm.ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
	m.SetName("traces.span.metrics.calls")
	s := m.SetEmptySum()
	s.SetIsMonotonic(true)
	s.SetAggregationTemporality(pmetric.AggregationTemporalityDelta)
	dp := s.DataPoints().AppendEmpty()
	dp.Attributes().PutStr("span.name", "GET /cart")
	dp.Attributes().PutStr("collector.instance.id", writer)
	dp.SetStartTimestamp(pcommon.NewTimestampFromTime(t0.Add(time.Duration(start) * time.Second)))
	dp.SetTimestamp(pcommon.NewTimestampFromTime(t0.Add(time.Duration(end) * time.Second)))
	dp.SetIntValue(v)
	return md
}

func gauge() pmetric.Metrics {
	md := pmetric.NewMetrics()
	m := md.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
	m.SetName("queue.size")
	m.SetEmptyGauge().DataPoints().AppendEmpty().SetIntValue(7)
	return md
}

// total reads the single cumulative point of md.
func total(t *testing.T, md pmetric.Metrics) pmetric.NumberDataPoint {
	t.Helper()
	require.Equal(t, 1, md.DataPointCount())
	m := md.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().At(0)
	require.Equal(t, pmetric.MetricTypeSum, m.Type())
	assert.Equal(t, pmetric.AggregationTemporalityCumulative, m.Sum().AggregationTemporality())
	dp := m.Sum().DataPoints().At(0)
	_, ok := dp.Attributes().Get("collector.instance.id")
	assert.False(t, ok, "the writer attribute is not in the output")
	return dp
}

func newTestProcessor(t *testing.T, cfg *Config, next consumer.Metrics, clk Clock) *deltaMerge {
	t.Helper()
	p, err := newProcessor(processortest.NewNopSettings(metadata.Type), cfg, next, clk)
	require.NoError(t, err)
	return p
}

func TestLifecycle(t *testing.T) {
	ctx := context.Background()
	clk := clocktest.New(t0, 0)
	rec := newRecorder()
	p := newTestProcessor(t, createDefaultConfig(), rec, clk)
	require.NoError(t, p.Start(ctx, componenttest.NewNopHost()))
	require.NoError(t, p.Start(ctx, componenttest.NewNopHost()), "a second Start is a no-op")

	// Delta input is consumed, not passed on.
	require.NoError(t, p.ConsumeMetrics(ctx, delta("a", 0, 10, 3)))
	require.NoError(t, p.ConsumeMetrics(ctx, delta("b", 5, 15, 4)))
	require.NoError(t, p.ConsumeMetrics(ctx, delta("a", 0, 10, 3))) // retry
	rec.none(t)
	// Anything else passes through at once.
	require.NoError(t, p.ConsumeMetrics(ctx, gauge()))
	assert.Equal(t, "queue.size", rec.wait(t).ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().At(0).Name())

	// Every interval: one cumulative point per stream, timestamp the flush.
	clk.StepWall(time.Minute)
	clk.Tick(t)
	dp := total(t, rec.wait(t))
	assert.Equal(t, int64(7), dp.IntValue())
	assert.Equal(t, pcommon.NewTimestampFromTime(t0), dp.StartTimestamp())
	assert.Equal(t, pcommon.NewTimestampFromTime(t0.Add(time.Minute)), dp.Timestamp())

	// Also when nothing came in since.
	clk.StepWall(time.Minute)
	clk.Tick(t)
	dp = total(t, rec.wait(t))
	assert.Equal(t, int64(7), dp.IntValue())
	assert.Equal(t, pcommon.NewTimestampFromTime(t0.Add(2*time.Minute)), dp.Timestamp())

	// Shutdown flushes once more, with what came since the last tick.
	require.NoError(t, p.ConsumeMetrics(ctx, delta("b", 15, 25, 10)))
	clk.StepWall(10 * time.Second)
	require.NoError(t, p.Shutdown(ctx))
	dp = total(t, rec.wait(t))
	assert.Equal(t, int64(17), dp.IntValue())
	assert.Equal(t, pcommon.NewTimestampFromTime(t0.Add(2*time.Minute+10*time.Second)), dp.Timestamp())
	assert.True(t, clk.Tickers()[0].Stopped())

	require.NoError(t, p.Shutdown(ctx), "a second Shutdown is a no-op")
	rec.none(t)
	require.NoError(t, p.Start(ctx, componenttest.NewNopHost()), "Start after Shutdown does nothing")
	assert.Len(t, clk.Tickers(), 1)
}

func TestShutdownWithoutStart(t *testing.T) {
	rec := newRecorder()
	p := newTestProcessor(t, createDefaultConfig(), rec, clocktest.New(t0, 0))
	require.NoError(t, p.ConsumeMetrics(context.Background(), delta("a", 0, 10, 3)))
	require.NoError(t, p.Shutdown(context.Background()))
	require.NoError(t, p.Shutdown(context.Background()))
	rec.none(t)
}

func TestNothingToFlush(t *testing.T) {
	clk := clocktest.New(t0, 0)
	rec := newRecorder()
	p := newTestProcessor(t, createDefaultConfig(), rec, clk)
	require.NoError(t, p.Start(context.Background(), componenttest.NewNopHost()))
	clk.Tick(t)
	// The loop took the tick; the shutdown waits for it to finish.
	require.NoError(t, p.Shutdown(context.Background()))
	rec.none(t)
}

func TestFailedExportKeepsTotals(t *testing.T) {
	core, logs := observer.New(zap.WarnLevel)
	set := processortest.NewNopSettings(metadata.Type)
	set.Logger = zap.New(core)
	clk := clocktest.New(t0, 0)
	rec := newRecorder()
	p, err := newProcessor(set, createDefaultConfig(), rec, clk)
	require.NoError(t, err)
	require.NoError(t, p.ConsumeMetrics(context.Background(), delta("a", 0, 10, 3)))
	rec.err = errors.New("remote write is down")
	p.flush(context.Background())
	rec.wait(t)
	assert.Equal(t, 1, logs.FilterMessageSnippet("the next flush carries the same totals").Len())

	rec.err = nil
	require.NoError(t, p.ConsumeMetrics(context.Background(), delta("a", 10, 20, 1)))
	p.flush(context.Background())
	assert.Equal(t, int64(4), total(t, rec.wait(t)).IntValue(), "the failed flush's data is in the next one")
	require.NoError(t, p.Shutdown(context.Background()))
}

func TestPassThroughError(t *testing.T) {
	rec := newRecorder()
	rec.err = errors.New("downstream refused")
	p := newTestProcessor(t, createDefaultConfig(), rec, clocktest.New(t0, 0))
	assert.ErrorContains(t, p.ConsumeMetrics(context.Background(), gauge()), "downstream refused")
	require.NoError(t, p.ConsumeMetrics(context.Background(), delta("a", 0, 10, 3)), "merged data has nothing to refuse")
	require.NoError(t, p.Shutdown(context.Background()))
}

func TestOwnMetrics(t *testing.T) {
	tel := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tel.Shutdown(context.Background())) })
	cfg := createDefaultConfig()
	cfg.MaxStreams = 1
	cfg.MaxWritersPerStream = 1
	clk := clocktest.New(t0, 0)
	set := metadatatest.NewSettings(tel)
	set.ID = component.MustNewIDWithName("deltamerge", "red")
	p, err := newProcessor(set, cfg, newRecorder(), clk)
	require.NoError(t, err)
	ctx := context.Background()
	// The same processor type in another pipeline: its metrics are its own
	// series, told apart by the processor attribute.
	set.ID = component.MustNewIDWithName("deltamerge", "other")
	second, err := newProcessor(set, createDefaultConfig(), newRecorder(), clk)
	require.NoError(t, err)
	require.NoError(t, second.ConsumeMetrics(ctx, delta("a", 0, 10, 1)))

	other := delta("a", 0, 10, 1)
	other.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().At(0).Sum().DataPoints().At(0).Attributes().PutStr("span.name", "POST /pay")
	// A point without a value (neither int nor double) is malformed.
	empty := delta("a", 0, 10, 1)
	pmetric.NewNumberDataPoint().CopyTo(empty.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().At(0).Sum().DataPoints().At(0))

	for _, md := range []pmetric.Metrics{
		delta("a", 20, 30, 1),
		delta("a", 0, 10, 1), // out of order
		delta("a", 0, 10, 1), // duplicate
		delta("b", 0, 10, 1), // evicts a (one writer per stream)
		other,                // past max_streams: overflow
		empty,                // malformed
	} {
		require.NoError(t, p.ConsumeMetrics(ctx, md))
	}
	ign := metricdatatest.IgnoreTimestamp()
	processorRed := attribute.String("processor", "deltamerge/red")
	red := attribute.NewSet(processorRed)
	otherID := attribute.NewSet(attribute.String("processor", "deltamerge/other"))
	metadatatest.AssertEqualDeltamergePointsMerged(t, tel, []metricdata.DataPoint[int64]{
		{Value: 4, Attributes: red}, {Value: 1, Attributes: otherID},
	}, ign)
	metadatatest.AssertEqualDeltamergePointsOutOfOrder(t, tel, []metricdata.DataPoint[int64]{{Value: 1, Attributes: red}}, ign)
	metadatatest.AssertEqualDeltamergeDuplicatesDropped(t, tel, []metricdata.DataPoint[int64]{{Value: 1, Attributes: red}}, ign)
	metadatatest.AssertEqualDeltamergeWritersEvicted(t, tel, []metricdata.DataPoint[int64]{{Value: 1, Attributes: red}}, ign)
	metadatatest.AssertEqualDeltamergeOverflowed(t, tel, []metricdata.DataPoint[int64]{{Value: 1, Attributes: red}}, ign)
	metadatatest.AssertEqualDeltamergePointsDropped(t, tel, []metricdata.DataPoint[int64]{
		{Value: 1, Attributes: attribute.NewSet(processorRed, attribute.String("reason", "invalid"))},
	}, ign)
	metadatatest.AssertEqualDeltamergeStreams(t, tel, []metricdata.DataPoint[int64]{
		{Value: 2, Attributes: red}, {Value: 1, Attributes: otherID},
	}, ign)

	clk.StepWall(10 * time.Minute)
	p.flush(ctx)
	metadatatest.AssertEqualDeltamergeExpired(t, tel, []metricdata.DataPoint[int64]{{Value: 2, Attributes: red}}, ign)
	require.NoError(t, second.Shutdown(ctx))
	metadatatest.AssertEqualDeltamergeStreams(t, tel, []metricdata.DataPoint[int64]{{Value: 0, Attributes: red}}, ign)
	require.NoError(t, p.Shutdown(ctx))
}
