package merge

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
)

var route = map[string]any{"span.name": "GET /cart"}

func TestTwoWritersInterleaved(t *testing.T) {
	tb := New(testConfig())
	now := t0.Add(time.Second)
	// Gateways a and b flush every 10s, 5s apart; their batches arrive
	// interleaved, each with its own start times.
	r := feed(t, tb, now,
		build(pt{writer: "a", attrs: route, start: 0, end: 10, v: 3}),
		build(pt{writer: "b", attrs: route, start: 5, end: 15, v: 4}),
		build(pt{writer: "a", attrs: route, start: 10, end: 20, v: 5}),
		build(pt{writer: "b", attrs: route, start: 15, end: 25, v: 6}),
		build(pt{writer: "a", attrs: route, start: 20, end: 30, v: 7}),
	)
	assert.Equal(t, Result{Merged: 5}, r)
	assert.Equal(t, 1, tb.Len())

	flushAt := t0.Add(time.Minute)
	got, fr := flush(t, tb, flushAt)
	require.Equal(t, 1, fr.Points)
	o := got["calls|span.name=GET /cart;"]
	assert.Equal(t, int64(25), o.intV)
	assert.False(t, o.isDouble)
	assert.Equal(t, pmetric.AggregationTemporalityCumulative, o.temporality)
	assert.True(t, o.monotonic)
	assert.Equal(t, pcommon.NewTimestampFromTime(now), o.start, "start: when the stream was first seen")
	assert.Equal(t, pcommon.NewTimestampFromTime(flushAt), o.ts, "timestamp: the flush time")
	assert.Equal(t, "service.name=checkout;", o.res, "the writer attribute is not in the output")

	// The next flush reports the same stream, same start, the new total.
	feed(t, tb, flushAt, build(pt{writer: "b", attrs: route, start: 25, end: 35, v: 10}))
	got, _ = flush(t, tb, flushAt.Add(time.Minute))
	o2 := got["calls|span.name=GET /cart;"]
	assert.Equal(t, int64(35), o2.intV)
	assert.Equal(t, o.start, o2.start)
}

func TestWriterRestart(t *testing.T) {
	tb := New(testConfig())
	r := feed(t, tb, t0,
		build(pt{writer: "a", attrs: route, start: 0, end: 10, v: 3}),
		build(pt{writer: "a", attrs: route, start: 10, end: 20, v: 5}),
		// a restarts (same identity, e.g. a pod name): its new process
		// starts counting at 42 — a new epoch of the same writer. Nothing
		// is reset; its earlier deltas stay counted.
		build(pt{writer: "a", attrs: route, start: 42, end: 50, v: 2}),
		build(pt{writer: "a", attrs: route, start: 50, end: 60, v: 1}),
		// A restart whose clock went backwards: windows overlap the old
		// ones but are not the same windows, so they are not duplicates.
		build(pt{writer: "a", attrs: route, start: 12, end: 22, v: 100}),
	)
	assert.Equal(t, int64(5), r.Merged)
	assert.Equal(t, int64(0), r.Duplicates)
	assert.Equal(t, int64(1), r.OutOfOrder, "the backwards window ends before a's latest")
	got, _ := flush(t, tb, t0.Add(time.Minute))
	assert.Equal(t, int64(111), got["calls|span.name=GET /cart;"].intV)
}

func TestRetryIsDroppedOnce(t *testing.T) {
	tb := New(testConfig())
	r := feed(t, tb, t0,
		build(pt{writer: "a", attrs: route, start: 0, end: 10, v: 3}),
		build(pt{writer: "a", attrs: route, start: 10, end: 20, v: 5}),
		// The exporter of a timed out but its batch had arrived: the retry
		// sends the same points again.
		build(pt{writer: "a", attrs: route, start: 0, end: 10, v: 3}),
		build(pt{writer: "a", attrs: route, start: 10, end: 20, v: 5}),
		build(pt{writer: "a", attrs: route, start: 10, end: 20, v: 5}),
		// The same window from another writer is that writer's delta.
		build(pt{writer: "b", attrs: route, start: 0, end: 10, v: 7}),
		// A window that only shares its start is not a duplicate.
		build(pt{writer: "a", attrs: route, start: 0, end: 20, v: 1}),
	)
	assert.Equal(t, int64(4), r.Merged)
	assert.Equal(t, int64(3), r.Duplicates)
	got, _ := flush(t, tb, t0.Add(time.Minute))
	assert.Equal(t, int64(16), got["calls|span.name=GET /cart;"].intV)
}

