package redmetricsconnector

import (
	"context"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/otelcsp/otelcsp/internal/clock/clocktest"
)

func strp(s string) *string { return &s }

func flushNow(t *testing.T, c *connectorImp, clk *clocktest.Fake, d time.Duration) {
	t.Helper()
	clk.Advance(d)
	c.flush(context.Background())
}

// pointsByAttr indexes a sum's points by the value of one attribute.
func sumPoints(m pmetric.Metric) []pmetric.NumberDataPoint {
	var out []pmetric.NumberDataPoint
	for i := 0; i < m.Sum().DataPoints().Len(); i++ {
		out = append(out, m.Sum().DataPoints().At(i))
	}
	return out
}

func TestDimensionsAndDefaults(t *testing.T) {
	cfg := createDefaultConfig()
	cfg.Dimensions = []Dimension{
		{Name: "http.method"},                         // span attribute
		{Name: "deployment.environment"},              // resource attribute
		{Name: "region", Default: strp("unknown")},    // default when missing
		{Name: "http.status_code"},                    // int value keeps its type
		{Name: "missing"},                             // absent: left out
		{Name: "tier", Default: strp("from-default")}, // span beats resource beats default
	}
	c, sink, clk := newTestConnector(t, cfg)
	consume(t, c,
		spanSpec{service: "a", name: "op", kind: ptrace.SpanKindServer, durMs: 1,
			attrs:    map[string]any{"http.method": "GET", "http.status_code": 200, "tier": "span"},
			resAttrs: map[string]any{"deployment.environment": "prod", "tier": "resource"}},
		spanSpec{service: "a", name: "op", kind: ptrace.SpanKindServer, durMs: 1,
			attrs:    map[string]any{"http.method": "GET", "http.status_code": 200, "region": "eu"},
			resAttrs: map[string]any{"deployment.environment": "prod", "tier": "resource"}},
	)
	flushNow(t, c, clk, time.Minute)
	md := allMetrics(sink)
	assertGolden(t, "dimensions", md)
	pts := sumPoints(findMetric(t, md, "a", "traces.span.metrics.calls"))
	require.Len(t, pts, 2)
	for _, p := range pts {
		a := p.Attributes().AsRaw()
		assert.Equal(t, "GET", a["http.method"])
		assert.Equal(t, int64(200), a["http.status_code"])
		assert.Equal(t, "prod", a["deployment.environment"])
		assert.NotContains(t, a, "missing")
		if a["tier"] == "span" {
			assert.Equal(t, "unknown", a["region"])
		} else {
			assert.Equal(t, "resource", a["tier"])
			assert.Equal(t, "eu", a["region"])
		}
	}
}

func TestExcludeDimensions(t *testing.T) {
	cfg := createDefaultConfig()
	cfg.Dimensions = []Dimension{{Name: "http.method"}}
	cfg.ExcludeDimensions = []string{"status.code", "http.method"}
	c, sink, clk := newTestConnector(t, cfg)
	consume(t, c,
		spanSpec{service: "a", name: "op", status: ptrace.StatusCodeError, durMs: 1, attrs: map[string]any{"http.method": "GET"}},
		spanSpec{service: "a", name: "op", status: ptrace.StatusCodeOk, durMs: 1, attrs: map[string]any{"http.method": "PUT"}},
	)
	flushNow(t, c, clk, time.Minute)
	pts := sumPoints(findMetric(t, allMetrics(sink), "a", "traces.span.metrics.calls"))
	require.Len(t, pts, 1, "excluded dimensions no longer split series")
	assert.Equal(t, int64(2), pts[0].IntValue())
	assert.Equal(t, map[string]any{"service.name": "a", "span.name": "op", "span.kind": "SPAN_KIND_UNSPECIFIED", "collector.instance.id": testInstanceID}, pts[0].Attributes().AsRaw())
}

