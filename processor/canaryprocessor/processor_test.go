package canaryprocessor

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/processor/processortest"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/metric/metricdata/metricdatatest"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/otelcsp/otelcsp/processor/canaryprocessor/internal/metadata"
	"github.com/otelcsp/otelcsp/processor/canaryprocessor/internal/metadatatest"
)

func newTestProcessor(t *testing.T, cfg *Config, next *traceRecorder, clk Clock) *tracesProcessor {
	t.Helper()
	p, err := newTracesProcessor(processortest.NewNopSettings(metadata.Type), cfg, next, clk)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, p.Shutdown(context.Background())) })
	return p
}

// telemetryProcessor is a processor whose own metrics and logs the test reads.
func telemetryProcessor(t *testing.T, cfg *Config, next *traceRecorder, clk Clock) (*tracesProcessor, *componenttest.Telemetry, *observer.ObservedLogs) {
	t.Helper()
	tel := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tel.Shutdown(context.Background())) })
	core, logs := observer.New(zapcore.InfoLevel)
	set := metadatatest.NewSettings(tel)
	set.Logger = zap.New(core)
	p, err := newTracesProcessor(set, cfg, next, clk)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, p.Shutdown(context.Background())) })
	return p, tel, logs
}

func merge(tds ...ptrace.Traces) ptrace.Traces {
	out := ptrace.NewTraces()
	for _, td := range tds {
		td.ResourceSpans().MoveAndAppendTo(out.ResourceSpans())
	}
	return out
}

func TestDropRemovesCanaryResources(t *testing.T) {
	rec := newTraceRecorder()
	p := newTestProcessor(t, createDefaultConfig(), rec, newManualClock())
	assert.True(t, p.Capabilities().MutatesData)
	ctx := context.Background()

	// Canary resources among the app's: only the app's go on.
	require.NoError(t, p.ConsumeTraces(ctx, merge(appTraces(1, 3), canaries("gen-a", 1), appTraces(1, 2))))
	assert.Equal(t, []string{"checkout", "checkout"}, rec.services())
	assert.Equal(t, 5, rec.batches()[0].SpanCount())
	// A batch of canaries only: nothing is passed on.
	require.NoError(t, p.ConsumeTraces(ctx, canaries("gen-a", 2, 3)))
	assert.Len(t, rec.batches(), 1)
	// Without canaries the batch is passed as it is.
	app := appTraces(2, 2)
	require.NoError(t, p.ConsumeTraces(ctx, app))
	assert.Len(t, rec.batches(), 2)
	assert.Equal(t, 4, rec.batches()[1].SpanCount())
}

func TestDropFalsePassesCanaries(t *testing.T) {
	rec := newTraceRecorder()
	cfg := createDefaultConfig()
	cfg.Drop = false
	p, tel, _ := telemetryProcessor(t, cfg, rec, newManualClock())
	assert.False(t, p.Capabilities().MutatesData)
	require.NoError(t, p.ConsumeTraces(context.Background(), merge(appTraces(1, 1), canaries("gen-a", 1, 2))))
	assert.Equal(t, []string{"checkout", "frontend", "catalog", "frontend", "catalog"}, rec.services())
	metadatatest.AssertEqualCanaryReceived(t, tel, []metricdata.DataPoint[int64]{{Value: 2, Attributes: ownAttrs()}}, metricdatatest.IgnoreTimestamp())
}

func TestNextConsumerError(t *testing.T) {
	rec := newTraceRecorder()
	rec.err = errors.New("downstream refused")
	p, tel, _ := telemetryProcessor(t, createDefaultConfig(), rec, newManualClock())
	ctx := context.Background()
	assert.ErrorContains(t, p.ConsumeTraces(ctx, merge(appTraces(1, 1), canaries("gen-a", 1))), "downstream refused")
	// The canary was counted: it reached this tier, the refusal is downstream's.
	metadatatest.AssertEqualCanaryReceived(t, tel, []metricdata.DataPoint[int64]{{Value: 1, Attributes: ownAttrs()}}, metricdatatest.IgnoreTimestamp())
	require.NoError(t, p.ConsumeTraces(ctx, canaries("gen-a", 2)), "dropped canaries meet no refusal")
}

