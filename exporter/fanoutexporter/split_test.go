package fanoutexporter

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// genTraces makes a batch of traces spread over several resources and
// scopes, as a batch processor upstream would: spans of one trace are
// scattered, and every span records where it came from in attributes so a
// test can check that its resource and scope went with it.
func genTraces(rng *rand.Rand, traces, spansPerTrace int) ptrace.Traces {
	td := ptrace.NewTraces()
	const resources, scopes = 3, 2
	var slices [resources][scopes]ptrace.SpanSlice
	for r := range resources {
		rs := td.ResourceSpans().AppendEmpty()
		rs.SetSchemaUrl(fmt.Sprintf("schema-%d", r))
		rs.Resource().Attributes().PutStr("service.name", fmt.Sprintf("svc-%d", r))
		rs.Resource().Attributes().PutStr("tenant", fmt.Sprintf("tenant-%d", r%2))
		for s := range scopes {
			ss := rs.ScopeSpans().AppendEmpty()
			ss.Scope().SetName(fmt.Sprintf("scope-%d", s))
			slices[r][s] = ss.Spans()
		}
	}
	for range traces {
		var tid pcommon.TraceID
		fillRandom(rng, tid[:])
		for range spansPerTrace {
			r, s := rng.IntN(resources), rng.IntN(scopes)
			span := slices[r][s].AppendEmpty()
			span.SetTraceID(tid)
			var sid pcommon.SpanID
			fillRandom(rng, sid[:])
			span.SetSpanID(sid)
			span.SetName("op")
			span.Attributes().PutStr("origin", fmt.Sprintf("svc-%d/scope-%d", r, s))
		}
	}
	return td
}

func fillRandom(rng *rand.Rand, b []byte) {
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
}

// spanOrigins maps every span to "resource/scope" as found in td, and
// checks that it matches the origin the span was generated under.
func spanOrigins(t *testing.T, td ptrace.Traces) map[pcommon.SpanID]string {
	t.Helper()
	out := map[pcommon.SpanID]string{}
	rss := td.ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		rs := rss.At(i)
		svc, _ := rs.Resource().Attributes().Get("service.name")
		sss := rs.ScopeSpans()
		for j := 0; j < sss.Len(); j++ {
			ss := sss.At(j)
			require.Positive(t, ss.Spans().Len(), "empty scope left in output")
			for k := 0; k < ss.Spans().Len(); k++ {
				span := ss.Spans().At(k)
				origin := svc.Str() + "/" + ss.Scope().Name()
				want, _ := span.Attributes().Get("origin")
				require.Equal(t, want.Str(), origin, "span moved away from its resource or scope")
				require.Equal(t, "schema-"+svc.Str()[len("svc-"):], rs.SchemaUrl())
				out[span.SpanID()] = origin
			}
		}
	}
	return out
}

// TestSplitTraces checks, for each routing key and over several reuses of
// the same split, that every span lands exactly once, under its own
// resource and scope, and that routing keys hold (a trace stays together).
func TestSplitTraces(t *testing.T) {
	r := newRing(endpoints(5))
	choose := func(h uint64, _ int) int { return r.owner(r.slot(h)) }
	for _, key := range []string{keyTraceID, keyService, keyAttributes} {
		t.Run(key, func(t *testing.T) {
			cfg := &Config{RoutingKey: key}
			if key == keyAttributes {
				cfg.RoutingAttributes = []string{"tenant"}
			}
			ops := tracesOps(cfg, key, subExporter{})
			sp := ops.newSplit(r.size())
			rng := rand.New(rand.NewPCG(7, uint64(len(key))))
			for round := range 4 {
				in := genTraces(rng, 50+round*40, 1+round)
				want := spanOrigins(t, in)
				sp.add(in, choose)
				parts := sp.finish()
				require.Len(t, parts, r.size()+1)
				assert.Equal(t, 0, in.SpanCount()-countEmpty(in), "spans left behind in the input")
				got := map[pcommon.SpanID]string{}
				homes := map[string]map[int]bool{}
				for p, part := range parts {
					for id, origin := range spanOrigins(t, part) {
						_, dup := got[id]
						require.False(t, dup, "span delivered twice")
						got[id] = origin
					}
					forEachSpan(part, func(rs ptrace.ResourceSpans, s ptrace.Span) {
						k := groupKey(key, rs, s)
						if homes[k] == nil {
							homes[k] = map[int]bool{}
						}
						homes[k][p] = true
					})
				}
				require.Equal(t, want, got)
				for k, h := range homes {
					require.Len(t, h, 1, "items of key %s went to several backends", k)
				}
				assert.Equal(t, 0, parts[r.size()].SpanCount(), "nothing should be unroutable")
			}
		})
	}
}

// countEmpty counts spans emptied by MoveTo (they stay in the input as
// zero values).
func countEmpty(td ptrace.Traces) int {
	n := 0
	forEachSpan(td, func(_ ptrace.ResourceSpans, s ptrace.Span) {
		if s.SpanID().IsEmpty() {
			n++
		}
	})
	return n
}