func TestResourceMetricsKeyAttributes(t *testing.T) {
	cfg := createDefaultConfig()
	cfg.ResourceMetricsKeyAttributes = []string{"service.name"}
	c, sink, clk := newTestConnector(t, cfg)
	consume(t, c,
		spanSpec{service: "a", name: "op", durMs: 1, resAttrs: map[string]any{"process.pid": 1}},
		spanSpec{service: "a", name: "op", durMs: 1, resAttrs: map[string]any{"process.pid": 2}},
	)
	flushNow(t, c, clk, time.Minute)
	md := allMetrics(sink)
	require.Equal(t, 1, md.ResourceMetrics().Len(), "resources differing only outside the key attributes merge")
	assert.Equal(t, int64(2), sumPoints(findMetric(t, md, "a", "traces.span.metrics.calls"))[0].IntValue())

	// Without key attributes, every attribute identifies the resource.
	c2, sink2, clk2 := newTestConnector(t, createDefaultConfig())
	consume(t, c2,
		spanSpec{service: "a", name: "op", durMs: 1, resAttrs: map[string]any{"process.pid": 1}},
		spanSpec{service: "a", name: "op", durMs: 1, resAttrs: map[string]any{"process.pid": 2}},
		spanSpec{service: "a", name: "op", durMs: 1, resAttrs: map[string]any{"process.pid": 2}},
	)
	flushNow(t, c2, clk2, time.Minute)
	assert.Equal(t, 2, allMetrics(sink2).ResourceMetrics().Len())
}

func TestIncludeInstrumentationScope(t *testing.T) {
	cfg := createDefaultConfig()
	cfg.IncludeInstrumentationScope = []string{"io.opentelemetry.http"}
	c, sink, clk := newTestConnector(t, cfg)
	consume(t, c,
		spanSpec{service: "a", name: "op", durMs: 1, scope: "io.opentelemetry.http", scopeVer: "1.2.0"},
		spanSpec{service: "a", name: "op", durMs: 1, scope: "other"},
	)
	flushNow(t, c, clk, time.Minute)
	pts := sumPoints(findMetric(t, allMetrics(sink), "a", "traces.span.metrics.calls"))
	require.Len(t, pts, 2)
	var listed, other int
	for _, p := range pts {
		a := p.Attributes().AsRaw()
		if a[scopeNameKey] == "io.opentelemetry.http" {
			listed++
			assert.Equal(t, "1.2.0", a[scopeVersionKey])
		} else {
			other++
			assert.NotContains(t, a, scopeNameKey)
		}
	}
	assert.Equal(t, 1, listed)
	assert.Equal(t, 1, other)
}

func TestDeltaTemporality(t *testing.T) {
	cfg := createDefaultConfig()
	cfg.AggregationTemporality = Delta
	c, sink, clk := newTestConnector(t, cfg)
	consume(t, c,
		spanSpec{service: "a", name: "op1", durMs: 5},
		spanSpec{service: "a", name: "op2", durMs: 5},
	)
	flushNow(t, c, clk, time.Minute)
	first := allMetrics(sink)
	assertGolden(t, "delta_first", first)
	calls := findMetric(t, first, "a", "traces.span.metrics.calls")
	assert.Equal(t, pmetric.AggregationTemporalityDelta, calls.Sum().AggregationTemporality())
	for _, p := range sumPoints(calls) {
		assert.Equal(t, t0.UnixNano(), int64(p.StartTimestamp()), "the first interval starts at connector start")
	}

	sink.Reset()
	clk.Advance(10 * time.Second)
	consume(t, c, spanSpec{service: "a", name: "op1", durMs: 5}, spanSpec{service: "a", name: "op1", durMs: 500})
	flushNow(t, c, clk, 50*time.Second)
	second := allMetrics(sink)
	assertGolden(t, "delta_second", second)
	pts := sumPoints(findMetric(t, second, "a", "traces.span.metrics.calls"))
	require.Len(t, pts, 1, "a series without spans in the interval is not emitted")
	assert.Equal(t, int64(2), pts[0].IntValue(), "delta counts only the interval")
	assert.Equal(t, t0.Add(time.Minute).UnixNano(), int64(pts[0].StartTimestamp()), "starts at the previous flush")
	assert.Equal(t, t0.Add(2*time.Minute).UnixNano(), int64(pts[0].Timestamp()))
	h := findMetric(t, second, "a", "traces.span.metrics.duration").Histogram().DataPoints().At(0)
	assert.Equal(t, uint64(2), h.Count())
	assert.InDelta(t, 505.0, h.Sum(), 1e-9)

	// Nothing at all in an interval: nothing sent.
	sink.Reset()
	flushNow(t, c, clk, time.Minute)
	assert.Empty(t, sink.AllMetrics())
}

