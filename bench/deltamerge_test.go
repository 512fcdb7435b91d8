package bench

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/open-telemetry/opentelemetry-collector-contrib/processor/deltatocumulativeprocessor"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/collector/processor/processortest"

	"github.com/otelcsp/otelcsp/processor/deltamergeprocessor"
)

// The aggregator tier's input: 10,000 streams (10 services × 250 span
// names × 2 span kinds × 2 status codes, with two constant attributes
// more), each written by 3 gateways; every gateway sends one batch of
// 10,000 delta points a flush, with its collector.instance.id on every
// data point. Same shape as deltamerge's own BenchmarkMerge.
const (
	dmWriters   = 3
	dmServices  = 10
	dmPerSvc    = 1000
	dmStreams   = dmServices * dmPerSvc
	dmWriterKey = "collector.instance.id"
	dmMaxStale  = 5 * time.Minute
	dmInterval  = time.Hour // no flush during a run
	dmMaxStream = 100_000
)

var dmBounds = []float64{2, 4, 6, 8, 10, 50, 100, 200, 400, 800, 1000, 1400, 2000, 5000, 10_000, 15_000}

// dmBatch is writer w's batch of delta points for window (start, end];
// kind is "sum" (monotonic int) or "hist" (explicit, the default span
// metrics buckets). Without the writer attribute when withWriter is false.
func dmBatch(w int, kind string, start, end pcommon.Timestamp, withWriter bool) pmetric.Metrics {
	md := pmetric.NewMetrics()
	kinds := [...]string{"SPAN_KIND_SERVER", "SPAN_KIND_CLIENT"}
	codes := [...]string{"STATUS_CODE_UNSET", "STATUS_CODE_ERROR"}
	for svc := range dmServices {
		rm := md.ResourceMetrics().AppendEmpty()
		rm.Resource().Attributes().PutStr("service.name", fmt.Sprintf("service-%d", svc))
		rm.Resource().Attributes().PutStr("telemetry.sdk.language", "go")
		sm := rm.ScopeMetrics().AppendEmpty()
		sm.Scope().SetName("github.com/otelcsp/otelcsp/connector/redmetricsconnector")
		m := sm.Metrics().AppendEmpty()
		var sum pmetric.Sum
		var hist pmetric.Histogram
		if kind == "hist" {
			m.SetName("traces.span.metrics.duration")
			m.SetUnit("ms")
			hist = m.SetEmptyHistogram()
			hist.SetAggregationTemporality(pmetric.AggregationTemporalityDelta)
		} else {
			m.SetName("traces.span.metrics.calls")
			sum = m.SetEmptySum()
			sum.SetIsMonotonic(true)
			sum.SetAggregationTemporality(pmetric.AggregationTemporalityDelta)
		}
		for i := range dmPerSvc {
			var attrs pcommon.Map
			if kind == "hist" {
				dp := hist.DataPoints().AppendEmpty()
				dp.SetStartTimestamp(start)
				dp.SetTimestamp(end)
				dp.ExplicitBounds().FromRaw(dmBounds)
				counts := make([]uint64, len(dmBounds)+1)
				counts[(i+w)%len(counts)] = 3
				counts[(i+w+5)%len(counts)] = 2
				dp.BucketCounts().FromRaw(counts)
				dp.SetCount(5)
				dp.SetSum(123.5)
				attrs = dp.Attributes()
			} else {
				dp := sum.DataPoints().AppendEmpty()
				dp.SetStartTimestamp(start)
				dp.SetTimestamp(end)
				dp.SetIntValue(int64(1 + w))
				attrs = dp.Attributes()
			}
			attrs.PutStr("span.name", fmt.Sprintf("operation-%d", i%250))
			attrs.PutStr("span.kind", kinds[(i/250)%2])
			attrs.PutStr("status.code", codes[(i/500)%2])
			attrs.PutStr("http.request.method", "GET")
			attrs.PutInt("http.response.status_code", 200)
			if withWriter {
				attrs.PutStr(dmWriterKey, fmt.Sprintf("gateway-%d", w))
			}
		}
	}
	return md
}

// dmImpl is one processor under test, created through its factory.
type dmImpl struct {
	name    string
	factory processor.Factory
	config  func() any
}

