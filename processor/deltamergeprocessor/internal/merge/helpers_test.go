package merge

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
)

const writerKey = "collector.instance.id"

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// ts is t0 + s seconds as a pdata timestamp.
func ts(s int) pcommon.Timestamp {
	return pcommon.NewTimestampFromTime(t0.Add(time.Duration(s) * time.Second))
}

func testConfig() Config {
	return Config{WriterAttribute: writerKey, MaxStreams: 1000, MaxWritersPerStream: 64, Expiration: 5 * time.Minute}
}

// pt describes one delta data point of the test inputs.
type pt struct {
	writer      string // value of the writer attribute; "" leaves it out
	onResource  bool   // put the writer attribute on the resource instead of the point
	res         map[string]any
	scope       string
	metric      string // default "calls"
	kind        string // "sum" (default), "hist", "expo", "gauge", "cumsum", "summary"
	nonMono     bool
	attrs       map[string]any
	start, end  int // seconds after t0
	v           int64
	f           float64 // double sum value when v == 0 and f != 0
	bounds      []float64
	counts      []uint64
	n           uint64 // histogram count when there are no buckets
	sum         float64
	noSum       bool
	min, max    float64
	noMinMax    bool
	scale       int32
	zeroThr     float64
	zeroCount   uint64
	posOff      int32
	pos         []uint64
	negOff      int32
	neg         []uint64
	noRecording bool
}

// build turns points into metrics: one ResourceMetrics per point, as the
// engine must not care how points are grouped.
func build(points ...pt) pmetric.Metrics {
	md := pmetric.NewMetrics()
	for _, p := range points {
		rm := md.ResourceMetrics().AppendEmpty()
		res := p.res
		if res == nil {
			res = map[string]any{"service.name": "checkout"}
		}
		must(rm.Resource().Attributes().FromRaw(res))
		attrs := pcommon.NewMap()
		if p.attrs != nil {
			must(attrs.FromRaw(p.attrs))
		}
		if p.writer != "" {
			if p.onResource {
				rm.Resource().Attributes().PutStr(writerKey, p.writer)
			} else {
				attrs.PutStr(writerKey, p.writer)
			}
		}
		sm := rm.ScopeMetrics().AppendEmpty()
		sm.Scope().SetName(p.scope)
		m := sm.Metrics().AppendEmpty()
		m.SetName(p.metric)
		if p.metric == "" {
			m.SetName("calls")
		}
		addPoint(m, p, attrs)
	}
	return md
}

func addPoint(m pmetric.Metric, p pt, attrs pcommon.Map) {
	type common interface {
		Attributes() pcommon.Map
		SetStartTimestamp(pcommon.Timestamp)
		SetTimestamp(pcommon.Timestamp)
		SetFlags(pmetric.DataPointFlags)
	}
	set := func(dp common) {
		attrs.CopyTo(dp.Attributes())
		dp.SetStartTimestamp(ts(p.start))
		dp.SetTimestamp(ts(p.end))
		if p.noRecording {
			dp.SetFlags(pmetric.DefaultDataPointFlags.WithNoRecordedValue(true))
		}
	}
	switch p.kind {
	case "", "sum", "cumsum":
		s := m.SetEmptySum()
		s.SetIsMonotonic(!p.nonMono)
		s.SetAggregationTemporality(pmetric.AggregationTemporalityDelta)
		if p.kind == "cumsum" {
			s.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
		}
		dp := s.DataPoints().AppendEmpty()
		set(dp)
		if p.f != 0 {
			dp.SetDoubleValue(p.f)
		} else {
			dp.SetIntValue(p.v)
		}
	case "gauge":
		dp := m.SetEmptyGauge().DataPoints().AppendEmpty()
		set(dp)
		dp.SetIntValue(p.v)
	case "summary":
		dp := m.SetEmptySummary().DataPoints().AppendEmpty()
		set(dp)
		dp.SetCount(uint64(p.v))
	case "hist":
		h := m.SetEmptyHistogram()
		h.SetAggregationTemporality(pmetric.AggregationTemporalityDelta)
		dp := h.DataPoints().AppendEmpty()
		set(dp)
		dp.ExplicitBounds().FromRaw(p.bounds)
		dp.BucketCounts().FromRaw(p.counts)
		n := p.n
		for _, c := range p.counts {
			n += c
		}
		dp.SetCount(n)
		if !p.noSum {
			dp.SetSum(p.sum)
		}
		if !p.noMinMax {
			dp.SetMin(p.min)
			dp.SetMax(p.max)
		}
	case "expo":
		h := m.SetEmptyExponentialHistogram()
		h.SetAggregationTemporality(pmetric.AggregationTemporalityDelta)
		dp := h.DataPoints().AppendEmpty()
		set(dp)
		dp.SetScale(p.scale)
		dp.SetZeroThreshold(p.zeroThr)
		dp.SetZeroCount(p.zeroCount)
		dp.Positive().SetOffset(p.posOff)
		dp.Positive().BucketCounts().FromRaw(p.pos)
		dp.Negative().SetOffset(p.negOff)
		dp.Negative().BucketCounts().FromRaw(p.neg)
		n := p.zeroCount
		for _, c := range p.pos {
			n += c
		}
		for _, c := range p.neg {
			n += c
		}
		dp.SetCount(n)
		if !p.noSum {
			dp.SetSum(p.sum)
		}
	}
}