// TestOwnMetrics runs one generator through every case and checks every
// counter: gaps (lost after loss_after only), duplicates, reordering within
// and beyond loss_after, a restart, invalid numbers, latency.
func TestOwnMetrics(t *testing.T) {
	clk := newManualClock()
	clk.StepWall(time.Hour) // arrivals an hour after t0; traces end at t0 + seq s
	cfg := createDefaultConfig()
	cfg.ResourceAttributes = []string{"k8s.pod.name"}
	p, tel, logs := telemetryProcessor(t, cfg, newTraceRecorder(), clk)
	ctx := context.Background()
	pod := map[string]string{"k8s.pod.name": "agent-x1"}
	send := func(seqs ...int64) {
		t.Helper()
		td := ptrace.NewTraces()
		for _, s := range seqs {
			appendCanary(td, canaryTrace{gen: "gen-a", seq: s, end: t0.Add(time.Duration(s) * time.Second), attrs: pod})
		}
		require.NoError(t, p.ConsumeTraces(ctx, td))
	}

	send(1, 2, 3, 6, 7) // 4, 5 missing
	send(2, 7)          // duplicates
	clk.StepWall(10 * time.Second)
	send(5)                        // reordered within loss_after
	send(9)                        // 8 missing, since t0+1h10s
	clk.StepWall(20 * time.Second) // 4 is missing for 30s now
	send(10)
	send(4) // 4 was declared lost just before: late
	clk.StepWall(10 * time.Second)
	p.sweep(ctx) // 8 is lost

	// Invalid numbers are counted and ignored; the canary is still dropped.
	td := ptrace.NewTraces()
	for _, bad := range []any{int64(0), int64(-3), "x", 2.5, true, []any{1}} {
		appendCanary(td, canaryTrace{gen: "gen-a", seq: bad, end: t0, attrs: pod})
	}
	require.NoError(t, p.ConsumeTraces(ctx, td))

	// The generator numbers from 1 again: a trace generated after 10's.
	restart := ptrace.NewTraces()
	appendCanary(restart, canaryTrace{gen: "gen-a", seq: int64(1), end: t0.Add(time.Hour), attrs: pod})
	require.NoError(t, p.ConsumeTraces(ctx, restart))

	attrs := ownAttrs(attribute.String("k8s.pod.name", "agent-x1"))
	ign := metricdatatest.IgnoreTimestamp()
	one := func(v int64) []metricdata.DataPoint[int64] {
		return []metricdata.DataPoint[int64]{{Value: v, Attributes: attrs}}
	}
	metadatatest.AssertEqualCanaryReceived(t, tel, one(10), ign) // 1,2,3,6,7,5,9,10,4 + the restarted 1
	metadatatest.AssertEqualCanaryDuplicated(t, tel, one(2), ign)
	metadatatest.AssertEqualCanaryReordered(t, tel, one(2), ign) // 5, 4
	metadatatest.AssertEqualCanaryLate(t, tel, one(1), ign)      // 4
	metadatatest.AssertEqualCanaryLost(t, tel, one(2), ign)      // 4, 8
	metadatatest.AssertEqualCanaryRestarts(t, tel, one(1), ign)
	metadatatest.AssertEqualCanaryGeneratorsNew(t, tel, one(1), ign)
	metadatatest.AssertEqualCanaryGenerators(t, tel, []metricdata.DataPoint[int64]{{Value: 1, Attributes: ownAttrs()}}, ign)
	metadatatest.AssertEqualCanaryInvalid(t, tel, []metricdata.DataPoint[int64]{{Value: 6, Attributes: ownAttrs()}}, ign)

	// Latency: 10 first copies; 1, 2, 3, 6, 7 arrived at t0+1h for traces
	// ending at t0+1s.., and so on.
	m, err := tel.GetMetric("otelcol_canary_latency")
	require.NoError(t, err)
	h := m.Data.(metricdata.Histogram[float64]).DataPoints
	require.Len(t, h, 1)
	assert.Equal(t, uint64(10), h[0].Count)
	assert.Equal(t, attrs, h[0].Attributes)
	want := 0.0
	for _, a := range []struct{ at, seq float64 }{{0, 1}, {0, 2}, {0, 3}, {0, 6}, {0, 7}, {10, 5}, {10, 9}, {30, 10}, {30, 4}} {
		want += 3600 + a.at - a.seq
	}
	want += 40 // the restarted 1 ended at t0+1h and arrived at t0+1h40s
	assert.InDelta(t, want, h[0].Sum, 1e-6)

	// One warning per lost range (10s apart: the rate limit lets both through).
	warn := logs.FilterLevelExact(zapcore.WarnLevel).All()
	require.Len(t, warn, 2)
	for i, lost := range []int64{4, 8} {
		f := warn[i].ContextMap()
		assert.Equal(t, "gen-a", f["synthetic.generator"])
		assert.Equal(t, "agent-x1", f["k8s.pod.name"])
		assert.Equal(t, lost, f["first_sequence"])
		assert.Equal(t, lost, f["last_sequence"])
		assert.Equal(t, int64(1), f["count"])
		assert.Equal(t, "loss_after", f["reason"])
	}
	assert.Equal(t, 1, logs.FilterMessageSnippet("Canary generator restarted").Len())
}