func dmImpls() []dmImpl {
	return []dmImpl{
		{"deltamerge", deltamergeprocessor.NewFactory(), func() any {
			cfg := deltamergeprocessor.NewFactory().CreateDefaultConfig().(*deltamergeprocessor.Config)
			cfg.Interval = dmInterval
			cfg.StreamExpiration = dmInterval // >= interval, as validation requires
			cfg.MaxStreams = dmMaxStream
			return cfg
		}},
		{"deltatocumulative", deltatocumulativeprocessor.NewFactory(), func() any {
			cfg := deltatocumulativeprocessor.NewFactory().CreateDefaultConfig().(*deltatocumulativeprocessor.Config)
			cfg.MaxStale = dmMaxStale
			cfg.MaxStreams = dmMaxStream
			return cfg
		}},
	}
}

func dmStart(tb testing.TB, ctx context.Context, im dmImpl, next consumer.Metrics) processor.Metrics {
	tb.Helper()
	p, err := im.factory.CreateMetrics(ctx, processortest.NewNopSettings(im.factory.Type()), im.config(), next)
	if err != nil {
		tb.Fatal(err)
	}
	if err := p.Start(ctx, componenttest.NewNopHost()); err != nil {
		tb.Fatal(err)
	}
	return p
}

// dmWindow is writer w's i-th flush window: every writer flushes every
// 10s, the writers 3s apart, so their points interleave.
func dmWindow(i, w int) (pcommon.Timestamp, pcommon.Timestamp) {
	start := t0.Add(time.Duration(10*i)*time.Second + time.Duration(3*w)*time.Second)
	return pcommon.NewTimestampFromTime(start), pcommon.NewTimestampFromTime(start.Add(10 * time.Second))
}

// BenchmarkDeltaMerge feeds both processors the same rounds of the three
// writers' batches (30,000 delta points a round, the op), through their
// factories, after a first round that creates the streams. Both consume
// their input (they mutate it), so each batch is a fresh copy, made with
// the timer stopped. The writer attribute is on the points, so
// deltatocumulative keeps one stream per writer (30,000) and accepts every
// point (each of its streams has one writer, in order); deltamerge keeps
// 10,000 streams of 3 writers each. Neither drops anything here.
func BenchmarkDeltaMerge(b *testing.B) {
	for _, kind := range []string{"sum", "hist"} {
		for _, im := range dmImpls() {
			b.Run("kind="+kind+"/impl="+im.name, func(b *testing.B) {
				ctx := context.Background()
				p := dmStart(b, ctx, im, consumertest.NewNop())
				b.Cleanup(func() { _ = p.Shutdown(ctx) })
				// Templates, copied per op (CopyTo keeps the timestamps,
				// which are then set to the op's window).
				tmpl := make([]pmetric.Metrics, dmWriters)
				for w := range tmpl {
					s, e := dmWindow(0, w)
					tmpl[w] = dmBatch(w, kind, s, e, true)
					md := pmetric.NewMetrics()
					tmpl[w].CopyTo(md)
					if err := p.ConsumeMetrics(ctx, md); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportAllocs()
				b.ResetTimer()
				for i := range b.N {
					for w := range dmWriters {
						b.StopTimer()
						md := pmetric.NewMetrics()
						tmpl[w].CopyTo(md)
						s, e := dmWindow(i+1, w)
						dmSetWindow(md, s, e)
						b.StartTimer()
						if err := p.ConsumeMetrics(ctx, md); err != nil {
							b.Fatal(err)
						}
					}
				}
				b.StopTimer()
				points := float64(b.N) * dmWriters * dmStreams
				b.ReportMetric(points/b.Elapsed().Seconds(), "points/s")
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/points, "ns/point")
			})
		}
	}
}

// BenchmarkDeltaMergeInput is BenchmarkDeltaMerge's per-op input
// preparation alone (the batch copies and their windows, which that
// benchmark makes with the timer stopped), handed to no processor. It is
// what to subtract from a whole-process instruction count of
// BenchmarkDeltaMerge (callgrind counts the stopped-timer work too) to get
// the processors' own.
func BenchmarkDeltaMergeInput(b *testing.B) {
	for _, kind := range []string{"sum", "hist"} {
		b.Run("kind="+kind, func(b *testing.B) {
			tmpl := make([]pmetric.Metrics, dmWriters)
			for w := range tmpl {
				s, e := dmWindow(0, w)
				tmpl[w] = dmBatch(w, kind, s, e, true)
			}
			b.ReportAllocs()
			for i := range b.N {
				for w := range dmWriters {
					md := pmetric.NewMetrics()
					tmpl[w].CopyTo(md)
					s, e := dmWindow(i+1, w)
					dmSetWindow(md, s, e)
				}
			}
		})
	}
}