func TestOutOfOrderIsAdded(t *testing.T) {
	tb := New(testConfig())
	r := feed(t, tb, t0,
		build(pt{writer: "a", attrs: route, start: 20, end: 30, v: 3}),
		build(pt{writer: "a", attrs: route, start: 0, end: 10, v: 1}),  // late
		build(pt{writer: "a", attrs: route, start: 10, end: 20, v: 2}), // late
		build(pt{writer: "a", attrs: route, start: 0, end: 10, v: 1}),  // and re-sent: duplicate
		build(pt{writer: "a", attrs: route, start: 30, end: 40, v: 4}),
	)
	assert.Equal(t, Result{Merged: 4, OutOfOrder: 2, Duplicates: 1}, r)
	got, _ := flush(t, tb, t0.Add(time.Minute))
	assert.Equal(t, int64(10), got["calls|span.name=GET /cart;"].intV)
}

func TestDuplicateMemoryIsTheLastWindows(t *testing.T) {
	tb := New(testConfig())
	var total int64
	for i := range DedupWindows + 1 {
		feed(t, tb, t0, build(pt{writer: "a", attrs: route, start: 10 * i, end: 10 * (i + 1), v: 1}))
		total++
	}
	// The last DedupWindows windows are remembered ...
	r := feed(t, tb, t0, build(pt{writer: "a", attrs: route, start: 10, end: 20, v: 1}))
	assert.Equal(t, int64(1), r.Duplicates)
	// ... the one before them is not: re-sent now, it is counted again.
	r = feed(t, tb, t0, build(pt{writer: "a", attrs: route, start: 0, end: 10, v: 1}))
	assert.Equal(t, int64(0), r.Duplicates)
	assert.Equal(t, int64(1), r.Merged)
	got, _ := flush(t, tb, t0.Add(time.Minute))
	assert.Equal(t, total+1, got["calls|span.name=GET /cart;"].intV)
}

func TestWriterAttributeOnPointOrResource(t *testing.T) {
	tb := New(testConfig())
	r := feed(t, tb, t0,
		build(pt{writer: "a", attrs: route, start: 0, end: 10, v: 1}),
		build(pt{writer: "b", onResource: true, attrs: route, start: 0, end: 10, v: 2}),
		// b on the resource again, same window: b's retry.
		build(pt{writer: "b", onResource: true, attrs: route, start: 0, end: 10, v: 2}),
	)
	assert.Equal(t, int64(2), r.Merged)
	assert.Equal(t, int64(1), r.Duplicates)

	// On both: the point's value wins.
	md := build(pt{writer: "c", attrs: route, start: 0, end: 10, v: 4})
	md.ResourceMetrics().At(0).Resource().Attributes().PutStr(writerKey, "a")
	r = tb.Consume(md, t0)
	assert.Equal(t, int64(1), r.Merged, "c's point, not a duplicate of a's")

	// Without the attribute: one anonymous writer.
	r = feed(t, tb, t0,
		build(pt{attrs: route, start: 0, end: 10, v: 8}),
		build(pt{attrs: route, start: 0, end: 10, v: 8}),
	)
	assert.Equal(t, Result{Merged: 1, Duplicates: 1}, r)

	got, _ := flush(t, tb, t0.Add(time.Minute))
	require.Len(t, got, 1)
	o := got["calls|span.name=GET /cart;"]
	assert.Equal(t, int64(15), o.intV)
	assert.Equal(t, "service.name=checkout;", o.res)
}

func TestStreamIdentity(t *testing.T) {
	tb := New(testConfig())
	two := map[string]any{"span.name": "GET /cart", "span.kind": "SPAN_KIND_SERVER"}
	swapped := pcommon.NewMap()
	swapped.PutStr("span.kind", "SPAN_KIND_SERVER")
	swapped.PutStr(writerKey, "b")
	swapped.PutStr("span.name", "GET /cart")
	md := build(pt{writer: "a", attrs: two, start: 0, end: 10, v: 1})
	md2 := build(pt{start: 0, end: 10, v: 2})
	swapped.CopyTo(md2.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().At(0).Sum().DataPoints().At(0).Attributes())
	feed(t, tb, t0, md, md2)
	assert.Equal(t, 1, tb.Len(), "attribute order and the writer attribute's position do not matter")

	// Each of these differs in one part of the identity.
	feed(t, tb, t0,
		build(pt{writer: "a", res: map[string]any{"service.name": "cart"}, attrs: two, start: 0, end: 10, v: 1}),
		build(pt{writer: "a", scope: "other", attrs: two, start: 0, end: 10, v: 1}),
		build(pt{writer: "a", metric: "errors", attrs: two, start: 0, end: 10, v: 1}),
		build(pt{writer: "a", nonMono: true, attrs: two, start: 0, end: 10, v: 1}),
		build(pt{writer: "a", attrs: map[string]any{"span.name": "GET /cart", "span.kind": "SPAN_KIND_CLIENT"}, start: 0, end: 10, v: 1}),
		build(pt{writer: "a", attrs: map[string]any{"span.name": "GET /cart", "span.kind": "SPAN_KIND_SERVER", "x": int64(0)}, start: 0, end: 10, v: 1}),
		build(pt{writer: "a", attrs: map[string]any{"span.name": "GET /cart", "span.kind": "SPAN_KIND_SERVER", "x": "0"}, start: 0, end: 10, v: 1}),
		build(pt{writer: "a", attrs: map[string]any{"span.name": "GET /cart", "span.kind": "SPAN_KIND_SERVER", "x": false}, start: 0, end: 10, v: 1}),
		build(pt{writer: "a", attrs: map[string]any{"span.name": "GET /cart", "span.kind": "SPAN_KIND_SERVER", "x": ""}, start: 0, end: 10, v: 1}),
	)
	assert.Equal(t, 10, tb.Len())

	// Unit is part of it too.
	md = build(pt{writer: "a", attrs: two, start: 0, end: 10, v: 1})
	md.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().At(0).SetUnit("ms")
	feed(t, tb, t0, md)
	assert.Equal(t, 11, tb.Len())
}

