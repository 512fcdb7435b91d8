package bench

import (
	"context"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/open-telemetry/opentelemetry-collector-contrib/connector/spanmetricsconnector"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/connector"
	"go.opentelemetry.io/collector/connector/connectortest"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/otelcsp/otelcsp/connector/redmetricsconnector"
)

const (
	batchSpans = 1000
	services   = 10
	operations = 20
	// flushInterval is long enough that no flush happens during a run:
	// the benchmarks measure ingestion, the part that runs per span.
	flushInterval = time.Hour
	// Both connectors get the same bounds: the series limit and expiry do
	// not cost anything per span in steady state in either of them, but
	// this keeps the configs honestly equivalent.
	cardinalityLimit = 100_000
	seriesExpiration = 5 * time.Minute
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// extraDimensions are the two dimensions configured on top of the four
// defaults (service.name, span.name, span.kind, status.code): a string and
// an int attribute, as HTTP server spans carry.
var extraDimensions = []string{"http.request.method", "http.response.status_code"}

// makeBatch builds the benchmark input: 1,000 spans from 10 services × 20
// operations, one ResourceSpans per service, with the two extra
// dimensions and one attribute (url.path) that is not a dimension.
// Durations spread over 0–3 s so every histogram bucket range is hit; one
// span in 17 is an error. The series set is 10 × 20 × 2 methods × 3 status
// codes × 2 status codes, minus the combinations the modulos never meet.
func makeBatch() ptrace.Traces {
	td := ptrace.NewTraces()
	methods := [...]string{"GET", "POST"}
	for svc := range services {
		rs := td.ResourceSpans().AppendEmpty()
		ra := rs.Resource().Attributes()
		ra.PutStr("service.name", fmt.Sprintf("service-%d", svc))
		ra.PutStr("host.name", "host-1")
		ra.PutStr("telemetry.sdk.language", "go")
		ss := rs.ScopeSpans().AppendEmpty()
		ss.Scope().SetName("io.opentelemetry.http")
		for i := range batchSpans / services {
			sp := ss.Spans().AppendEmpty()
			sp.SetName(fmt.Sprintf("operation-%d", i%operations))
			sp.SetKind(ptrace.SpanKindServer)
			if i%17 == 0 {
				sp.Status().SetCode(ptrace.StatusCodeError)
			}
			start := pcommon.NewTimestampFromTime(t0)
			sp.SetStartTimestamp(start)
			sp.SetEndTimestamp(start + pcommon.Timestamp((i*37)%3000)*pcommon.Timestamp(time.Millisecond))
			sp.SetTraceID(pcommon.TraceID{byte(svc), byte(i), 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14})
			sp.SetSpanID(pcommon.SpanID{byte(svc), byte(i), 1, 2, 3, 4, 5, 6})
			sp.Attributes().PutStr("http.request.method", methods[i%2])
			sp.Attributes().PutInt("http.response.status_code", int64(200+100*(i%3)))
			sp.Attributes().PutStr("url.path", "/some/path")
		}
	}
	return td
}

// impl is one connector under test, created through its factory.
type impl struct {
	name    string
	factory connector.Factory
	config  func(expiration time.Duration) any
}

func impls() []impl {
	return []impl{
		{"redmetrics", redmetricsconnector.NewFactory(), redmetricsConfig},
		{"spanmetrics", spanmetricsconnector.NewFactory(), spanmetricsConfig},
	}
}

// redmetricsConfig: the defaults (namespace traces.span.metrics, the four
// default dimensions, explicit histogram in ms with the default buckets,
// cumulative) plus the two extra dimensions.
func redmetricsConfig(expiration time.Duration) any {
	cfg := redmetricsconnector.NewFactory().CreateDefaultConfig().(*redmetricsconnector.Config)
	for _, d := range extraDimensions {
		cfg.Dimensions = append(cfg.Dimensions, redmetricsconnector.Dimension{Name: d})
	}
	cfg.MetricsFlushInterval = flushInterval
	cfg.CardinalityLimit = cardinalityLimit
	cfg.SeriesExpiration = expiration
	return cfg
}

// spanmetricsConfig is the same config for contrib: its defaults are the
// same namespace, default dimensions, unit (ms), buckets and temporality.
func spanmetricsConfig(expiration time.Duration) any {
	cfg := spanmetricsconnector.NewFactory().CreateDefaultConfig().(*spanmetricsconnector.Config)
	for _, d := range extraDimensions {
		cfg.Dimensions = append(cfg.Dimensions, spanmetricsconnector.Dimension{Name: d})
	}
	cfg.MetricsFlushInterval = flushInterval
	cfg.AggregationCardinalityLimit = cardinalityLimit
	cfg.SeriesExpiration = expiration
	return cfg
}

// start creates the connector through its factory with connectortest
// settings and starts it, as the collector would.
func start(tb testing.TB, ctx context.Context, im impl, expiration time.Duration, next consumer.Metrics) connector.Traces {
	tb.Helper()
	c, err := im.factory.CreateTracesToMetrics(ctx, connectortest.NewNopSettings(im.factory.Type()), im.config(expiration), next)
	if err != nil {
		tb.Fatal(err)
	}
	if err := c.Start(ctx, componenttest.NewNopHost()); err != nil {
		tb.Fatal(err)
	}
	return c
}

// BenchmarkSpanMetrics feeds the same 1,000-span batch to each connector.
// The first batch is consumed before the timer starts, so every series
// exists and the loop measures steady-state ingestion: per span, find the
// series of its dimension values and record the call and the duration.
//
// mode=serial is one goroutine; mode=parallel runs ConsumeTraces from
// GOMAXPROCS goroutines at once (each with its own copy of the batch), as
// a collector with several receivers or a batching processor does.
func BenchmarkSpanMetrics(b *testing.B) {
	for _, mode := range []string{"serial", "parallel"} {
		for _, im := range impls() {
			b.Run("mode="+mode+"/impl="+im.name, func(b *testing.B) {
				ctx := context.Background()
				// A sink, as in the components' own tests; with the long flush
				// interval it receives nothing during the run.
				c := start(b, ctx, im, seriesExpiration, new(consumertest.MetricsSink))
				b.Cleanup(func() { _ = c.Shutdown(ctx) })
				if err := c.ConsumeTraces(ctx, makeBatch()); err != nil {
					b.Fatal(err)
				}
				if mode == "serial" {
					td := makeBatch()
					b.ReportAllocs()
					b.ResetTimer()
					for range b.N {
						_ = c.ConsumeTraces(ctx, td)
					}
				} else {
					batches := make([]ptrace.Traces, runtime.GOMAXPROCS(0))
					for i := range batches {
						batches[i] = makeBatch()
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
				}
				b.StopTimer()
				reportPerSpan(b)
			})
		}
	}
}

// reportPerSpan adds spans/s and ns/span; allocs/op and B/op are per
// batch of 1,000 spans (divide by 1,000 for per span).
func reportPerSpan(b *testing.B) {
	spans := float64(b.N) * batchSpans
	b.ReportMetric(spans/b.Elapsed().Seconds(), "spans/s")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/spans, "ns/span")
}