func TestLossLogRateLimited(t *testing.T) {
	clk := newManualClock()
	p, _, logs := telemetryProcessor(t, createDefaultConfig(), newTraceRecorder(), clk)
	ctx := context.Background()
	require.NoError(t, p.ConsumeTraces(ctx, canaries("gen-a", 1, 3, 5, 7))) // gaps 2, 4, 6
	clk.StepWall(30 * time.Second)
	p.sweep(ctx)
	lines := logs.FilterLevelExact(zapcore.WarnLevel).All()
	require.Len(t, lines, 1, "three ranges at once: one line, the others counted in the next")
	assert.Equal(t, int64(2), lines[0].ContextMap()["first_sequence"])
	require.NoError(t, p.ConsumeTraces(ctx, canaries("gen-a", 9))) // gap 8
	clk.StepWall(30 * time.Second)
	p.sweep(ctx)
	lines = logs.FilterLevelExact(zapcore.WarnLevel).All()
	require.Len(t, lines, 2)
	f := lines[1].ContextMap()
	assert.Equal(t, int64(8), f["first_sequence"])
	assert.Equal(t, int64(3), f["lost_since_last_log"], "4, 6 and 8 since the first line")
	assert.Equal(t, int64(3), f["times"])
}

func TestGeneratorsInterleaved(t *testing.T) {
	clk := newManualClock()
	cfg := createDefaultConfig()
	cfg.ResourceAttributes = []string{"k8s.pod.name"}
	p, tel, _ := telemetryProcessor(t, cfg, newTraceRecorder(), clk)
	ctx := context.Background()
	// Three agents; a and b share a generator ID (a copied config with a
	// fixed generator_id) but not their pod: two sequences.
	for i := int64(1); i <= 50; i++ {
		td := ptrace.NewTraces()
		for _, g := range []struct{ gen, pod string }{{"fixed", "a"}, {"fixed", "b"}, {"rand-c", "c"}} {
			if g.pod == "b" && i%10 == 0 {
				continue // b loses every tenth
			}
			appendCanary(td, canaryTrace{gen: g.gen, seq: i, end: t0, attrs: map[string]string{"k8s.pod.name": g.pod}})
		}
		require.NoError(t, p.ConsumeTraces(ctx, td))
	}
	clk.StepWall(time.Minute)
	p.sweep(ctx)
	pod := func(v string) attribute.Set { return ownAttrs(attribute.String("k8s.pod.name", v)) }
	ign := metricdatatest.IgnoreTimestamp()
	metadatatest.AssertEqualCanaryReceived(t, tel, []metricdata.DataPoint[int64]{
		{Value: 50, Attributes: pod("a")}, {Value: 45, Attributes: pod("b")}, {Value: 50, Attributes: pod("c")},
	}, ign)
	metadatatest.AssertEqualCanaryLost(t, tel, []metricdata.DataPoint[int64]{{Value: 4, Attributes: pod("b")}}, ign) // 10..40; 50 has no successor
	metadatatest.AssertEqualCanaryGenerators(t, tel, []metricdata.DataPoint[int64]{{Value: 3, Attributes: ownAttrs()}}, ign)
	// Same time for every trace: no restart is seen.
	_, err := tel.GetMetric("otelcol_canary_restarts")
	assert.Error(t, err)
}

func TestMaxGeneratorsUnderFlood(t *testing.T) {
	cfg := createDefaultConfig()
	cfg.MaxGenerators = 10
	cfg.Window = 100
	p, tel, logs := telemetryProcessor(t, cfg, newTraceRecorder(), newManualClock())
	ctx := context.Background()
	for i := range 1000 {
		gen := "g" + string(rune('A'+i%40))
		require.NoError(t, p.ConsumeTraces(ctx, canaries(gen, int64(i/40+1), int64(i/40+5))))
		require.LessOrEqual(t, p.tracker.Len(), 10)
	}
	ign := metricdatatest.IgnoreTimestamp()
	metadatatest.AssertEqualCanaryGenerators(t, tel, []metricdata.DataPoint[int64]{{Value: 10, Attributes: ownAttrs()}}, ign)
	metadatatest.AssertEqualCanaryGeneratorsEvicted(t, tel, []metricdata.DataPoint[int64]{{Value: 990, Attributes: ownAttrs()}}, ign)
	metadatatest.AssertEqualCanaryGeneratorsNew(t, tel, []metricdata.DataPoint[int64]{{Value: 1000, Attributes: ownAttrs()}}, ign)
	assert.Equal(t, 1, logs.FilterMessageSnippet("raise max_generators").Len(), "rate-limited")
}