func TestHashCollisionsKeepStreamsApart(t *testing.T) {
	tb := New(testConfig())
	tb.testHash = func(uint64) uint64 { return 42 } // every stream on one chain
	for i := range 5 {
		feed(t, tb, t0, build(pt{writer: "a", attrs: map[string]any{"i": int64(i)}, start: 0, end: 10, v: int64(i + 1)}))
		feed(t, tb, t0, build(pt{writer: "a", attrs: map[string]any{"i": int64(i)}, start: 10, end: 20, v: int64(i + 1)}))
	}
	assert.Equal(t, 5, tb.Len())
	got, _ := flush(t, tb, t0.Add(time.Minute))
	for i := range 5 {
		assert.Equal(t, int64(2*(i+1)), got[fmt.Sprintf("calls|i=%d;", i)].intV)
	}
	// Expire them out of the middle of the chain, one by one.
	feed(t, tb, t0.Add(4*time.Minute), build(pt{writer: "a", attrs: map[string]any{"i": int64(2)}, start: 20, end: 30, v: 1}))
	_, fr := flush(t, tb, t0.Add(6*time.Minute))
	assert.Equal(t, int64(4), fr.Expired)
	got, _ = flush(t, tb, t0.Add(7*time.Minute))
	assert.Equal(t, int64(7), got["calls|i=2;"].intV)
}

func TestPassThrough(t *testing.T) {
	tb := New(testConfig())
	md := pmetric.NewMetrics()
	build(
		pt{writer: "a", kind: "gauge", metric: "queue.size", v: 3, end: 10},
		pt{writer: "a", kind: "summary", metric: "latency", v: 3, end: 10},
		pt{writer: "a", kind: "cumsum", metric: "bytes", v: 3, end: 10},
		pt{writer: "a", metric: "calls", v: 3, start: 0, end: 10},
	).ResourceMetrics().MoveAndAppendTo(md.ResourceMetrics())
	// A scope with a delta and a gauge: the gauge stays, in its scope.
	mixed := build(pt{writer: "a", metric: "calls", v: 1, start: 10, end: 20})
	g := mixed.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().AppendEmpty()
	g.SetName("g")
	g.SetEmptyGauge().DataPoints().AppendEmpty().SetIntValue(1)
	mixed.ResourceMetrics().MoveAndAppendTo(md.ResourceMetrics())
	// An empty resource that was empty before stays.
	md.ResourceMetrics().AppendEmpty()

	before := md.DataPointCount()
	r := tb.Consume(md, t0)
	assert.Equal(t, int64(2), r.Merged)
	assert.Equal(t, before-2, md.DataPointCount())
	var names []string
	for _, rm := range md.ResourceMetrics().All() {
		for _, sm := range rm.ScopeMetrics().All() {
			for _, m := range sm.Metrics().All() {
				names = append(names, m.Name())
			}
		}
	}
	assert.Equal(t, []string{"queue.size", "latency", "bytes", "g"}, names)
	assert.Equal(t, 5, md.ResourceMetrics().Len(), "the delta-only resource is gone, the rest stay")
	// The cumulative sum went through untouched, writer attribute included.
	cum := md.ResourceMetrics().At(2).ScopeMetrics().At(0).Metrics().At(0).Sum().DataPoints().At(0)
	w, ok := cum.Attributes().Get(writerKey)
	require.True(t, ok)
	assert.Equal(t, "a", w.Str())
}

func TestSumIntThenDouble(t *testing.T) {
	tb := New(testConfig())
	feed(t, tb, t0,
		build(pt{writer: "a", start: 0, end: 10, v: 3}),
		build(pt{writer: "b", start: 0, end: 10, f: 0.5}),
		build(pt{writer: "a", start: 10, end: 20, v: 2}),
		build(pt{writer: "a", start: 20, end: 30, v: 9, noRecording: true}), // no value: skipped
	)
	got, _ := flush(t, tb, t0.Add(time.Minute))
	o := got["calls|"]
	assert.True(t, o.isDouble)
	assert.InDelta(t, 5.5, o.dblV, 1e-12)
}