func TestCumulativeStartIsFirstSeen(t *testing.T) {
	c, sink, clk := newTestConnector(t, createDefaultConfig())
	consume(t, c, spanSpec{service: "a", name: "early", durMs: 1})
	clk.Advance(30 * time.Second)
	consume(t, c, spanSpec{service: "a", name: "late", durMs: 1})
	flushNow(t, c, clk, 30*time.Second)
	for _, p := range sumPoints(findMetric(t, allMetrics(sink), "a", "traces.span.metrics.calls")) {
		name, _ := p.Attributes().Get("span.name")
		if name.Str() == "early" {
			assert.Equal(t, t0.UnixNano(), int64(p.StartTimestamp()))
		} else {
			assert.Equal(t, t0.Add(30*time.Second).UnixNano(), int64(p.StartTimestamp()))
		}
	}
}

func TestHistogramSecondsAndCustomBuckets(t *testing.T) {
	cfg := createDefaultConfig()
	cfg.Histogram.Unit = UnitSeconds
	cfg.Histogram.Explicit = &ExplicitHistogramConfig{Buckets: []time.Duration{100 * time.Millisecond, time.Second}}
	c, sink, clk := newTestConnector(t, cfg)
	consume(t, c,
		spanSpec{service: "a", name: "op", durMs: 50},
		spanSpec{service: "a", name: "op", durMs: 100},
		spanSpec{service: "a", name: "op", durMs: 2500},
	)
	flushNow(t, c, clk, time.Minute)
	md := allMetrics(sink)
	assertGolden(t, "histogram_seconds", md)
	d := findMetric(t, md, "a", "traces.span.metrics.duration")
	assert.Equal(t, "s", d.Unit())
	dp := d.Histogram().DataPoints().At(0)
	assert.Equal(t, []float64{0.1, 1}, dp.ExplicitBounds().AsRaw())
	assert.Equal(t, []uint64{2, 0, 1}, dp.BucketCounts().AsRaw())
	assert.InDelta(t, 2.65, dp.Sum(), 1e-9)
}

func TestHistogramDefaultBucketsInSeconds(t *testing.T) {
	cfg := createDefaultConfig()
	cfg.Histogram.Unit = UnitSeconds
	c, sink, clk := newTestConnector(t, cfg)
	consume(t, c, spanSpec{service: "a", name: "op", durMs: 3})
	flushNow(t, c, clk, time.Minute)
	dp := findMetric(t, allMetrics(sink), "a", "traces.span.metrics.duration").Histogram().DataPoints().At(0)
	assert.Equal(t, 0.002, dp.ExplicitBounds().At(0))
	assert.Equal(t, 15.0, dp.ExplicitBounds().At(15))
	assert.Equal(t, uint64(1), dp.BucketCounts().At(1))
}

func TestHistogramDisabled(t *testing.T) {
	cfg := createDefaultConfig()
	cfg.Histogram.Disable = true
	c, sink, clk := newTestConnector(t, cfg)
	consume(t, c, spanSpec{service: "a", name: "op", durMs: 3})
	flushNow(t, c, clk, time.Minute)
	md := allMetrics(sink)
	ms := md.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics()
	require.Equal(t, 1, ms.Len())
	assert.Equal(t, "traces.span.metrics.calls", ms.At(0).Name())
}

func TestExponentialHistogram(t *testing.T) {
	cfg := createDefaultConfig()
	cfg.Histogram.Exponential = &ExponentialHistogramConfig{MaxSize: 10}
	c, sink, clk := newTestConnector(t, cfg)
	var specs []spanSpec
	for _, d := range []float64{0, 1, 2, 4, 8, 16, 1000, 3} {
		specs = append(specs, spanSpec{service: "a", name: "op", durMs: d})
	}
	consume(t, c, specs...)
	flushNow(t, c, clk, time.Minute)
	md := allMetrics(sink)
	assertGolden(t, "histogram_exponential", md)
	d := findMetric(t, md, "a", "traces.span.metrics.duration")
	require.Equal(t, pmetric.MetricTypeExponentialHistogram, d.Type())
	dp := d.ExponentialHistogram().DataPoints().At(0)
	assert.Equal(t, uint64(8), dp.Count())
	assert.Equal(t, uint64(1), dp.ZeroCount())
	assert.LessOrEqual(t, dp.Positive().BucketCounts().Len(), 10)
	var total uint64
	for _, n := range dp.Positive().BucketCounts().AsRaw() {
		total += n
	}
	assert.Equal(t, uint64(7), total)
	// Every value must sit in the bucket the scale and offset say.
	base := func(i int32) float64 { return exp2(float64(i) / exp2(float64(dp.Scale()))) }
	for _, v := range []float64{1, 2, 4, 8, 16, 1000, 3} {
		idx := expoIndex(v, dp.Scale())
		assert.Less(t, base(idx), v*1.0000001, "value %v above bucket %d's lower bound", v, idx)
		assert.GreaterOrEqual(t, base(idx+1)*1.0000001, v, "value %v within bucket %d's upper bound", v, idx)
		j := idx - dp.Positive().Offset()
		require.True(t, j >= 0 && int(j) < dp.Positive().BucketCounts().Len())
		assert.NotZero(t, dp.Positive().BucketCounts().At(int(j)))
	}
}

