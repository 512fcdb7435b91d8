package bench

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/connector"
	"go.opentelemetry.io/collector/connector/connectortest"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
)

// point is one emitted series: calls and the explicit histogram of the
// same dimension set.
type point struct {
	order   []string // attribute keys as emitted
	calls   int64
	count   uint64
	sum     float64
	buckets []uint64
	bounds  []float64
}

// TestSpanMetricsEquivalent checks that the benchmark compares the same
// work: with the benchmark configs, both connectors emit the same metric
// names and, for every dimension set, the same calls, histogram count, sum,
// bounds and bucket counts from the benchmark batch (fed three times), and
// the same attributes in the same order, collector.instance.id included:
// contrib adds it behind connector.spanmetrics.includeCollectorInstanceID,
// a beta gate (on by default) at v0.161.0, and redmetrics always does.
// contrib reads it from the collector resource's collector.instance.id
// (which the collector does not set: contrib then draws a random UUID);
// redmetrics honours that key first, then service.instance.id, so with
// the key set both write the same value.
func TestSpanMetricsEquivalent(t *testing.T) {
	const rounds = 3
	got := map[string]map[string]point{}
	for _, im := range impls() {
		sink := new(consumertest.MetricsSink)
		// contrib's connector flushes only on its ticker, which it takes
		// from the context's clockwork clock: a fake clock lets the test
		// fire it. redmetrics flushes at shutdown.
		clock := clockwork.NewFakeClockAt(t0)
		ctx := clockwork.AddToContext(context.Background(), clock)
		// No expiry here: the fake clock jumps an hour per flush, which
		// would expire every series before the second flush.
		c := startWithInstanceID(t, ctx, im, sink)
		for range rounds {
			if err := c.ConsumeTraces(ctx, makeBatch()); err != nil {
				t.Fatal(err)
			}
		}
		if im.name == "spanmetrics" {
			deadline := time.Now().Add(10 * time.Second)
			// Two flushes: contrib emits a new cumulative calls series
			// as 0 the first time (so rate() sees its start), and the
			// count from the next flush on.
			for len(sink.AllMetrics()) < 2 {
				if time.Now().After(deadline) {
					t.Fatal("spanmetrics did not flush")
				}
				clock.Advance(flushInterval)
				time.Sleep(10 * time.Millisecond)
			}
		}
		if err := c.Shutdown(ctx); err != nil {
			t.Fatal(err)
		}
		if len(sink.AllMetrics()) == 0 {
			t.Fatalf("%s emitted nothing", im.name)
		}
		all := sink.AllMetrics()
		got[im.name] = collect(t, all[len(all)-1])
	}

	red, span := got["redmetrics"], got["spanmetrics"]
	if len(red) == 0 || len(red) != len(span) {
		t.Fatalf("series: redmetrics %d, spanmetrics %d", len(red), len(span))
	}
	var calls int64
	for k, r := range red {
		s, ok := span[k]
		if !ok {
			t.Errorf("spanmetrics has no series %s", k)
			continue
		}
		calls += r.calls
		if !slices.Equal(r.order, s.order) {
			t.Errorf("series %s: attribute order differs:\nredmetrics  %v\nspanmetrics %v", k, r.order, s.order)
		}
		if r.calls != s.calls || r.count != s.count || math.Abs(r.sum-s.sum) > 1e-6*math.Abs(s.sum) ||
			!slices.Equal(r.buckets, s.buckets) || !slices.Equal(r.bounds, s.bounds) {
			t.Errorf("series %s differs:\nredmetrics  %+v\nspanmetrics %+v", k, r, s)
		}
	}
	if calls != rounds*batchSpans {
		t.Errorf("calls add up to %d, want %d", calls, rounds*batchSpans)
	}
}

// collect indexes the calls and duration points of md by metric-agnostic
// dimension set.
func collect(t *testing.T, md pmetric.Metrics) map[string]point {
	t.Helper()
	out := map[string]point{}
	rms := md.ResourceMetrics()
	for i := range rms.Len() {
		sms := rms.At(i).ScopeMetrics()
		for j := range sms.Len() {
			ms := sms.At(j).Metrics()
			for k := range ms.Len() {
				m := ms.At(k)
				switch m.Name() {
				case "traces.span.metrics.calls":
					dps := m.Sum().DataPoints()
					for d := range dps.Len() {
						key := attrKey(dps.At(d).Attributes())
						p := out[key]
						p.order = attrOrder(t, dps.At(d).Attributes())
						p.calls = dps.At(d).IntValue()
						out[key] = p
					}
				case "traces.span.metrics.duration":
					if m.Unit() != "ms" {
						t.Errorf("duration unit %q", m.Unit())
					}
					dps := m.Histogram().DataPoints()
					for d := range dps.Len() {
						dp := dps.At(d)
						key := attrKey(dp.Attributes())
						p := out[key]
						p.count, p.sum = dp.Count(), dp.Sum()
						p.buckets, p.bounds = dp.BucketCounts().AsRaw(), dp.ExplicitBounds().AsRaw()
						out[key] = p
					}
				default:
					t.Errorf("unexpected metric %q", m.Name())
				}
			}
		}
	}
	return out
}

func attrKey(attrs pcommon.Map) string {
	var parts []string
	for k, v := range attrs.All() {
		parts = append(parts, fmt.Sprintf("%s=%s(%s)", k, v.AsString(), v.Type()))
	}
	slices.Sort(parts)
	return strings.Join(parts, ",")
}

// attrOrder lists the keys in emission order and checks the writer identity.
func attrOrder(t *testing.T, attrs pcommon.Map) []string {
	t.Helper()
	if v, ok := attrs.Get("collector.instance.id"); !ok || v.Str() != benchInstanceID {
		t.Errorf("collector.instance.id = %q, %v; want %q", v.AsString(), ok, benchInstanceID)
	}
	var keys []string
	for k := range attrs.All() {
		keys = append(keys, k)
	}
	return keys
}

const benchInstanceID = "gateway-1"

// startWithInstanceID is start with a collector resource as the service
// builds it (service.instance.id) plus collector.instance.id, the key
// contrib reads.
func startWithInstanceID(tb testing.TB, ctx context.Context, im impl, next consumer.Metrics) connector.Traces {
	tb.Helper()
	set := connectortest.NewNopSettings(im.factory.Type())
	set.Resource = pcommon.NewResource()
	set.Resource.Attributes().PutStr("service.instance.id", "5f0c1f9e-0000-4000-8000-000000000000")
	set.Resource.Attributes().PutStr("collector.instance.id", benchInstanceID)
	c, err := im.factory.CreateTracesToMetrics(ctx, set, im.config(0), next)
	if err != nil {
		tb.Fatal(err)
	}
	if err := c.Start(ctx, componenttest.NewNopHost()); err != nil {
		tb.Fatal(err)
	}
	return c
}
