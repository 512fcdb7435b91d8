package redmetricsconnector

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// findMetric returns the named metric of the first resource whose
// service.name is service ("" matches a resource without attributes).
func findMetric(t *testing.T, md pmetric.Metrics, service, name string) pmetric.Metric {
	t.Helper()
	for i := 0; i < md.ResourceMetrics().Len(); i++ {
		rm := md.ResourceMetrics().At(i)
		v, ok := rm.Resource().Attributes().Get("service.name")
		if (service == "" && ok) || (service != "" && (!ok || v.Str() != service)) {
			continue
		}
		ms := rm.ScopeMetrics().At(0).Metrics()
		for j := 0; j < ms.Len(); j++ {
			if ms.At(j).Name() == name {
				return ms.At(j)
			}
		}
	}
	t.Fatalf("metric %s of %q not found", name, service)
	return pmetric.Metric{}
}

func TestDefaultsCumulativeExplicit(t *testing.T) {
	c, sink, clk := newTestConnector(t, createDefaultConfig())
	consume(t, c,
		spanSpec{service: "checkout", name: "GET /cart", kind: ptrace.SpanKindServer, status: ptrace.StatusCodeUnset, durMs: 3},
		spanSpec{service: "checkout", name: "GET /cart", kind: ptrace.SpanKindServer, status: ptrace.StatusCodeUnset, durMs: 4},
		spanSpec{service: "checkout", name: "GET /cart", kind: ptrace.SpanKindServer, status: ptrace.StatusCodeError, durMs: 20000},
		spanSpec{service: "payment", name: "charge", kind: ptrace.SpanKindClient, status: ptrace.StatusCodeOk, durMs: 0.5},
		spanSpec{name: "no service, skipped", durMs: 1},
	)
	clk.Advance(time.Minute)
	c.flush(context.Background())
	md := allMetrics(sink)
	assertGolden(t, "defaults", md)

	calls := findMetric(t, md, "checkout", "traces.span.metrics.calls")
	require.Equal(t, pmetric.MetricTypeSum, calls.Type())
	assert.True(t, calls.Sum().IsMonotonic())
	assert.Equal(t, pmetric.AggregationTemporalityCumulative, calls.Sum().AggregationTemporality())
	require.Equal(t, 2, calls.Sum().DataPoints().Len())
	var sawErr bool
	for i := 0; i < 2; i++ {
		dp := calls.Sum().DataPoints().At(i)
		st, _ := dp.Attributes().Get("status.code")
		kind, _ := dp.Attributes().Get("span.kind")
		assert.Equal(t, "SPAN_KIND_SERVER", kind.Str())
		assert.Equal(t, 5, dp.Attributes().Len())
		id, _ := dp.Attributes().Get("collector.instance.id")
		assert.Equal(t, testInstanceID, id.Str(), "the collector's service.instance.id")
		if st.Str() == "STATUS_CODE_ERROR" {
			sawErr = true
			assert.Equal(t, int64(1), dp.IntValue())
		} else {
			assert.Equal(t, "STATUS_CODE_UNSET", st.Str())
			assert.Equal(t, int64(2), dp.IntValue())
		}
		assert.Equal(t, t0.UnixNano(), int64(dp.StartTimestamp()))
		assert.Equal(t, t0.Add(time.Minute).UnixNano(), int64(dp.Timestamp()))
	}
	assert.True(t, sawErr)

	dur := findMetric(t, md, "checkout", "traces.span.metrics.duration")
	require.Equal(t, pmetric.MetricTypeHistogram, dur.Type())
	assert.Equal(t, "ms", dur.Unit())
	for i := 0; i < dur.Histogram().DataPoints().Len(); i++ {
		dp := dur.Histogram().DataPoints().At(i)
		assert.Equal(t, defaultBucketsMs, dp.ExplicitBounds().AsRaw())
		require.Equal(t, 17, dp.BucketCounts().Len())
		if dp.Count() == 2 {
			// 3ms lands in (2,4], and so does 4ms (upper bounds are inclusive).
			assert.Equal(t, uint64(2), dp.BucketCounts().At(1))
			assert.InDelta(t, 7.0, dp.Sum(), 1e-9)
		} else {
			assert.Equal(t, uint64(1), dp.BucketCounts().At(16), "20s is past the last bound")
		}
	}

	// A second flush of cumulative series repeats the totals with the same start.
	sink.Reset()
	consume(t, c, spanSpec{service: "payment", name: "charge", kind: ptrace.SpanKindClient, status: ptrace.StatusCodeOk, durMs: 7})
	clk.Advance(time.Minute)
	c.flush(context.Background())
	md = allMetrics(sink)
	calls = findMetric(t, md, "payment", "traces.span.metrics.calls")
	require.Equal(t, 1, calls.Sum().DataPoints().Len())
	assert.Equal(t, int64(2), calls.Sum().DataPoints().At(0).IntValue())
	assert.Equal(t, t0.UnixNano(), int64(calls.Sum().DataPoints().At(0).StartTimestamp()))
	require.Equal(t, 2, findMetric(t, md, "checkout", "traces.span.metrics.calls").Sum().DataPoints().Len(), "cumulative series are re-emitted while alive")
}

func TestLifecycle(t *testing.T) {
	c, _, _ := newTestConnector(t, createDefaultConfig())
	require.NoError(t, c.Shutdown(context.Background()), "shutdown without start")
	require.NoError(t, c.Shutdown(context.Background()), "second shutdown")

	c, sink, clk := newTestConnector(t, createDefaultConfig())
	require.NoError(t, c.Start(context.Background(), nil))
	consume(t, c, spanSpec{service: "a", name: "op", durMs: 1})
	clk.Advance(time.Second)
	require.NoError(t, c.Shutdown(context.Background()))
	require.NoError(t, c.Shutdown(context.Background()))
	// Shutdown flushes what the last interval aggregated.
	require.Equal(t, 1, len(sink.AllMetrics()))
	assert.Equal(t, 2, sink.AllMetrics()[0].DataPointCount())
}