func TestExpoIndexBoundaries(t *testing.T) {
	// Powers of two sit at the inclusive upper bound of the bucket below.
	for _, scale := range []int32{-2, 0, 3, 20} {
		for _, v := range []float64{0.25, 1, 2, 1024} {
			idx := expoIndex(v, scale)
			assert.Less(t, exp2(float64(idx)/exp2(float64(scale))), v, "scale %d v %v", scale, v)
			assert.GreaterOrEqual(t, exp2(float64(idx+1)/exp2(float64(scale))), v*(1-1e-12), "scale %d v %v", scale, v)
		}
	}
	assert.Equal(t, int32(-1), expoIndex(1, 0))
	assert.Equal(t, int32(0), expoIndex(2, 0))
	assert.Equal(t, int32(1), expoIndex(3, 0))
}

func TestExemplars(t *testing.T) {
	cfg := createDefaultConfig()
	cfg.Exemplars = ExemplarsConfig{Enabled: true, MaxPerDataPoint: 2}
	c, sink, clk := newTestConnector(t, cfg)
	consume(t, c,
		spanSpec{service: "a", name: "op", durMs: 1, traceID: 1},
		spanSpec{service: "a", name: "op", durMs: 2, traceID: 2},
		spanSpec{service: "a", name: "op", durMs: 3, traceID: 3},
		spanSpec{service: "a", name: "op", durMs: 4}, // no trace ID: no exemplar
	)
	flushNow(t, c, clk, time.Minute)
	md := allMetrics(sink)
	assertGolden(t, "exemplars", md)
	h := findMetric(t, md, "a", "traces.span.metrics.duration").Histogram().DataPoints().At(0)
	require.Equal(t, 2, h.Exemplars().Len(), "at most max_per_data_point, the most recent")
	vals := []float64{h.Exemplars().At(0).DoubleValue(), h.Exemplars().At(1).DoubleValue()}
	assert.ElementsMatch(t, []float64{2, 3}, vals)
	assert.Equal(t, 2, findMetric(t, md, "a", "traces.span.metrics.calls").Sum().DataPoints().At(0).Exemplars().Len())

	// Cleared at each flush.
	sink.Reset()
	flushNow(t, c, clk, time.Minute)
	h = findMetric(t, allMetrics(sink), "a", "traces.span.metrics.duration").Histogram().DataPoints().At(0)
	assert.Equal(t, 0, h.Exemplars().Len())
	assert.Equal(t, uint64(4), h.Count())
}

func TestEvents(t *testing.T) {
	cfg := createDefaultConfig()
	cfg.Dimensions = []Dimension{{Name: "http.method"}}
	cfg.Events = EventsConfig{Enabled: true, Dimensions: []Dimension{{Name: "exception.type"}}}
	c, sink, clk := newTestConnector(t, cfg)
	consume(t, c,
		spanSpec{service: "a", name: "op", status: ptrace.StatusCodeError, durMs: 1, attrs: map[string]any{"http.method": "GET"},
			events: []map[string]any{{"exception.type": "IOError"}, {"exception.type": "IOError"}, {"exception.type": "Timeout"}}},
		spanSpec{service: "a", name: "op", durMs: 1, attrs: map[string]any{"http.method": "GET"}, events: []map[string]any{{}}},
	)
	flushNow(t, c, clk, time.Minute)
	md := allMetrics(sink)
	assertGolden(t, "events", md)
	ev := findMetric(t, md, "a", "traces.span.metrics.events")
	assert.True(t, ev.Sum().IsMonotonic())
	got := map[string]int64{}
	for _, p := range sumPoints(ev) {
		typ, ok := p.Attributes().Get("exception.type")
		k := "<absent>"
		if ok {
			k = typ.Str()
		}
		m, _ := p.Attributes().Get("http.method")
		assert.Equal(t, "GET", m.Str())
		got[k] = p.IntValue()
	}
	assert.Equal(t, map[string]int64{"IOError": 2, "Timeout": 1, "<absent>": 1}, got)
}