// out is one emitted point, flattened for comparisons.
type out struct {
	res, scope, metric string
	attrs              string
	start, ts          pcommon.Timestamp
	temporality        pmetric.AggregationTemporality
	monotonic          bool
	intV               int64
	dblV               float64
	isDouble           bool
	hist               pmetric.HistogramDataPoint
	expo               pmetric.ExponentialHistogramDataPoint
}

func attrString(m pcommon.Map) string {
	raw := m.AsRaw()
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(raw)) {
		fmt.Fprintf(&b, "%s=%v;", k, raw[k])
	}
	return b.String()
}

// points flattens md, keyed by metric name and point attributes.
func points(t *testing.T, md pmetric.Metrics) map[string]out {
	t.Helper()
	got := map[string]out{}
	for _, rm := range md.ResourceMetrics().All() {
		for _, sm := range rm.ScopeMetrics().All() {
			for _, m := range sm.Metrics().All() {
				base := out{res: attrString(rm.Resource().Attributes()), scope: sm.Scope().Name(), metric: m.Name()}
				add := func(attrs pcommon.Map, o out) {
					key := m.Name() + "|" + attrString(attrs)
					_, dup := got[key]
					require.False(t, dup, "two points for %s", key)
					o.attrs = attrString(attrs)
					got[key] = o
				}
				switch m.Type() {
				case pmetric.MetricTypeSum:
					for _, dp := range m.Sum().DataPoints().All() {
						o := base
						o.start, o.ts = dp.StartTimestamp(), dp.Timestamp()
						o.temporality, o.monotonic = m.Sum().AggregationTemporality(), m.Sum().IsMonotonic()
						o.isDouble = dp.ValueType() == pmetric.NumberDataPointValueTypeDouble
						o.intV, o.dblV = dp.IntValue(), dp.DoubleValue()
						add(dp.Attributes(), o)
					}
				case pmetric.MetricTypeHistogram:
					for _, dp := range m.Histogram().DataPoints().All() {
						o := base
						o.start, o.ts = dp.StartTimestamp(), dp.Timestamp()
						o.temporality = m.Histogram().AggregationTemporality()
						o.hist = dp
						add(dp.Attributes(), o)
					}
				case pmetric.MetricTypeExponentialHistogram:
					for _, dp := range m.ExponentialHistogram().DataPoints().All() {
						o := base
						o.start, o.ts = dp.StartTimestamp(), dp.Timestamp()
						o.temporality = m.ExponentialHistogram().AggregationTemporality()
						o.expo = dp
						add(dp.Attributes(), o)
					}
				}
			}
		}
	}
	return got
}

// feed consumes each batch at now and returns the summed results.
func feed(t *testing.T, tb *Table, now time.Time, batches ...pmetric.Metrics) Result {
	t.Helper()
	var total Result
	for _, md := range batches {
		r := tb.Consume(md, now)
		total.Merged += r.Merged
		total.OutOfOrder += r.OutOfOrder
		total.Duplicates += r.Duplicates
		total.Overflowed += r.Overflowed
		total.DroppedBoundsMismatch += r.DroppedBoundsMismatch
		total.DroppedInvalid += r.DroppedInvalid
		total.DroppedOverflowFull += r.DroppedOverflowFull
		total.WritersEvicted += r.WritersEvicted
	}
	return total
}

func flush(t *testing.T, tb *Table, now time.Time) (map[string]out, FlushResult) {
	t.Helper()
	md, fr := tb.Flush(now)
	got := points(t, md)
	require.Len(t, got, fr.Points)
	return got, fr
}

func must(err error) {
	if err != nil {
		panic(err)
	}
}