func TestNonMonotonicSum(t *testing.T) {
	tb := New(testConfig())
	feed(t, tb, t0,
		build(pt{writer: "a", nonMono: true, start: 0, end: 10, v: 5}),
		build(pt{writer: "b", nonMono: true, start: 3, end: 13, v: -7}),
	)
	got, _ := flush(t, tb, t0.Add(time.Minute))
	o := got["calls|"]
	assert.False(t, o.monotonic)
	assert.Equal(t, int64(-2), o.intV)
}

func TestHistogramMerge(t *testing.T) {
	tb := New(testConfig())
	bounds := []float64{1, 5, 10}
	r := feed(t, tb, t0,
		build(pt{writer: "a", kind: "hist", start: 0, end: 10, bounds: bounds, counts: []uint64{1, 2, 3, 4}, sum: 50, min: 0.5, max: 20}),
		build(pt{writer: "b", kind: "hist", start: 4, end: 14, bounds: bounds, counts: []uint64{0, 1, 0, 1}, sum: 13, min: 2, max: 11}),
		build(pt{writer: "a", kind: "hist", start: 10, end: 20, bounds: bounds, counts: []uint64{2, 0, 0, 0}, sum: 0.4, min: 0.1, max: 0.3}),
		// An empty delta (no values, no sum, no min) changes nothing.
		build(pt{writer: "b", kind: "hist", start: 14, end: 24, bounds: bounds, counts: []uint64{0, 0, 0, 0}, noSum: true, noMinMax: true}),
	)
	assert.Equal(t, int64(4), r.Merged)
	got, _ := flush(t, tb, t0.Add(time.Minute))
	h := got["calls|"].hist
	assert.Equal(t, []float64{1, 5, 10}, h.ExplicitBounds().AsRaw())
	assert.Equal(t, []uint64{3, 3, 3, 5}, h.BucketCounts().AsRaw())
	assert.Equal(t, uint64(14), h.Count())
	assert.InDelta(t, 63.4, h.Sum(), 1e-9)
	assert.Equal(t, 0.1, h.Min())
	assert.Equal(t, 20.0, h.Max())

	// A point with values but no min/max: the merged min/max are unknown.
	feed(t, tb, t0, build(pt{writer: "b", kind: "hist", start: 24, end: 34, bounds: bounds, counts: []uint64{1, 0, 0, 0}, sum: 0.2, noMinMax: true}))
	got, _ = flush(t, tb, t0.Add(time.Minute))
	h = got["calls|"].hist
	assert.True(t, h.HasSum())
	assert.False(t, h.HasMin())
	assert.False(t, h.HasMax())
	assert.Equal(t, uint64(15), h.Count())
}

func TestHistogramBoundsMismatchIsDropped(t *testing.T) {
	tb := New(testConfig())
	r := feed(t, tb, t0,
		build(pt{writer: "a", kind: "hist", start: 0, end: 10, bounds: []float64{1, 5, 10}, counts: []uint64{1, 1, 1, 1}, sum: 20}),
		// b runs a newer config with other buckets: the point cannot be
		// added bucket by bucket to the stream's, so it is dropped and
		// counted (its window is not remembered: it is not a duplicate).
		build(pt{writer: "b", kind: "hist", start: 0, end: 10, bounds: []float64{1, 2, 5, 10}, counts: []uint64{1, 1, 1, 1, 1}, sum: 20}),
		build(pt{writer: "b", kind: "hist", start: 10, end: 20, bounds: []float64{1, 5}, counts: []uint64{1, 1, 1}, sum: 20}),
		// Malformed: bucket counts must be one more than bounds.
		build(pt{writer: "a", kind: "hist", start: 10, end: 20, bounds: []float64{1, 5, 10}, counts: []uint64{1, 1}, sum: 2}),
		build(pt{writer: "a", kind: "hist", start: 20, end: 30, bounds: []float64{1, 5, 10}, counts: []uint64{0, 0, 0, 2}, sum: 40}),
	)
	assert.Equal(t, Result{Merged: 2, DroppedBoundsMismatch: 2, DroppedInvalid: 1}, r)
	got, _ := flush(t, tb, t0.Add(time.Minute))
	h := got["calls|"].hist
	assert.Equal(t, []uint64{1, 1, 1, 3}, h.BucketCounts().AsRaw())
	assert.Equal(t, uint64(6), h.Count())

	// Once the old writers stop, the stream expires (dropped points do not
	// keep it alive), and the new bounds start a new stream from zero.
	feed(t, tb, t0.Add(4*time.Minute), build(pt{writer: "b", kind: "hist", start: 20, end: 30, bounds: []float64{1, 5}, counts: []uint64{1, 1, 1}, sum: 20}))
	_, fr := flush(t, tb, t0.Add(6*time.Minute))
	assert.Equal(t, int64(1), fr.Expired)
	feed(t, tb, t0.Add(6*time.Minute), build(pt{writer: "b", kind: "hist", start: 30, end: 40, bounds: []float64{1, 5}, counts: []uint64{1, 1, 1}, sum: 20}))
	got, _ = flush(t, tb, t0.Add(7*time.Minute))
	h = got["calls|"].hist
	assert.Equal(t, []float64{1, 5}, h.ExplicitBounds().AsRaw())
	assert.Equal(t, []uint64{1, 1, 1}, h.BucketCounts().AsRaw())
	assert.Equal(t, pcommon.NewTimestampFromTime(t0.Add(6*time.Minute)), got["calls|"].start)
}

