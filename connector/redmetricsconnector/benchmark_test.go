package redmetricsconnector

import (
	"context"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/collector/connector/connectortest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/otelcsp/otelcsp/connector/redmetricsconnector/internal/metadata"
	"github.com/otelcsp/otelcsp/internal/clock"
)

const benchSpans = 1000

// benchTraces is the benchmark batch: 1,000 spans from 10 services × 20
// operations, each with the two extra dimensions the config asks for.
func benchTraces(seed int) ptrace.Traces {
	td := ptrace.NewTraces()
	for svc := 0; svc < 10; svc++ {
		rs := td.ResourceSpans().AppendEmpty()
		rs.Resource().Attributes().PutStr("service.name", fmt.Sprintf("service-%d", svc))
		rs.Resource().Attributes().PutStr("host.name", "host-1")
		rs.Resource().Attributes().PutStr("telemetry.sdk.language", "go")
		ss := rs.ScopeSpans().AppendEmpty()
		ss.Scope().SetName("io.opentelemetry.http")
		for i := 0; i < benchSpans/10; i++ {
			sp := ss.Spans().AppendEmpty()
			sp.SetName(fmt.Sprintf("operation-%d", i%20))
			sp.SetKind(ptrace.SpanKindServer)
			if i%17 == 0 {
				sp.Status().SetCode(ptrace.StatusCodeError)
			}
			start := pcommon.NewTimestampFromTime(t0)
			sp.SetStartTimestamp(start)
			sp.SetEndTimestamp(start + pcommon.Timestamp((i*37+seed)%3000)*pcommon.Timestamp(time.Millisecond))
			sp.SetTraceID(pcommon.TraceID{byte(svc), byte(i), byte(seed), 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13})
			sp.SetSpanID(pcommon.SpanID{byte(svc), byte(i), 1, 2, 3, 4, 5, 6})
			methods := [...]string{"GET", "POST"}
			sp.Attributes().PutStr("http.request.method", methods[i%2])
			sp.Attributes().PutInt("http.response.status_code", int64(200+100*(i%3)))
			sp.Attributes().PutStr("url.path", "/some/path")
		}
	}
	return td
}

func benchConfig() *Config {
	cfg := createDefaultConfig()
	cfg.Dimensions = []Dimension{{Name: "http.request.method"}, {Name: "http.response.status_code"}}
	return cfg
}

func newBenchConnector(b *testing.B, cfg *Config) *connectorImp {
	c, err := newConnector(connectortest.NewNopSettings(metadata.Type), cfg, consumertest.NewNop(), clock.Real{})
	if err != nil {
		b.Fatal(err)
	}
	return c
}

// BenchmarkConsumeTraces measures steady-state ingestion: series exist after
// the warm-up batch, so each span is a hash, a lookup and a few adds.
func BenchmarkConsumeTraces(b *testing.B) {
	c := newBenchConnector(b, benchConfig())
	td := benchTraces(0)
	ctx := context.Background()
	_ = c.ConsumeTraces(ctx, td)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		_ = c.ConsumeTraces(ctx, td)
	}
	b.StopTimer()
	reportSpans(b)
}

// BenchmarkConsumeTracesParallel runs ConsumeTraces from GOMAXPROCS
// goroutines at once, as a collector with several receivers does.
func BenchmarkConsumeTracesParallel(b *testing.B) {
	c := newBenchConnector(b, benchConfig())
	ctx := context.Background()
	_ = c.ConsumeTraces(ctx, benchTraces(0))
	// One batch per goroutine, built before the timer so only ingestion is measured.
	batches := make([]ptrace.Traces, runtime.GOMAXPROCS(0))
	for i := range batches {
		batches[i] = benchTraces(0)
	}
	var next atomic.Int32
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		td := batches[int(next.Add(1)-1)%len(batches)]
		for pb.Next() {
			_ = c.ConsumeTraces(ctx, td)
		}
	})
	b.StopTimer()
	reportSpans(b)
}

func reportSpans(b *testing.B) {
	ns := float64(b.Elapsed().Nanoseconds()) / float64(b.N*benchSpans)
	b.ReportMetric(ns, "ns/span")
	b.ReportMetric(1e9/ns, "spans/s")
}

// BenchmarkFlush measures one flush of the benchmark's series set.
func BenchmarkFlush(b *testing.B) {
	c := newBenchConnector(b, benchConfig())
	ctx := context.Background()
	_ = c.ConsumeTraces(ctx, benchTraces(0))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c.flush(ctx)
	}
}

// BenchmarkMemoryPerSeries builds 100,000 series (one service, unique
// span names) and reports the heap they hold.
func BenchmarkMemoryPerSeries(b *testing.B) {
	const n = 100_000
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		cfg := benchConfig()
		cfg.CardinalityLimit = 0
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		batches := manySeriesBatches(n)
		b.StartTimer()
		c := newBenchConnector(b, cfg)
		for _, td := range batches {
			_ = c.ConsumeTraces(context.Background(), td)
		}
		b.StopTimer()
		clear(batches) // drop the references so the GC frees the batches
		runtime.GC()
		runtime.ReadMemStats(&after)
		if got := c.live.Load(); got != n {
			b.Fatalf("want %d series, got %d", n, got)
		}
		// The batches are garbage by now, so the growth is the connector's.
		b.ReportMetric((float64(after.HeapAlloc)-float64(before.HeapAlloc))/n, "bytes/series")
		runtime.KeepAlive(c)
	}
}

