package redmetricsconnector

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// A flood of unique resources between two flushes never interns more than
// cardinality_limit resources, nor caches more than that many entries:
// resources past the bound go to the overflow series, and nothing is lost.
func TestResourceFloodBoundedBetweenFlushes(t *testing.T) {
	const limit, resources, perBatch = 10, 100_000, 1_000
	for _, keyed := range []bool{false, true} {
		t.Run(fmt.Sprint("resource_metrics_key_attributes=", keyed), func(t *testing.T) {
			cfg := createDefaultConfig()
			cfg.CardinalityLimit = limit
			if keyed {
				cfg.ResourceMetricsKeyAttributes = []string{"service.name", "k8s.pod.uid"}
			}
			c, sink, clk := newTestConnector(t, cfg)
			for b := 0; b < resources/perBatch; b++ {
				td := ptrace.NewTraces()
				for r := 0; r < perBatch; r++ {
					rs := td.ResourceSpans().AppendEmpty()
					a := rs.Resource().Attributes()
					a.PutStr("service.name", "svc")
					a.PutStr("k8s.pod.uid", fmt.Sprintf("pod-%d-%d", b, r))
					rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty().SetName("op")
				}
				require.NoError(t, c.ConsumeTraces(context.Background(), td))
				// No flush in between: the bound holds at every moment.
				require.LessOrEqual(t, c.res.len(), limit, "resources interned after batch %d", b)
				require.LessOrEqual(t, c.res.cacheLen(), limit, "resource cache entries after batch %d", b)
				require.Equal(t, c.res.len(), func() int { c.res.mu.RLock(); defer c.res.mu.RUnlock(); return c.res.n }())
				require.LessOrEqual(t, c.live.Load(), int64(limit))
			}
			flushNow(t, c, clk, time.Minute)
			var regular, overflow int64
			for _, md := range sink.AllMetrics() {
				for i := 0; i < md.ResourceMetrics().Len(); i++ {
					rm := md.ResourceMetrics().At(i)
					m := rm.ScopeMetrics().At(0).Metrics().At(0)
					require.Equal(t, "traces.span.metrics.calls", m.Name())
					for _, p := range sumPoints(m) {
						if _, ok := p.Attributes().Get(overflowKey); ok {
							overflow += p.IntValue()
						} else {
							regular += p.IntValue()
						}
					}
				}
			}
			assert.Equal(t, int64(limit), regular, "the first resources got their series")
			assert.Equal(t, int64(resources-limit), overflow, "the rest went to the overflow series")

			// After the flush the bound still holds, and a resource that
			// holds a series keeps counting into it.
			assert.LessOrEqual(t, c.res.len(), limit)
			sink.Reset()
			td := ptrace.NewTraces()
			rs := td.ResourceSpans().AppendEmpty()
			rs.Resource().Attributes().PutStr("service.name", "svc")
			rs.Resource().Attributes().PutStr("k8s.pod.uid", "pod-0-0")
			rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty().SetName("op")
			require.NoError(t, c.ConsumeTraces(context.Background(), td))
			flushNow(t, c, clk, time.Minute)
			found := false
			for _, md := range sink.AllMetrics() {
				for i := 0; i < md.ResourceMetrics().Len(); i++ {
					rm := md.ResourceMetrics().At(i)
					if v, ok := rm.Resource().Attributes().Get("k8s.pod.uid"); ok && v.Str() == "pod-0-0" {
						found = true
						assert.Equal(t, int64(2), sumPoints(rm.ScopeMetrics().At(0).Metrics().At(0))[0].IntValue())
					}
				}
			}
			assert.True(t, found)
		})
	}
}

// One resource sent with its attributes in many orders is one resource,
// but one cache entry per order: the cache is bounded by the limit too.
func TestResourceCacheBoundedByLimit(t *testing.T) {
	const limit = 10
	cfg := createDefaultConfig()
	cfg.CardinalityLimit = limit
	c, sink, clk := newTestConnector(t, cfg)
	keys := []string{"service.name", "a", "b", "c", "d"}
	var perms [][]string
	var permute func(prefix, rest []string)
	permute = func(prefix, rest []string) {
		if len(rest) == 0 {
			perms = append(perms, append([]string(nil), prefix...))
			return
		}
		for i := range rest {
			next := append(append([]string(nil), rest[:i]...), rest[i+1:]...)
			permute(append(prefix, rest[i]), next)
		}
	}
	permute(nil, keys)
	require.Len(t, perms, 120)
	for _, order := range perms {
		td := ptrace.NewTraces()
		rs := td.ResourceSpans().AppendEmpty()
		for _, k := range order {
			rs.Resource().Attributes().PutStr(k, "v-"+k)
		}
		rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty().SetName("op")
		require.NoError(t, c.ConsumeTraces(context.Background(), td))
		require.LessOrEqual(t, c.res.cacheLen(), limit)
	}
	assert.Equal(t, 1, c.res.len())
	flushNow(t, c, clk, time.Minute)
	md := allMetrics(sink)
	require.Equal(t, 1, md.ResourceMetrics().Len())
	assert.Equal(t, int64(120), sumPoints(findMetric(t, md, "v-service.name", "traces.span.metrics.calls"))[0].IntValue())
}

// Series age is measured on the monotonic clock: a wall-clock step forward
// does not expire every series at the next flush, and a step back does not
// keep idle series forever. Timestamps follow the wall clock.
func TestWallClockStepDoesNotMoveExpiry(t *testing.T) {
	cfg := createDefaultConfig()
	cfg.SeriesExpiration = 5 * time.Minute
	c, sink, clk := newTestConnector(t, cfg)
	consume(t, c, spanSpec{service: "a", name: "op", durMs: 1})
	flushNow(t, c, clk, time.Minute)
	require.Equal(t, int64(1), c.live.Load())

	// NTP steps the wall clock an hour ahead: the series was seen a minute
	// ago, not an hour ago.
	clk.StepWall(time.Hour)
	sink.Reset()
	flushNow(t, c, clk, time.Second)
	assert.Equal(t, int64(1), c.live.Load(), "a wall-clock step forward expired the series")
	pts := sumPoints(findMetric(t, allMetrics(sink), "a", "traces.span.metrics.calls"))
	require.Len(t, pts, 1)
	assert.Equal(t, t0.Add(time.Hour+time.Minute+time.Second).UnixNano(), int64(pts[0].Timestamp()), "timestamps are wall time")
	assert.Equal(t, t0.UnixNano(), int64(pts[0].StartTimestamp()))

	// Now two hours back: once five minutes idle, the series expires all
	// the same (it was last seen 1m1s ago).
	clk.StepWall(-2 * time.Hour)
	flushNow(t, c, clk, 3*time.Minute)
	assert.Equal(t, int64(1), c.live.Load(), "4m1s idle")
	flushNow(t, c, clk, time.Minute)
	assert.Equal(t, int64(0), c.live.Load(), "a wall-clock step back kept an idle series alive")
	assert.Equal(t, 0, c.res.len())
}
