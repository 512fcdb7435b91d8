package bench

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/open-telemetry/opentelemetry-collector-contrib/connector/spanmetricsconnector"
	"go.opentelemetry.io/collector/connector"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/otelcsp/otelcsp/connector/redmetricsconnector"
)

// memorySeries is how many series BenchmarkSpanMetricsMemory builds.
const memorySeries = 100_000

// makeMemoryBatches builds memorySeries spans with distinct span names
// (one service, 1,000 spans a batch), so every span is a series of its
// own, with the two extra dimensions of the other span metrics
// benchmarks.
func makeMemoryBatches() []ptrace.Traces {
	batches := make([]ptrace.Traces, 0, memorySeries/batchSpans)
	for j := range memorySeries / batchSpans {
		td := ptrace.NewTraces()
		rs := td.ResourceSpans().AppendEmpty()
		rs.Resource().Attributes().PutStr("service.name", "svc")
		spans := rs.ScopeSpans().AppendEmpty().Spans()
		for k := range batchSpans {
			sp := spans.AppendEmpty()
			sp.SetName(fmt.Sprintf("GET /api/v1/items/%07d", j*batchSpans+k))
			sp.SetKind(ptrace.SpanKindServer)
			sp.SetEndTimestamp(1_000_000)
			sp.Attributes().PutStr("http.request.method", "GET")
			sp.Attributes().PutInt("http.response.status_code", 200)
		}
		batches = append(batches, td)
	}
	return batches
}

// BenchmarkSpanMetricsMemory reports the heap each connector holds for
// 100,000 series (bytes/series): the heap in use after a GC, once the
// series exist, less the heap in use before the connector was created.
// The input batches are built first and kept alive to the end, so they
// count on neither side. Run it with -benchtime 1x: one op builds
// 100,000 series.
func BenchmarkSpanMetricsMemory(b *testing.B) {
	for _, im := range impls() {
		b.Run("impl="+im.name, func(b *testing.B) {
			ctx := context.Background()
			batches := makeMemoryBatches()
			var perSeries float64
			for range b.N {
				var before, after runtime.MemStats
				runtime.GC()
				runtime.ReadMemStats(&before)
				// A cardinality limit above the series count: nothing overflows.
				c := startWithLimit(b, ctx, im, 2*memorySeries, new(consumertest.MetricsSink))
				for _, td := range batches {
					if err := c.ConsumeTraces(ctx, td); err != nil {
						b.Fatal(err)
					}
				}
				runtime.GC()
				runtime.ReadMemStats(&after)
				perSeries = (float64(after.HeapAlloc) - float64(before.HeapAlloc)) / memorySeries
				runtime.KeepAlive(c)
				b.StopTimer()
				_ = c.Shutdown(ctx)
				b.StartTimer()
			}
			runtime.KeepAlive(batches)
			b.ReportMetric(perSeries, "bytes/series")
		})
	}
}

// startWithLimit is start with the connector's cardinality limit set to limit.
func startWithLimit(tb testing.TB, ctx context.Context, im impl, limit int, next consumer.Metrics) connector.Traces {
	tb.Helper()
	config := im.config
	im.config = func(exp time.Duration) any {
		cfg := config(exp)
		switch cfg := cfg.(type) {
		case *redmetricsconnector.Config:
			cfg.CardinalityLimit = limit
		case *spanmetricsconnector.Config:
			cfg.AggregationCardinalityLimit = limit
		default:
			tb.Fatalf("no cardinality limit for %T", cfg)
		}
		return cfg
	}
	return start(tb, ctx, im, seriesExpiration, next)
}
