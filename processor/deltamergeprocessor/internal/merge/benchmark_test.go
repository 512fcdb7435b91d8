package merge

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
)

// Benchmark input: the aggregator tier's steady state. 10,000 streams
// (10 services × 250 span names × 2 kinds × 2 status codes, two more
// constant attributes), each written by 3 gateways: every gateway sends
// one batch of 10,000 delta points a flush (10 ResourceMetrics of 1,000),
// with its collector.instance.id on every data point, as the gateways'
// transform puts it.
const (
	benchWriters  = 3
	benchServices = 10
	benchPerSvc   = 1000
	benchStreams  = benchServices * benchPerSvc
)

// benchBatch is one writer's batch of delta points (timestamps set by
// setWindow); kind is "sum" or "hist".
func benchBatch(writer int, kind string) pmetric.Metrics {
	md := pmetric.NewMetrics()
	for svc := range benchServices {
		rm := md.ResourceMetrics().AppendEmpty()
		ra := rm.Resource().Attributes()
		ra.PutStr("service.name", fmt.Sprintf("service-%d", svc))
		ra.PutStr("telemetry.sdk.language", "go")
		sm := rm.ScopeMetrics().AppendEmpty()
		sm.Scope().SetName("github.com/otelcsp/otelcsp/connector/redmetricsconnector")
		m := sm.Metrics().AppendEmpty()
		var add func() pcommon.Map
		switch kind {
		case "hist":
			m.SetName("traces.span.metrics.duration")
			m.SetUnit("ms")
			h := m.SetEmptyHistogram()
			h.SetAggregationTemporality(pmetric.AggregationTemporalityDelta)
			add = func() pcommon.Map {
				dp := h.DataPoints().AppendEmpty()
				dp.ExplicitBounds().FromRaw([]float64{2, 4, 6, 8, 10, 50, 100, 200, 400, 800, 1000, 1400, 2000, 5000, 10_000, 15_000})
				counts := make([]uint64, 17)
				counts[writer%17] = 3
				counts[(writer+5)%17] = 2
				dp.BucketCounts().FromRaw(counts)
				dp.SetCount(5)
				dp.SetSum(123.5)
				return dp.Attributes()
			}
		default:
			m.SetName("traces.span.metrics.calls")
			s := m.SetEmptySum()
			s.SetIsMonotonic(true)
			s.SetAggregationTemporality(pmetric.AggregationTemporalityDelta)
			add = func() pcommon.Map {
				dp := s.DataPoints().AppendEmpty()
				dp.SetIntValue(int64(1 + writer))
				return dp.Attributes()
			}
		}
		kinds := [...]string{"SPAN_KIND_SERVER", "SPAN_KIND_CLIENT"}
		codes := [...]string{"STATUS_CODE_UNSET", "STATUS_CODE_ERROR"}
		for i := range benchPerSvc {
			a := add()
			a.PutStr("span.name", fmt.Sprintf("operation-%d", i%250))
			a.PutStr("span.kind", kinds[(i/250)%2])
			a.PutStr("status.code", codes[(i/500)%2])
			a.PutStr("http.request.method", "GET")
			a.PutInt("http.response.status_code", 200)
			a.PutStr("collector.instance.id", fmt.Sprintf("gateway-%d", writer))
		}
	}
	return md
}

// windowed is what sums and histograms share for the window update.
type windowed interface {
	SetStartTimestamp(pcommon.Timestamp)
	SetTimestamp(pcommon.Timestamp)
}

// setWindow moves every point of md to the window (start, end]: a new
// delta, not a retry.
func setWindow(md pmetric.Metrics, start, end pcommon.Timestamp) {
	set := func(dp windowed) {
		dp.SetStartTimestamp(start)
		dp.SetTimestamp(end)
	}
	for _, rm := range md.ResourceMetrics().All() {
		for _, sm := range rm.ScopeMetrics().All() {
			for _, m := range sm.Metrics().All() {
				switch m.Type() {
				case pmetric.MetricTypeSum:
					for _, dp := range m.Sum().DataPoints().All() {
						set(dp)
					}
				case pmetric.MetricTypeHistogram:
					for _, dp := range m.Histogram().DataPoints().All() {
						set(dp)
					}
				}
			}
		}
	}
}

func benchTable() *Table {
	cfg := testConfig()
	cfg.MaxStreams = 100_000
	return New(cfg)
}

// BenchmarkMerge: one op is one round of the three writers' batches
// (30,000 points) into streams that exist: find the stream, find the
// writer, check the duplicate memory, add. The window update of each
// point (two timestamp writes) is part of the op.
func BenchmarkMerge(b *testing.B) {
	for _, kind := range []string{"sum", "hist"} {
		b.Run("kind="+kind, func(b *testing.B) {
			tb := benchTable()
			batches := make([]pmetric.Metrics, benchWriters)
			for w := range batches {
				batches[w] = benchBatch(w, kind)
			}
			round := func(i int) {
				for w, md := range batches {
					// Writers 5s apart, each on its own 10s flush.
					start := ts(10*i + 5*w)
					setWindow(md, start, start+pcommon.Timestamp(10*time.Second))
					if r := tb.Merge(md, t0); r.Merged != benchStreams {
						b.Fatalf("round %d writer %d: %+v", i, w, r)
					}
				}
			}
			round(0) // create the streams and the writers
			if tb.Len() != benchStreams {
				b.Fatalf("%d streams", tb.Len())
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				round(i + 1)
			}
			points := float64(b.N) * benchWriters * benchStreams
			b.ReportMetric(b.Elapsed().Seconds()*1e9/points, "ns/point")
			b.ReportMetric(points/b.Elapsed().Seconds(), "points/s")
		})
	}
}

// BenchmarkFlush builds the cumulative output of 10,000 streams.
func BenchmarkFlush(b *testing.B) {
	tb := benchTable()
	for w := range benchWriters {
		md := benchBatch(w, "sum")
		setWindow(md, ts(0), ts(10))
		tb.Merge(md, t0)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		tb.Flush(t0)
	}
	b.ReportMetric(b.Elapsed().Seconds()*1e9/float64(b.N)/benchStreams, "ns/stream")
}

// BenchmarkMemoryPerStream reports the heap a stream costs with three
// writers (sums; the table entries, the attribute copies, the writer
// records).
func BenchmarkMemoryPerStream(b *testing.B) {
	batches := make([]pmetric.Metrics, benchWriters)
	for w := range batches {
		batches[w] = benchBatch(w, "sum")
		setWindow(batches[w], ts(0), ts(10))
	}
	var per float64
	for range b.N {
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		tb := benchTable()
		for _, md := range batches {
			tb.Merge(md, t0)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		per = float64(after.HeapAlloc-before.HeapAlloc) / benchStreams
		runtime.KeepAlive(tb)
	}
	b.ReportMetric(per, "bytes/stream")
}