func TestAdjustedCounts(t *testing.T) {
	c, sink, clk := newTestConnector(t, createDefaultConfig())
	consume(t, c,
		spanSpec{service: "a", name: "quarter", durMs: 3, traceState: "ot=th:c"},              // kept with p=1/4: counts 4
		spanSpec{service: "a", name: "half", durMs: 3, traceState: "vendor=x,ot=rv:abc;th:8"}, // p=1/2: counts 2
		spanSpec{service: "a", name: "all", durMs: 3, traceState: "ot=th:0"},                  // p=1: counts 1
		spanSpec{service: "a", name: "bad", durMs: 3, traceState: "ot=th:XYZ"},                // malformed: counts 1
		spanSpec{service: "a", name: "none", durMs: 3},
	)
	flushNow(t, c, clk, time.Minute)
	md := allMetrics(sink)
	assertGolden(t, "adjusted_counts", md)
	want := map[string]int64{"quarter": 4, "half": 2, "all": 1, "bad": 1, "none": 1}
	for _, p := range sumPoints(findMetric(t, md, "a", "traces.span.metrics.calls")) {
		n, _ := p.Attributes().Get("span.name")
		assert.Equal(t, want[n.Str()], p.IntValue(), n.Str())
	}
	h := findMetric(t, md, "a", "traces.span.metrics.duration").Histogram()
	for i := 0; i < h.DataPoints().Len(); i++ {
		p := h.DataPoints().At(i)
		n, _ := p.Attributes().Get("span.name")
		assert.Equal(t, uint64(want[n.Str()]), p.Count(), n.Str())
		assert.Equal(t, uint64(want[n.Str()]), p.BucketCounts().At(1))
		assert.InDelta(t, 3*float64(want[n.Str()]), p.Sum(), 1e-9)
	}
}

func TestThresholdWeight(t *testing.T) {
	for _, tc := range []struct {
		ts   string
		want float64
	}{
		{"ot=th:8", 2},
		{"ot=th:c", 4},
		{"ot=th:fc", 64},
		{"ot=th:0", 1},
		{"ot=th:", 1},
		{"ot=th:123456789abcdef0", 1}, // 16 digits: too long
		{"ot=rv:00000000000001", 1},
		{" foo=bar , ot=th:e ", 8},
		{"ot=th:C", 1},
		{"other=th:8", 1},
	} {
		assert.InDelta(t, tc.want, thresholdWeight(tc.ts), 1e-9, tc.ts)
	}
	// A non power-of-two probability rounds stochastically but stays unbiased.
	var total uint64
	for i := 0; i < 10000; i++ {
		total += adjustedCount("ot=th:5", [8]byte{byte(i), byte(i >> 8), byte(i * 7), 3, 4, 5, 6, 7})
	}
	assert.InDelta(t, 16.0/11.0, float64(total)/10000, 0.05)
}

func TestCardinalityLimitOverflow(t *testing.T) {
	cfg := createDefaultConfig()
	cfg.CardinalityLimit = 10
	cfg.Dimensions = []Dimension{{Name: "user.id"}}
	c, sink, clk := newTestConnector(t, cfg)
	var specs []spanSpec
	for i := 0; i < 1000; i++ {
		specs = append(specs, spanSpec{service: fmt.Sprintf("svc-%d", i%3), name: "op", durMs: 1, attrs: map[string]any{"user.id": fmt.Sprint(i)}})
	}
	consume(t, c, specs...)
	assert.Equal(t, int64(10), c.live.Load())
	flushNow(t, c, clk, time.Minute)
	md := allMetrics(sink)
	var regular, overflow int64
	var overflowPoints int
	for i := 0; i < md.ResourceMetrics().Len(); i++ {
		rm := md.ResourceMetrics().At(i)
		ms := rm.ScopeMetrics().At(0).Metrics()
		for j := 0; j < ms.Len(); j++ {
			m := ms.At(j)
			if m.Name() != "traces.span.metrics.calls" {
				continue
			}
			for _, p := range sumPoints(m) {
				if v, ok := p.Attributes().Get(overflowKey); ok {
					assert.True(t, v.Bool())
					assert.Equal(t, map[string]any{overflowKey: true, "collector.instance.id": testInstanceID}, p.Attributes().AsRaw())
					assert.Equal(t, 0, rm.Resource().Attributes().Len())
					overflow += p.IntValue()
					overflowPoints++
				} else {
					regular += p.IntValue()
				}
			}
		}
	}
	assert.Equal(t, int64(10), regular)
	assert.Equal(t, int64(990), overflow, "nothing is lost: the overflow series counts the rest")
	assert.Equal(t, 1, overflowPoints, "one overflow series per metric")
	// A bounded number of resources survive the sweep.
	assert.LessOrEqual(t, c.res.len(), 3)
}