func TestSweepLoop(t *testing.T) {
	clk := newManualClock()
	p, tel, _ := telemetryProcessor(t, createDefaultConfig(), newTraceRecorder(), clk)
	ctx := context.Background()
	require.NoError(t, p.Start(ctx, componenttest.NewNopHost()))
	assert.Equal(t, time.Second, clk.Tickers()[0].Period())
	require.NoError(t, p.ConsumeTraces(ctx, canaries("gen-a", 1, 4)))
	clk.StepWall(29 * time.Second)
	sweep(t, clk)
	_, err := tel.GetMetric("otelcol_canary_lost")
	require.Error(t, err, "nothing lost before loss_after")
	clk.StepWall(time.Second)
	sweep(t, clk) // no canary arrives: the loop declares 2-3 lost
	metadatatest.AssertEqualCanaryLost(t, tel, []metricdata.DataPoint[int64]{{Value: 2, Attributes: ownAttrs()}}, metricdatatest.IgnoreTimestamp())
	require.NoError(t, p.Shutdown(ctx))
	assert.True(t, clk.Tickers()[0].Stopped())
}

func TestSweepInterval(t *testing.T) {
	for _, tt := range []struct{ lossAfter, want time.Duration }{
		{30 * time.Second, time.Second},
		{2 * time.Second, 500 * time.Millisecond},
		{time.Nanosecond, time.Millisecond},
	} {
		cfg := createDefaultConfig()
		cfg.LossAfter = tt.lossAfter
		p := newTestProcessor(t, cfg, newTraceRecorder(), newManualClock())
		assert.Equal(t, tt.want, p.sweepInterval(), tt.lossAfter)
	}
}

func TestLifecycle(t *testing.T) {
	ctx := context.Background()
	clk := newManualClock()
	p := newTestProcessor(t, createDefaultConfig(), newTraceRecorder(), clk)
	require.NoError(t, p.Start(ctx, componenttest.NewNopHost()))
	require.NoError(t, p.Start(ctx, componenttest.NewNopHost()), "a second Start is a no-op")
	assert.Len(t, clk.Tickers(), 1)
	require.NoError(t, p.ConsumeTraces(ctx, canaries("gen-a", 1)))
	require.NoError(t, p.Shutdown(ctx))
	require.NoError(t, p.Shutdown(ctx), "a second Shutdown is a no-op")
	require.NoError(t, p.Start(ctx, componenttest.NewNopHost()), "Start after Shutdown does nothing")
	assert.Len(t, clk.Tickers(), 1)
}

func TestShutdownWithoutStart(t *testing.T) {
	p := newTestProcessor(t, createDefaultConfig(), newTraceRecorder(), newManualClock())
	require.NoError(t, p.ConsumeTraces(context.Background(), canaries("gen-a", 1, 3)))
	require.NoError(t, p.Shutdown(context.Background()))
	require.NoError(t, p.Shutdown(context.Background()))
}

func TestFactory(t *testing.T) {
	f := NewFactory()
	ctx := context.Background()
	set := processortest.NewNopSettings(metadata.Type)
	tp, err := f.CreateTraces(ctx, set, f.CreateDefaultConfig(), consumertest.NewNop())
	require.NoError(t, err)
	lp, err := f.CreateLogs(ctx, set, f.CreateDefaultConfig(), consumertest.NewNop())
	require.NoError(t, err)
	_, err = f.CreateMetrics(ctx, set, f.CreateDefaultConfig(), consumertest.NewNop())
	require.Error(t, err, "no metrics: the canary is traces (and their logs)")
	require.NoError(t, tp.Start(ctx, componenttest.NewNopHost()))
	require.NoError(t, lp.Start(ctx, componenttest.NewNopHost()))
	require.NoError(t, tp.Shutdown(ctx))
	require.NoError(t, lp.Shutdown(ctx))
}