func forEachSpan(td ptrace.Traces, fn func(ptrace.ResourceSpans, ptrace.Span)) {
	rss := td.ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		sss := rss.At(i).ScopeSpans()
		for j := 0; j < sss.Len(); j++ {
			for k := 0; k < sss.At(j).Spans().Len(); k++ {
				fn(rss.At(i), sss.At(j).Spans().At(k))
			}
		}
	}
}

func groupKey(key string, rs ptrace.ResourceSpans, s ptrace.Span) string {
	switch key {
	case keyService:
		v, _ := rs.Resource().Attributes().Get("service.name")
		return v.Str()
	case keyAttributes:
		v, _ := rs.Resource().Attributes().Get("tenant")
		return v.Str()
	}
	return s.TraceID().String()
}

// TestSplitMixesWholeScopesAndSingleSpans reuses one split for batches
// whose scopes go whole to one part (handed over at once) and batches
// whose spans are spread (moved one by one into the slots the earlier
// batches left), in turns: every span must land exactly once, under its
// own resource and scope, and only in its part.
func TestSplitMixesWholeScopesAndSingleSpans(t *testing.T) {
	const n = 3
	ops := tracesOps(&Config{}, keyTraceID, subExporter{})
	sp := ops.newSplit(n)
	rng := rand.New(rand.NewPCG(5, 6))
	spread := func(h uint64, _ int) int { return int(h % n) }
	for round := range 8 {
		in := genTraces(rng, 30+round*20, 3)
		want := spanOrigins(t, in)
		choose := spread
		if round%2 == 0 {
			whole := round % n
			choose = func(uint64, int) int { return whole }
		}
		owner := map[pcommon.SpanID]int{}
		forEachSpan(in, func(_ ptrace.ResourceSpans, s ptrace.Span) {
			owner[s.SpanID()] = choose(hashID(s.TraceID()), 1)
		})
		sp.add(in, choose)
		got := map[pcommon.SpanID]string{}
		for p, part := range sp.finish() {
			for id, origin := range spanOrigins(t, part) {
				_, dup := got[id]
				require.False(t, dup, "span delivered twice")
				require.Equal(t, owner[id], p, "span in another part than its own")
				got[id] = origin
			}
		}
		require.Equal(t, want, got, "round %d", round)
	}
}

func TestSplitUnroutableGoesToLastPart(t *testing.T) {
	ops := tracesOps(&Config{}, keyTraceID, subExporter{})
	sp := ops.newSplit(3)
	in := genTraces(rand.New(rand.NewPCG(1, 1)), 20, 3)
	sp.add(in, func(uint64, int) int { return -1 })
	parts := sp.finish()
	assert.Equal(t, 60, parts[3].SpanCount())
	for _, p := range parts[:3] {
		assert.Equal(t, 0, p.SpanCount())
	}
}

func TestSplitLogs(t *testing.T) {
	r := newRing(endpoints(4))
	choose := func(h uint64, _ int) int { return r.owner(r.slot(h)) }
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	rl.Resource().Attributes().PutStr("service.name", "svc")
	sl := rl.ScopeLogs().AppendEmpty()
	sl.Scope().SetName("scope")
	rng := rand.New(rand.NewPCG(2, 2))
	traceOf := map[int]pcommon.TraceID{}
	for i := range 300 {
		lr := sl.LogRecords().AppendEmpty()
		lr.Attributes().PutInt("n", int64(i))
		if i%3 != 0 { // a third of the records are outside any trace
			var tid pcommon.TraceID
			fillRandom(rng, tid[:8])
			lr.SetTraceID(tid)
			traceOf[i] = tid
		}
	}
	sp := logsOps(&Config{}, keyTraceID, subExporter{}).newSplit(r.size())
	sp.add(ld, choose)
	parts := sp.finish()
	seen := map[int64]bool{}
	noTrace := map[int]bool{}
	for p, part := range parts {
		rls := part.ResourceLogs()
		for i := 0; i < rls.Len(); i++ {
			svc, _ := rls.At(i).Resource().Attributes().Get("service.name")
			require.Equal(t, "svc", svc.Str())
			sls := rls.At(i).ScopeLogs()
			for j := 0; j < sls.Len(); j++ {
				require.Equal(t, "scope", sls.At(j).Scope().Name())
				lrs := sls.At(j).LogRecords()
				for k := 0; k < lrs.Len(); k++ {
					n, _ := lrs.At(k).Attributes().Get("n")
					require.False(t, seen[n.Int()], "record delivered twice")
					seen[n.Int()] = true
					if tid, ok := traceOf[int(n.Int())]; ok {
						require.Equal(t, r.owner(r.slot(hashID(tid))), p)
					} else {
						noTrace[p] = true
					}
				}
			}
		}
	}
	assert.Len(t, seen, 300)
	assert.Len(t, noTrace, 1, "records without a trace ID all route by service")
}