func dmSetWindow(md pmetric.Metrics, start, end pcommon.Timestamp) {
	for _, rm := range md.ResourceMetrics().All() {
		for _, sm := range rm.ScopeMetrics().All() {
			for _, m := range sm.Metrics().All() {
				switch m.Type() {
				case pmetric.MetricTypeSum:
					for _, dp := range m.Sum().DataPoints().All() {
						dp.SetStartTimestamp(start)
						dp.SetTimestamp(end)
					}
				case pmetric.MetricTypeHistogram:
					for _, dp := range m.Histogram().DataPoints().All() {
						dp.SetStartTimestamp(start)
						dp.SetTimestamp(end)
					}
				}
			}
		}
	}
}

// dmTotals sums, per stream (attributes without the writer attribute),
// the latest cumulative value of every series in outs (later outputs
// replace earlier ones), adding up the series of different writers. For
// histograms the value is the count.
func dmTotals(outs []pmetric.Metrics) map[string]int64 {
	type series struct{ stream, writer string }
	latest := map[series]int64{}
	key := func(res pcommon.Map, name string, attrs pcommon.Map) series {
		var writer string
		if w, ok := attrs.Get(dmWriterKey); ok {
			writer = w.Str()
		}
		return series{dmKey(res) + "|" + name + "|" + dmKey(attrs), writer}
	}
	for _, md := range outs {
		for _, rm := range md.ResourceMetrics().All() {
			for _, sm := range rm.ScopeMetrics().All() {
				for _, m := range sm.Metrics().All() {
					res := rm.Resource().Attributes()
					switch m.Type() {
					case pmetric.MetricTypeSum:
						for _, dp := range m.Sum().DataPoints().All() {
							latest[key(res, m.Name(), dp.Attributes())] = dp.IntValue()
						}
					case pmetric.MetricTypeHistogram:
						for _, dp := range m.Histogram().DataPoints().All() {
							latest[key(res, m.Name(), dp.Attributes())] = int64(dp.Count())
						}
					}
				}
			}
		}
	}
	totals := map[string]int64{}
	for k, v := range latest {
		totals[k.stream] += v
	}
	return totals
}

// dmKey is attrs without the writer attribute, sorted, as a string.
func dmKey(attrs pcommon.Map) string {
	var parts []string
	for k, v := range attrs.All() {
		if k != dmWriterKey {
			parts = append(parts, fmt.Sprintf("%s=%s(%s)", k, v.AsString(), v.Type()))
		}
	}
	slices.Sort(parts)
	return strings.Join(parts, ",")
}

// TestDeltaMergeEquivalent checks that the benchmark compares the same
// work: from the benchmark's rounds, deltamerge's cumulative of each
// stream equals the sum of deltatocumulative's per-writer cumulatives, and
// both equal what was sent.
func TestDeltaMergeEquivalent(t *testing.T) {
	const rounds = 3
	for _, kind := range []string{"sum", "hist"} {
		got := map[string]map[string]int64{}
		for _, im := range dmImpls() {
			ctx := context.Background()
			sink := new(consumertest.MetricsSink)
			p := dmStart(t, ctx, im, sink)
			for i := range rounds {
				for w := range dmWriters {
					s, e := dmWindow(i, w)
					if err := p.ConsumeMetrics(ctx, dmBatch(w, kind, s, e, true)); err != nil {
						t.Fatal(err)
					}
				}
			}
			if err := p.Shutdown(ctx); err != nil { // deltamerge flushes here
				t.Fatal(err)
			}
			got[im.name] = dmTotals(sink.AllMetrics())
		}
		dm, dc := got["deltamerge"], got["deltatocumulative"]
		if len(dm) != dmStreams || len(dc) != dmStreams {
			t.Fatalf("%s: streams: deltamerge %d, deltatocumulative %d, want %d", kind, len(dm), len(dc), dmStreams)
		}
		want := int64(rounds * (1 + 2 + 3)) // sums: writer w adds 1+w a round
		if kind == "hist" {
			want = rounds * dmWriters * 5
		}
		for k, v := range dm {
			if v != want || dc[k] != want {
				t.Fatalf("%s stream %s: deltamerge %d, deltatocumulative %d, want %d", kind, k, v, dc[k], want)
			}
		}
	}
}

// lossScenario is a sequence of batches as they arrive at the aggregator.
type lossScenario struct {
	name, what string
	batches    []lossBatch
}

type lossBatch struct {
	writer     int
	start, end time.Duration // since t0
	arrive     time.Duration
	value      int64
	retry      bool // a re-send of a batch already delivered
}