func TestHistogramWithoutBuckets(t *testing.T) {
	tb := New(testConfig())
	r := feed(t, tb, t0,
		build(pt{writer: "a", kind: "hist", start: 0, end: 10, n: 2, sum: 3, noMinMax: true}),
		build(pt{writer: "b", kind: "hist", start: 0, end: 10, n: 1, sum: 4, noMinMax: true}),
	)
	assert.Equal(t, int64(2), r.Merged)
	got, _ := flush(t, tb, t0.Add(time.Minute))
	assert.InDelta(t, 7.0, got["calls|"].hist.Sum(), 1e-12)
	assert.Equal(t, 0, got["calls|"].hist.BucketCounts().Len())
	assert.Equal(t, uint64(3), got["calls|"].hist.Count())
}

// expoCounts returns the bucket counts of one sign keyed by bucket index.
func expoCounts(b pmetric.ExponentialHistogramDataPointBuckets) map[int32]uint64 {
	m := map[int32]uint64{}
	for i, c := range b.BucketCounts().All() {
		if c != 0 {
			m[b.Offset()+int32(i)] += c
		}
	}
	return m
}

func TestExponentialDownscale(t *testing.T) {
	tb := New(testConfig())
	r := feed(t, tb, t0,
		// a at scale 2: buckets 4..7 (values in (2, 4]).
		build(pt{writer: "a", kind: "expo", start: 0, end: 10, scale: 2, posOff: 4, pos: []uint64{1, 2, 3, 4}, negOff: -1, neg: []uint64{5}, zeroCount: 1, sum: 30}),
		// b at scale 1: buckets 2..3 at scale 1 are buckets 4..7 at scale 2.
		build(pt{writer: "b", kind: "expo", start: 0, end: 10, scale: 1, posOff: 2, pos: []uint64{10, 20}, zeroCount: 2, sum: 90}),
	)
	assert.Equal(t, int64(2), r.Merged)
	got, _ := flush(t, tb, t0.Add(time.Minute))
	e := got["calls|"].expo
	assert.Equal(t, int32(1), e.Scale(), "the common scale is the smaller one")
	// a's 4,5 -> 2 and 6,7 -> 3; plus b's.
	assert.Equal(t, map[int32]uint64{2: 13, 3: 27}, expoCounts(e.Positive()))
	assert.Equal(t, map[int32]uint64{-1: 5}, expoCounts(e.Negative()), "-1 >> 1 is -1")
	assert.Equal(t, uint64(3), e.ZeroCount())
	assert.Equal(t, uint64(48), e.Count())
	assert.InDelta(t, 120.0, e.Sum(), 1e-12)

	// A later point at the higher scale is downscaled into the stream.
	feed(t, tb, t0, build(pt{writer: "a", kind: "expo", start: 10, end: 20, scale: 2, posOff: 7, pos: []uint64{1, 1}}))
	got, _ = flush(t, tb, t0.Add(time.Minute))
	e = got["calls|"].expo
	assert.Equal(t, int32(1), e.Scale())
	assert.Equal(t, map[int32]uint64{2: 13, 3: 28, 4: 1}, expoCounts(e.Positive()))
}

func TestExponentialRangeLimit(t *testing.T) {
	cfg := testConfig()
	cfg.MaxExpoBuckets = 4
	tb := New(cfg)
	feed(t, tb, t0,
		build(pt{writer: "a", kind: "expo", start: 0, end: 10, scale: 3, posOff: 0, pos: []uint64{1}}),
		// Index 16 at scale 3: the union 0..16 needs 17 buckets; at scale
		// 1 (0..4) it needs 5, at scale 0 (0..2) 3.
		build(pt{writer: "b", kind: "expo", start: 0, end: 10, scale: 3, posOff: 16, pos: []uint64{2}}),
	)
	got, _ := flush(t, tb, t0.Add(time.Minute))
	e := got["calls|"].expo
	assert.Equal(t, int32(0), e.Scale())
	assert.Equal(t, map[int32]uint64{0: 1, 2: 2}, expoCounts(e.Positive()))
	assert.LessOrEqual(t, e.Positive().BucketCounts().Len(), 4)
	assert.Equal(t, uint64(3), e.Count())
}