// canaryLogs is the synthetic receiver's log output: span-event records on
// the canary trace's resource.
func canaryLogs(gen string) plog.Logs {
	ld := plog.NewLogs()
	for _, svc := range []string{"checkout", "payment"} {
		rl := ld.ResourceLogs().AppendEmpty()
		rl.Resource().Attributes().PutStr("service.name", svc)
		if gen != "" {
			rl.Resource().Attributes().PutStr(attrGenerator, gen)
		}
		lr := rl.ScopeLogs().AppendEmpty().LogRecords().AppendEmpty()
		lr.Body().SetStr("order validated")
	}
	return ld
}

func TestLogs(t *testing.T) {
	ctx := context.Background()
	rec := &logRecorder{}
	p := newLogsProcessor(createDefaultConfig(), rec)
	assert.True(t, p.Capabilities().MutatesData)
	require.NoError(t, p.ConsumeLogs(ctx, canaryLogs("gen-a")))
	assert.Zero(t, rec.records(), "canary logs are dropped")
	mixed := canaryLogs("")
	canaryLogs("gen-a").ResourceLogs().MoveAndAppendTo(mixed.ResourceLogs())
	require.NoError(t, p.ConsumeLogs(ctx, mixed))
	assert.Equal(t, 2, rec.records(), "the app's records pass")

	cfg := createDefaultConfig()
	cfg.Drop = false
	pass := newLogsProcessor(cfg, rec)
	assert.False(t, pass.Capabilities().MutatesData)
	require.NoError(t, pass.ConsumeLogs(ctx, canaryLogs("gen-a")))
	assert.Equal(t, 4, rec.records())
}

// A batch arrives at once: the order of its numbers inside it (the
// receiver lays a batch out by resource) is not reordering; a number that
// comes in a later batch than a higher one is.
func TestOrderWithinABatch(t *testing.T) {
	p, tel, _ := telemetryProcessor(t, createDefaultConfig(), newTraceRecorder(), newManualClock())
	ctx := context.Background()
	require.NoError(t, p.ConsumeTraces(ctx, canaries("gen-a", 3, 1, 2)))
	require.NoError(t, p.ConsumeTraces(ctx, canaries("gen-a", 5, 4, 5)))
	_, err := tel.GetMetric("otelcol_canary_reordered")
	require.Error(t, err, "nothing reordered yet")
	require.NoError(t, p.ConsumeTraces(ctx, canaries("gen-a", 7)))
	require.NoError(t, p.ConsumeTraces(ctx, canaries("gen-a", 6)))
	ign := metricdatatest.IgnoreTimestamp()
	metadatatest.AssertEqualCanaryReordered(t, tel, []metricdata.DataPoint[int64]{{Value: 1, Attributes: ownAttrs()}}, ign)
	metadatatest.AssertEqualCanaryDuplicated(t, tel, []metricdata.DataPoint[int64]{{Value: 1, Attributes: ownAttrs()}}, ign)
	metadatatest.AssertEqualCanaryReceived(t, tel, []metricdata.DataPoint[int64]{{Value: 7, Attributes: ownAttrs()}}, ign)
}

// Two canary processors in one collector (one per pipeline) are told apart
// by the processor attribute: the collector adds no component attribute
// to component metrics at v0.161.0.
func TestProcessorAttribute(t *testing.T) {
	tel := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tel.Shutdown(context.Background())) })
	ctx := context.Background()
	for _, tt := range []struct {
		name string
		seqs []int64
	}{{"a", []int64{1, 2, 3}}, {"b", []int64{1}}} {
		set := metadatatest.NewSettings(tel)
		set.ID = component.MustNewIDWithName("canary", tt.name)
		p, err := newTracesProcessor(set, createDefaultConfig(), newTraceRecorder(), newManualClock())
		require.NoError(t, err)
		t.Cleanup(func() { require.NoError(t, p.Shutdown(ctx)) })
		require.NoError(t, p.ConsumeTraces(ctx, canaries("gen-a", tt.seqs...)))
	}
	id := func(name string) attribute.Set {
		return attribute.NewSet(attribute.String("processor", "canary/"+name))
	}
	ign := metricdatatest.IgnoreTimestamp()
	metadatatest.AssertEqualCanaryReceived(t, tel, []metricdata.DataPoint[int64]{
		{Value: 3, Attributes: id("a")}, {Value: 1, Attributes: id("b")},
	}, ign)
	metadatatest.AssertEqualCanaryGenerators(t, tel, []metricdata.DataPoint[int64]{
		{Value: 1, Attributes: id("a")}, {Value: 1, Attributes: id("b")},
	}, ign)
}