// lossScenarios: two gateways (writers) write the same 100 streams, delta
// sums, 10s flushes, for 10 minutes.
func lossScenarios() []lossScenario {
	const flushes = 60
	mk := func(offset time.Duration, jitter time.Duration, retries bool) []lossBatch {
		// The same values and the same delays in every scenario.
		values, delays := rand.New(rand.NewPCG(1, 2)), rand.New(rand.NewPCG(3, 4))
		var out []lossBatch
		for w := range 2 {
			for i := range flushes {
				start := time.Duration(i)*10*time.Second + time.Duration(w)*offset
				b := lossBatch{writer: w, start: start, end: start + 10*time.Second, value: int64(1 + values.IntN(20))}
				b.arrive = b.end
				if jitter > 0 {
					b.arrive += time.Duration(delays.Int64N(int64(jitter)))
				}
				out = append(out, b)
				if retries && i%10 == 3 {
					// The export timed out after the data arrived: the
					// same batch again, a few seconds later.
					r := b
					r.retry = true
					r.arrive += 2 * time.Second
					out = append(out, r)
				}
			}
		}
		slices.SortStableFunc(out, func(a, b lossBatch) int { return int(a.arrive - b.arrive) })
		return out
	}
	return []lossScenario{
		{"interleaved", "flushes 5s apart, delivered in end-time order", mk(5*time.Second, 0, false)},
		{"jitter", "flushes 5s apart, each batch delayed by 0-8s on its way (queues, batching)", mk(5*time.Second, 8*time.Second, false)},
		{"aligned", "both writers flush at the same instants (pods started together, or clock-aligned flushes)", mk(0, 0, false)},
		{"retries", "as jitter, plus one batch in ten re-sent 2s later by a retry", mk(5*time.Second, 8*time.Second, true)},
	}
}

// TestDeltaMergeLoss feeds both processors two writers' deltas of the same
// streams and reports how much each one counts of what was sent.
// deltamerge gets the points with the writer attribute; deltatocumulative
// gets them without it, because with it it keeps one series per writer
// and never merges them (what it would take to get one series per stream
// from it: remove the attribute, e.g. with the attributes processor). The
// test asserts that deltamerge is exact; deltatocumulative's figures are
// logged (docs/benchmarks.md quotes them).
func TestDeltaMergeLoss(t *testing.T) {
	const streams = 100
	for _, sc := range lossScenarios() {
		t.Run(sc.name, func(t *testing.T) {
			var sent int64
			for _, b := range sc.batches {
				if !b.retry {
					sent += b.value * streams
				}
			}
			got := map[string]int64{}
			for _, im := range dmImpls() {
				ctx := context.Background()
				sink := new(consumertest.MetricsSink)
				p := dmStart(t, ctx, im, sink)
				withWriter := im.name == "deltamerge"
				for _, b := range sc.batches {
					if err := p.ConsumeMetrics(ctx, lossBatchMetrics(b, streams, withWriter)); err != nil {
						t.Fatal(err)
					}
				}
				if err := p.Shutdown(ctx); err != nil {
					t.Fatal(err)
				}
				var total int64
				for _, v := range dmTotals(sink.AllMetrics()) {
					total += v
				}
				got[im.name] = total
			}
			dm, dc := got["deltamerge"], got["deltatocumulative"]
			t.Logf("%-12s %s: sent %d; deltamerge counted %d (%.2f%% lost); deltatocumulative counted %d (%.2f%% lost)",
				sc.name, sc.what, sent, dm, 100*float64(sent-dm)/float64(sent), dc, 100*float64(sent-dc)/float64(sent))
			if dm != sent {
				t.Errorf("deltamerge counted %d, sent %d", dm, sent)
			}
		})
	}
}

// lossBatchMetrics is one writer's batch: the same delta for every stream.
func lossBatchMetrics(b lossBatch, streams int, withWriter bool) pmetric.Metrics {
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	rm.Resource().Attributes().PutStr("service.name", "checkout")
	m := rm.ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
	m.SetName("traces.span.metrics.calls")
	s := m.SetEmptySum()
	s.SetIsMonotonic(true)
	s.SetAggregationTemporality(pmetric.AggregationTemporalityDelta)
	for i := range streams {
		dp := s.DataPoints().AppendEmpty()
		dp.Attributes().PutStr("span.name", fmt.Sprintf("operation-%d", i))
		if withWriter {
			dp.Attributes().PutStr(dmWriterKey, fmt.Sprintf("gateway-%d", b.writer))
		}
		dp.SetStartTimestamp(pcommon.NewTimestampFromTime(t0.Add(b.start)))
		dp.SetTimestamp(pcommon.NewTimestampFromTime(t0.Add(b.end)))
		dp.SetIntValue(b.value)
	}
	return md
}
