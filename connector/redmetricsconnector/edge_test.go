package redmetricsconnector

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

func TestEndBeforeStartCountsZeroDuration(t *testing.T) {
	c, sink, clk := newTestConnector(t, createDefaultConfig())
	td := buildTraces(spanSpec{service: "a", name: "op"})
	sp := td.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0)
	sp.SetEndTimestamp(sp.StartTimestamp() - pcommon.Timestamp(time.Second))
	require.NoError(t, c.ConsumeTraces(context.Background(), td))
	flushNow(t, c, clk, time.Minute)
	dp := findMetric(t, allMetrics(sink), "a", "traces.span.metrics.duration").Histogram().DataPoints().At(0)
	assert.Equal(t, 0.0, dp.Sum())
	assert.Equal(t, uint64(1), dp.BucketCounts().At(0))
}

func TestOverflowDelta(t *testing.T) {
	cfg := createDefaultConfig()
	cfg.AggregationTemporality = Delta
	cfg.CardinalityLimit = 1
	c, sink, clk := newTestConnector(t, cfg)
	consume(t, c, spanSpec{service: "a", name: "kept", durMs: 1}, spanSpec{service: "a", name: "x", durMs: 1}, spanSpec{service: "a", name: "y", durMs: 1})
	flushNow(t, c, clk, time.Minute)
	md := allMetrics(sink)
	ov := findMetric(t, md, "", "traces.span.metrics.calls")
	require.Equal(t, 1, ov.Sum().DataPoints().Len())
	assert.Equal(t, int64(2), ov.Sum().DataPoints().At(0).IntValue())
	h := findMetric(t, md, "", "traces.span.metrics.duration").Histogram().DataPoints().At(0)
	assert.Equal(t, uint64(2), h.Count())
	v, _ := h.Attributes().Get(overflowKey)
	assert.True(t, v.Bool())

	// Next interval: only new overflow counts, starting at the previous flush.
	sink.Reset()
	consume(t, c, spanSpec{service: "a", name: "z", durMs: 1})
	flushNow(t, c, clk, time.Minute)
	md = allMetrics(sink)
	ov = findMetric(t, md, "", "traces.span.metrics.calls")
	assert.Equal(t, int64(1), ov.Sum().DataPoints().At(0).IntValue())
	assert.Equal(t, t0.Add(time.Minute).UnixNano(), int64(ov.Sum().DataPoints().At(0).StartTimestamp()))
	assert.Equal(t, 1, md.ResourceMetrics().Len(), "the idle regular series is not emitted in delta")
}

func TestSpanKindAndStatusStrings(t *testing.T) {
	kinds := map[ptrace.SpanKind]string{
		ptrace.SpanKindUnspecified: "SPAN_KIND_UNSPECIFIED", ptrace.SpanKindInternal: "SPAN_KIND_INTERNAL",
		ptrace.SpanKindServer: "SPAN_KIND_SERVER", ptrace.SpanKindClient: "SPAN_KIND_CLIENT",
		ptrace.SpanKindProducer: "SPAN_KIND_PRODUCER", ptrace.SpanKindConsumer: "SPAN_KIND_CONSUMER",
	}
	for k, want := range kinds {
		assert.Equal(t, want, spanKindStr(k))
	}
	assert.Equal(t, "STATUS_CODE_UNSET", statusCodeStr(ptrace.StatusCodeUnset))
	assert.Equal(t, "STATUS_CODE_OK", statusCodeStr(ptrace.StatusCodeOk))
	assert.Equal(t, "STATUS_CODE_ERROR", statusCodeStr(ptrace.StatusCodeError))
}

func TestBucketIndexInclusiveUpperBounds(t *testing.T) {
	b := []float64{2, 4, 6}
	for v, want := range map[float64]int{0: 0, 2: 0, 2.0001: 1, 4: 1, 6: 2, 6.5: 3, 1e9: 3} {
		assert.Equal(t, want, bucketIndex(b, v), "v=%v", v)
	}
	// Against a linear scan, for every bound count up to 20 and values on,
	// between and around the bounds.
	for n := 0; n <= 20; n++ {
		bounds := make([]float64, n)
		for i := range bounds {
			bounds[i] = float64(2 * (i + 1))
		}
		for v := -1.0; v <= float64(2*n+3); v += 0.5 {
			want := 0
			for want < n && bounds[want] < v {
				want++
			}
			require.Equal(t, want, bucketIndex(bounds, v), "n=%d v=%v", n, v)
		}
	}
}

func TestExpoHistogramDownscaleKeepsCounts(t *testing.T) {
	e := newExpoHist()
	var total uint64
	for i := 1; i <= 5000; i++ {
		v := float64(i) * 0.37
		e.record(v, uint64(i%3+1), 20)
		total += uint64(i%3 + 1)
		require.LessOrEqual(t, len(e.counts), 20)
	}
	var got uint64
	for _, n := range e.counts {
		got += n
	}
	assert.Equal(t, total, got)
	// The range fits max_size at the finest possible scale: one step finer would not.
	lo, hi := expoIndex(0.37, e.scale+1), expoIndex(5000*0.37, e.scale+1)
	assert.Greater(t, int(hi-lo+1), 20)
}