func TestExponentialZeroThreshold(t *testing.T) {
	tb := New(testConfig())
	feed(t, tb, t0,
		// Scale 0: bucket i holds (2^i, 2^(i+1)]. Buckets -2..1: (1/4, 4].
		build(pt{writer: "a", kind: "expo", start: 0, end: 10, scale: 0, posOff: -2, pos: []uint64{1, 2, 3, 4}, negOff: -2, neg: []uint64{5, 6}, zeroCount: 1}),
		// b has a zero threshold of 1: everything in [-1, 1] is zero.
		build(pt{writer: "b", kind: "expo", start: 0, end: 10, scale: 0, zeroThr: 1, posOff: 0, pos: []uint64{7}, zeroCount: 8}),
	)
	got, _ := flush(t, tb, t0.Add(time.Minute))
	e := got["calls|"].expo
	assert.Equal(t, 1.0, e.ZeroThreshold(), "the larger threshold, on a bucket boundary")
	// a's buckets -2 and -1 ((1/4, 1]) moved into zero, on both signs.
	assert.Equal(t, uint64(1+1+2+5+6+8), e.ZeroCount())
	assert.Equal(t, map[int32]uint64{0: 3 + 7, 1: 4}, expoCounts(e.Positive()))
	assert.Empty(t, expoCounts(e.Negative()))
	assert.Equal(t, e.Count(), e.ZeroCount()+14)

	// A threshold that is not a boundary is rounded up to one, once.
	feed(t, tb, t0, build(pt{writer: "a", kind: "expo", start: 10, end: 20, scale: 0, zeroThr: 1.5, posOff: 0, pos: []uint64{1, 1}}))
	got, _ = flush(t, tb, t0.Add(time.Minute))
	e = got["calls|"].expo
	assert.Equal(t, 2.0, e.ZeroThreshold())
	assert.Equal(t, map[int32]uint64{1: 5}, expoCounts(e.Positive()))
	feed(t, tb, t0, build(pt{writer: "a", kind: "expo", start: 20, end: 30, scale: 0, zeroThr: 1.5, posOff: 1, pos: []uint64{1}}))
	got, _ = flush(t, tb, t0.Add(time.Minute))
	assert.Equal(t, 2.0, got["calls|"].expo.ZeroThreshold())
	assert.Equal(t, map[int32]uint64{1: 6}, expoCounts(got["calls|"].expo.Positive()))
}

func TestExponentialInvalid(t *testing.T) {
	tb := New(testConfig())
	r := feed(t, tb, t0,
		build(pt{writer: "a", kind: "expo", start: 0, end: 10, scale: 21, pos: []uint64{1}}),
		build(pt{writer: "a", kind: "expo", start: 0, end: 10, scale: -11, pos: []uint64{1}}),
		build(pt{writer: "a", kind: "expo", start: 0, end: 10, scale: 0, zeroThr: -1, pos: []uint64{1}}),
		build(pt{writer: "a", kind: "expo", start: 0, end: 10, scale: 0, posOff: 2147483647, pos: []uint64{1, 1}}),
	)
	assert.Equal(t, Result{DroppedInvalid: 4}, r)
	assert.Equal(t, 0, tb.Len())
}

func TestBucketIndex(t *testing.T) {
	for _, scale := range []int32{-10, -3, -1, 0, 1, 3, 8, 20} {
		for _, v := range []float64{1e-300, 0.001, 0.25, 0.3, 1, 1.5, 2, 3, 1024, 1e300} {
			i := bucketIndex(v, scale)
			lo, up := bucketUpper(i-1, scale), bucketUpper(i, scale)
			// Bucket i holds (lo, up]; allow the last ulp of float error
			// on the log path.
			assert.True(t, v > lo*(1-1e-12) && v <= up*(1+1e-12), "scale %d v %g: index %d covers (%g, %g]", scale, v, i, lo, up)
			z := zeroIndex(v, scale)
			assert.GreaterOrEqual(t, bucketUpper(z, scale), v)
			assert.Less(t, bucketUpper(z-1, scale), v)
			assert.Equal(t, z, zeroIndex(bucketUpper(z, scale), scale), "a boundary maps to itself")
		}
	}
}