func TestSplitMetrics(t *testing.T) {
	r := newRing(endpoints(4))
	choose := func(h uint64, _ int) int { return r.owner(r.slot(h)) }
	build := func() pmetric.Metrics {
		md := pmetric.NewMetrics()
		for res := range 3 {
			rm := md.ResourceMetrics().AppendEmpty()
			rm.Resource().Attributes().PutStr("service.name", fmt.Sprintf("svc-%d", res))
			sm := rm.ScopeMetrics().AppendEmpty()
			sm.Scope().SetName("scope")
			sum := sm.Metrics().AppendEmpty()
			sum.SetName("requests")
			sum.SetUnit("1")
			sum.SetEmptySum().SetIsMonotonic(true)
			sum.Sum().SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
			hist := sm.Metrics().AppendEmpty()
			hist.SetName("latency")
			hist.SetEmptyHistogram().SetAggregationTemporality(pmetric.AggregationTemporalityDelta)
			for i := range 40 {
				dp := sum.Sum().DataPoints().AppendEmpty()
				dp.Attributes().PutInt("id", int64(res*1000+i))
				dp.SetIntValue(int64(i))
				hp := hist.Histogram().DataPoints().AppendEmpty()
				hp.Attributes().PutInt("id", int64(res*1000+i))
				hp.SetCount(uint64(i))
			}
		}
		return md
	}
	for _, key := range []string{keyService, keyResource, keyMetric, keyStreamID, keyAttributes} {
		t.Run(key, func(t *testing.T) {
			cfg := &Config{RoutingKey: key}
			if key == keyAttributes {
				cfg.RoutingAttributes = []string{"id"}
			}
			sp := metricsOps(cfg, key, subExporter{}).newSplit(r.size())
			for range 2 { // the second round reuses the buffers
				in := build()
				total := in.DataPointCount()
				sp.add(in, choose)
				parts := sp.finish()
				seen := map[string]bool{}
				got := 0
				for _, part := range parts {
					got += part.DataPointCount()
					rms := part.ResourceMetrics()
					for i := 0; i < rms.Len(); i++ {
						svc, _ := rms.At(i).Resource().Attributes().Get("service.name")
						ms := rms.At(i).ScopeMetrics().At(0).Metrics()
						for k := 0; k < ms.Len(); k++ {
							m := ms.At(k)
							switch m.Name() {
							case "requests":
								require.True(t, m.Sum().IsMonotonic())
								require.Equal(t, pmetric.AggregationTemporalityCumulative, m.Sum().AggregationTemporality())
								require.Equal(t, "1", m.Unit())
							case "latency":
								require.Equal(t, pmetric.AggregationTemporalityDelta, m.Histogram().AggregationTemporality())
							}
							for p := range dataPointCount(m) {
								id, _ := pointAttributes(m, p).Get("id")
								k := fmt.Sprintf("%s/%s/%d", svc.Str(), m.Name(), id.Int())
								require.False(t, seen[k], "data point delivered twice: %s", k)
								seen[k] = true
							}
						}
					}
				}
				require.Equal(t, total, got)
				require.Len(t, seen, total)
			}
		})
	}
}

// With routing_key streamID, the writers of one series (points that differ
// only in collector.instance.id) route alike by default, so the backend
// that owns the stream sees every writer; stream_id_exclude: [] keeps the
// attribute in the identity.
func TestStreamIDExcludesWriterIdentity(t *testing.T) {
	point := func(writer string) (pmetric.ResourceMetrics, pmetric.Metric) {
		md := pmetric.NewMetrics()
		rm := md.ResourceMetrics().AppendEmpty()
		rm.Resource().Attributes().PutStr("service.name", "checkout")
		m := rm.ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
		m.SetName("traces.span.metrics.calls")
		dp := m.SetEmptySum().DataPoints().AppendEmpty()
		dp.Attributes().PutStr("span.name", "GET /cart")
		dp.Attributes().PutStr("collector.instance.id", writer)
		return rm, m
	}
	rmA, mA := point("gateway-0")
	rmB, mB := point("gateway-1")
	byDefault, _ := metricKeyFunc(keyStreamID, nil, createDefaultConfig().(*Config).StreamIDExclude)
	require.Equal(t, byDefault(rmA, mA, 0), byDefault(rmB, mB, 0))
	withWriter, _ := metricKeyFunc(keyStreamID, nil, nil)
	require.NotEqual(t, withWriter(rmA, mA, 0), withWriter(rmB, mB, 0))
	// Other attributes still tell streams apart.
	rmC, mC := point("gateway-0")
	mC.Sum().DataPoints().At(0).Attributes().PutStr("span.name", "POST /cart")
	require.NotEqual(t, byDefault(rmA, mA, 0), byDefault(rmC, mC, 0))
}