func TestCardinalityFloodStaysBounded(t *testing.T) {
	cfg := createDefaultConfig()
	cfg.CardinalityLimit = 100
	c, _, clk := newTestConnector(t, cfg)
	for b := 0; b < 50; b++ {
		td := ptrace.NewTraces()
		for r := 0; r < 20; r++ {
			rs := td.ResourceSpans().AppendEmpty()
			// Unique resources too, so the resource table must stay bounded.
			rs.Resource().Attributes().PutStr("service.name", fmt.Sprintf("svc-%d-%d", b, r))
			ss := rs.ScopeSpans().AppendEmpty()
			for s := 0; s < 50; s++ {
				ss.Spans().AppendEmpty().SetName(fmt.Sprintf("op-%d-%d-%d", b, r, s))
			}
		}
		require.NoError(t, c.ConsumeTraces(context.Background(), td))
		require.LessOrEqual(t, c.live.Load(), int64(100))
		flushNow(t, c, clk, time.Second)
		require.LessOrEqual(t, c.res.len(), 100, "resources are bounded by live series")
	}
	n := 0
	for i := range c.shards {
		n += c.shards[i].t.n
	}
	assert.LessOrEqual(t, n, 100)
}

func TestSeriesExpiration(t *testing.T) {
	cfg := createDefaultConfig()
	cfg.SeriesExpiration = 2 * time.Minute
	c, sink, clk := newTestConnector(t, cfg)
	consume(t, c, spanSpec{service: "a", name: "old", durMs: 1}, spanSpec{service: "a", name: "kept", durMs: 1})
	flushNow(t, c, clk, time.Minute)
	consume(t, c, spanSpec{service: "a", name: "kept", durMs: 1})
	flushNow(t, c, clk, time.Minute) // old: 2m idle -> expired
	assert.Equal(t, int64(1), c.live.Load())

	sink.Reset()
	consume(t, c, spanSpec{service: "a", name: "old", durMs: 1})
	flushNow(t, c, clk, time.Minute)
	for _, p := range sumPoints(findMetric(t, allMetrics(sink), "a", "traces.span.metrics.calls")) {
		n, _ := p.Attributes().Get("span.name")
		if n.Str() == "old" {
			assert.Equal(t, int64(1), p.IntValue(), "an expired series starts afresh")
			assert.Equal(t, t0.Add(2*time.Minute).UnixNano(), int64(p.StartTimestamp()), "with a new start time")
		} else {
			assert.Equal(t, int64(2), p.IntValue())
			assert.Equal(t, t0.UnixNano(), int64(p.StartTimestamp()))
		}
	}
	// Everything expires, resources too.
	flushNow(t, c, clk, 5*time.Minute)
	assert.Equal(t, int64(0), c.live.Load())
	assert.Equal(t, 0, c.res.len())
}

func TestContribAliases(t *testing.T) {
	cfg := createDefaultConfig()
	cfg.AggregationTemporality = "AGGREGATION_TEMPORALITY_DELTA"
	cfg.MetricsExpiration = time.Hour
	cfg.AggregationCardinalityLimit = 7
	require.NoError(t, cfg.Validate())
	assert.True(t, cfg.delta())
	assert.Equal(t, time.Hour, cfg.expiration())
	assert.Equal(t, 7, cfg.cardinalityLimit())
}

func TestNamespace(t *testing.T) {
	cfg := createDefaultConfig()
	cfg.Namespace = ""
	c, sink, clk := newTestConnector(t, cfg)
	consume(t, c, spanSpec{service: "a", name: "op", durMs: 1})
	flushNow(t, c, clk, time.Minute)
	md := allMetrics(sink)
	findMetric(t, md, "a", "calls")
	findMetric(t, md, "a", "duration")
}

func exp2(x float64) float64 { return math.Exp2(x) }