func TestOverflow(t *testing.T) {
	cfg := testConfig()
	cfg.MaxStreams = 2
	tb := New(cfg)
	r := feed(t, tb, t0,
		build(pt{writer: "a", attrs: map[string]any{"i": int64(0)}, start: 0, end: 10, v: 1}),
		build(pt{writer: "a", attrs: map[string]any{"i": int64(1)}, start: 0, end: 10, v: 1}),
		// Past max_streams: into the metric's overflow stream. Windows of
		// different streams coincide there, and are all counted.
		build(pt{writer: "a", attrs: map[string]any{"i": int64(2)}, start: 0, end: 10, v: 5}),
		build(pt{writer: "a", attrs: map[string]any{"i": int64(3)}, start: 0, end: 10, v: 6}),
		build(pt{writer: "a", metric: "errors", attrs: map[string]any{"i": int64(3)}, start: 0, end: 10, v: 7}),
		// Existing streams keep updating.
		build(pt{writer: "a", attrs: map[string]any{"i": int64(0)}, start: 10, end: 20, v: 1}),
	)
	assert.Equal(t, Result{Merged: 6, Overflowed: 3}, r)
	assert.Equal(t, 4, tb.Len(), "2 streams and 2 overflow streams (one per metric)")
	got, _ := flush(t, tb, t0.Add(time.Minute))
	assert.Equal(t, int64(2), got["calls|i=0;"].intV)
	assert.Equal(t, int64(11), got["calls|otel.metric.overflow=true;"].intV)
	assert.Equal(t, "", got["calls|otel.metric.overflow=true;"].res, "overflow streams have a resource without attributes")
	assert.Equal(t, int64(7), got["errors|otel.metric.overflow=true;"].intV)

	// Overflow streams are bounded by max_streams as well: a third metric
	// has no room at all, and its points are dropped and counted.
	r = feed(t, tb, t0,
		build(pt{writer: "a", metric: "m3", start: 0, end: 10, v: 1}),
		build(pt{writer: "a", metric: "m3", start: 10, end: 20, v: 1}),
	)
	assert.Equal(t, Result{DroppedOverflowFull: 2}, r)
	assert.Equal(t, 4, tb.Len())
	// calls (regular), calls and errors (overflow): nothing is left behind
	// for the points that went nowhere, nor for errors' own resource.
	assert.Len(t, tb.metrics, 3)

	// Expiry makes room: a new stream is a stream again.
	feed(t, tb, t0.Add(4*time.Minute), build(pt{writer: "a", attrs: map[string]any{"i": int64(1)}, start: 10, end: 20, v: 1}))
	_, fr := flush(t, tb, t0.Add(6*time.Minute))
	assert.Equal(t, int64(3), fr.Expired)
	feed(t, tb, t0.Add(6*time.Minute), build(pt{writer: "a", attrs: map[string]any{"i": int64(2)}, start: 10, end: 20, v: 1}))
	got, _ = flush(t, tb, t0.Add(6*time.Minute))
	assert.Equal(t, int64(1), got["calls|i=2;"].intV)
	assert.Len(t, got, 2)
}

func TestUpstreamOverflowStreamIsShared(t *testing.T) {
	cfg := testConfig()
	cfg.MaxStreams = 2
	tb := New(cfg)
	ovf := map[string]any{OverflowAttribute: true}
	feed(t, tb, t0,
		// Upstream's own overflow series, under a resource without attributes.
		build(pt{writer: "a", res: map[string]any{}, attrs: ovf, start: 0, end: 10, v: 10}),
		build(pt{writer: "a", attrs: map[string]any{"i": int64(0)}, start: 0, end: 10, v: 1}),
		build(pt{writer: "a", attrs: map[string]any{"i": int64(1)}, start: 0, end: 10, v: 2}),
		build(pt{writer: "a", res: map[string]any{}, attrs: ovf, start: 10, end: 20, v: 10}),
	)
	assert.Equal(t, 2, tb.Len())
	got, _ := flush(t, tb, t0.Add(time.Minute))
	assert.Equal(t, int64(22), got["calls|otel.metric.overflow=true;"].intV, "one series, not two with the same identity")
}

func TestExpiry(t *testing.T) {
	tb := New(testConfig()) // expiration 5m
	feed(t, tb, t0,
		build(pt{writer: "a", attrs: map[string]any{"i": "old"}, start: 0, end: 10, v: 1}),
		build(pt{writer: "a", attrs: map[string]any{"i": "live"}, start: 0, end: 10, v: 1}),
	)
	// Emitted at every flush while alive, also without new points.
	for m := 1; m <= 5; m++ {
		got, fr := flush(t, tb, t0.Add(time.Duration(m)*time.Minute))
		assert.Equal(t, 2, fr.Points)
		assert.Equal(t, int64(0), fr.Expired)
		assert.Equal(t, int64(1), got["calls|i=old;"].intV)
	}
	r := feed(t, tb, t0.Add(5*time.Minute), build(pt{writer: "a", attrs: map[string]any{"i": "live"}, start: 10, end: 20, v: 1}))
	assert.Equal(t, int64(1), r.Merged)
	got, fr := flush(t, tb, t0.Add(5*time.Minute+time.Second))
	assert.Equal(t, int64(1), fr.Expired, "idle for more than 5m: reported once more, then dropped")
	assert.Len(t, got, 2)
	got, _ = flush(t, tb, t0.Add(6*time.Minute))
	assert.Len(t, got, 1)
	assert.Equal(t, 1, tb.Len())
	assert.Len(t, tb.writers, 1)

	// A point for it again: a new stream, from zero, with a new start.
	feed(t, tb, t0.Add(7*time.Minute), build(pt{writer: "a", attrs: map[string]any{"i": "old"}, start: 10, end: 20, v: 4}))
	got, _ = flush(t, tb, t0.Add(8*time.Minute))
	assert.Equal(t, int64(4), got["calls|i=old;"].intV)
	assert.Equal(t, pcommon.NewTimestampFromTime(t0.Add(7*time.Minute)), got["calls|i=old;"].start)

	// Everything idle: the table and its entries empty out.
	_, fr = flush(t, tb, t0.Add(time.Hour))
	assert.Equal(t, int64(2), fr.Expired)
	assert.Equal(t, 0, tb.Len())
	assert.Empty(t, tb.resources)
	assert.Empty(t, tb.resList)
	assert.Empty(t, tb.scopes)
	assert.Empty(t, tb.metrics)
	assert.Empty(t, tb.streams)
	assert.Empty(t, tb.writers)
}