// manySeriesBatches are n spans of one service with distinct span names
// (~26 bytes), in batches of benchSpans: every span is a series of its own.
func manySeriesBatches(n int) []ptrace.Traces {
	batches := make([]ptrace.Traces, 0, n/benchSpans)
	for j := 0; j < n/benchSpans; j++ {
		td := ptrace.NewTraces()
		rs := td.ResourceSpans().AppendEmpty()
		rs.Resource().Attributes().PutStr("service.name", "svc")
		spans := rs.ScopeSpans().AppendEmpty().Spans()
		for k := 0; k < benchSpans; k++ {
			sp := spans.AppendEmpty()
			sp.SetName(fmt.Sprintf("GET /api/v1/items/%07d", j*benchSpans+k))
			sp.SetKind(ptrace.SpanKindServer)
			sp.Attributes().PutStr("http.request.method", "GET")
			sp.Attributes().PutInt("http.response.status_code", 200)
		}
		batches = append(batches, td)
	}
	return batches
}

// BenchmarkConsumeTracesManySeries is steady-state ingestion into 100,000
// existing series (the default cardinality_limit), where the per-span
// cost is bound by cache misses: the index slot, the series, its key and
// its counters. It holds the series layout's cache cost, as
// BenchmarkMemoryPerSeries holds its size.
func BenchmarkConsumeTracesManySeries(b *testing.B) {
	const n = 100_000
	cfg := benchConfig()
	cfg.CardinalityLimit = 0
	batches := manySeriesBatches(n)
	c := newBenchConnector(b, cfg)
	ctx := context.Background()
	for _, td := range batches {
		_ = c.ConsumeTraces(ctx, td)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		_ = c.ConsumeTraces(ctx, batches[i%len(batches)])
	}
	b.StopTimer()
	reportSpans(b)
}

// BenchmarkConsumeTracesVariants covers the other hot paths: exponential
// histogram, delta with exemplars and events, and a flood where every span
// has a new dimension value and goes to the overflow series.
func BenchmarkConsumeTracesVariants(b *testing.B) {
	expo := benchConfig()
	expo.Histogram.Exponential = &ExponentialHistogramConfig{}
	rich := benchConfig()
	rich.AggregationTemporality = Delta
	rich.Exemplars = ExemplarsConfig{Enabled: true, MaxPerDataPoint: 5}
	flood := benchConfig()
	flood.CardinalityLimit = 100
	flood.Dimensions = append(flood.Dimensions, Dimension{Name: "url.path"})
	floodBatch := benchTraces(0)
	n := 0
	rss := floodBatch.ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		spans := rss.At(i).ScopeSpans().At(0).Spans()
		for j := 0; j < spans.Len(); j++ {
			spans.At(j).Attributes().PutStr("url.path", fmt.Sprintf("/item/%d", n))
			n++
		}
	}
	for _, bc := range []struct {
		name string
		cfg  *Config
		td   ptrace.Traces
	}{
		{"exponential", expo, benchTraces(0)},
		{"delta_exemplars", rich, benchTraces(0)},
		{"overflow_flood", flood, floodBatch},
	} {
		b.Run(bc.name, func(b *testing.B) {
			c := newBenchConnector(b, bc.cfg)
			ctx := context.Background()
			_ = c.ConsumeTraces(ctx, bc.td)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				_ = c.ConsumeTraces(ctx, bc.td)
			}
			b.StopTimer()
			reportSpans(b)
		})
	}
}

// BenchmarkConsumeTracesSmallResources has one span per ResourceSpans and
// 20 resource attributes (a Kubernetes-like resource), so the per-resource
// work (identity hash and equality check) is paid on every span.
func BenchmarkConsumeTracesSmallResources(b *testing.B) {
	td := ptrace.NewTraces()
	for i := 0; i < benchSpans; i++ {
		rs := td.ResourceSpans().AppendEmpty()
		a := rs.Resource().Attributes()
		a.PutStr("service.name", fmt.Sprintf("service-%d", i%10))
		for k := 0; k < 19; k++ {
			a.PutStr(fmt.Sprintf("k8s.attribute.%d", k), fmt.Sprintf("value-%d-%d", k, i%10))
		}
		sp := rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
		sp.SetName(fmt.Sprintf("operation-%d", i%20))
		sp.SetKind(ptrace.SpanKindServer)
		sp.SetEndTimestamp(pcommon.Timestamp(i * 1000))
		sp.Attributes().PutStr("http.request.method", "GET")
		sp.Attributes().PutInt("http.response.status_code", 200)
	}
	c := newBenchConnector(b, benchConfig())
	ctx := context.Background()
	_ = c.ConsumeTraces(ctx, td)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		_ = c.ConsumeTraces(ctx, td)
	}
	b.StopTimer()
	reportSpans(b)
}