func TestNoExpiration(t *testing.T) {
	cfg := testConfig()
	cfg.Expiration = 0
	tb := New(cfg)
	feed(t, tb, t0, build(pt{writer: "a", start: 0, end: 10, v: 1}))
	_, fr := flush(t, tb, t0.Add(1000*time.Hour))
	assert.Equal(t, int64(0), fr.Expired)
	assert.Equal(t, 1, tb.Len())
}

func TestBoundedWriters(t *testing.T) {
	cfg := testConfig()
	cfg.MaxWritersPerStream = 2
	tb := New(cfg)
	r := feed(t, tb, t0, build(pt{writer: "a", start: 0, end: 10, v: 1}))
	r2 := feed(t, tb, t0.Add(time.Second), build(pt{writer: "b", start: 0, end: 10, v: 1}))
	r3 := feed(t, tb, t0.Add(2*time.Second), build(pt{writer: "a", start: 10, end: 20, v: 1}))
	assert.Equal(t, int64(0), r.WritersEvicted+r2.WritersEvicted+r3.WritersEvicted)
	// A third writer: b, the least recently seen, is evicted.
	r = feed(t, tb, t0.Add(3*time.Second), build(pt{writer: "c", start: 0, end: 10, v: 1}))
	assert.Equal(t, Result{Merged: 1, WritersEvicted: 1}, r)
	assert.Len(t, tb.streams[tb.anyStream().hash].writers, 2)
	// a's memory is intact: its retry is recognised.
	r = feed(t, tb, t0.Add(4*time.Second), build(pt{writer: "a", start: 10, end: 20, v: 1}))
	assert.Equal(t, int64(1), r.Duplicates)
	// b's is gone: its retry now is counted a second time. This is what
	// eviction costs, and why max_writers_per_stream should exceed the
	// number of writers of a stream.
	r = feed(t, tb, t0.Add(5*time.Second), build(pt{writer: "b", start: 0, end: 10, v: 1}))
	assert.Equal(t, Result{Merged: 1, WritersEvicted: 1}, r)
	got, _ := flush(t, tb, t0.Add(time.Minute))
	assert.Equal(t, int64(5), got["calls|"].intV)
	assert.LessOrEqual(t, len(tb.writers), 2, "interned writers are released with their records")
}

func TestIdleWritersExpireInLiveStreams(t *testing.T) {
	tb := New(testConfig())
	feed(t, tb, t0, build(pt{writer: "old-pod", start: 0, end: 10, v: 1}))
	feed(t, tb, t0.Add(4*time.Minute), build(pt{writer: "new-pod", start: 0, end: 10, v: 1}))
	_, fr := flush(t, tb, t0.Add(6*time.Minute))
	assert.Equal(t, int64(0), fr.Expired)
	s := tb.anyStream()
	require.Len(t, s.writers, 1)
	assert.Equal(t, "new-pod", s.writers[0].ref.id)
	assert.Len(t, tb.writers, 1)
}

func TestTypedWriterValues(t *testing.T) {
	tb := New(testConfig())
	md := build(pt{start: 0, end: 10, v: 1})
	md.ResourceMetrics().At(0).Resource().Attributes().PutInt(writerKey, 7)
	md2 := build(pt{start: 0, end: 10, v: 1})
	md2.ResourceMetrics().At(0).Resource().Attributes().PutStr(writerKey, "7")
	r := feed(t, tb, t0, md, md2)
	assert.Equal(t, Result{Merged: 2}, r, `the int 7 and the string "7" are two writers`)
}

// anyStream returns one stream of the table.
func (t *Table) anyStream() *stream {
	for _, s := range t.streams {
		return s
	}
	return nil
}
