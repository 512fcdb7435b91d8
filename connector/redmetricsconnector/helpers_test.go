package redmetricsconnector

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"hash/maphash"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/connector"
	"go.opentelemetry.io/collector/connector/connectortest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/otelcsp/otelcsp/connector/redmetricsconnector/internal/metadata"
	"github.com/otelcsp/otelcsp/internal/clock/clocktest"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata/golden")

// t0 is the fake clock's start: fixed so golden files hold fixed timestamps.
var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// newManualClock is a clock the test moves: Advance (both clocks move and
// flush tickers fire) and StepWall (only the wall clock moves, as when NTP
// steps it).
func newManualClock() *clocktest.Fake { return clocktest.New(t0, 0) }

// testInstanceID is the collector's service.instance.id in tests, so golden
// files hold a fixed collector.instance.id.
const testInstanceID = "00000000-0000-4000-8000-000000000001"

// testSettings are connectortest's settings with a collector resource
// carrying service.instance.id, as the collector's service sets it.
func testSettings() connector.Settings {
	set := connectortest.NewNopSettings(metadata.Type)
	set.Resource = pcommon.NewResource()
	set.Resource.Attributes().PutStr("service.name", "otelcsp")
	set.Resource.Attributes().PutStr("service.instance.id", testInstanceID)
	return set
}

// newTestConnector builds a connector on a manual clock writing to a sink.
func newTestConnector(t testing.TB, cfg *Config) (*connectorImp, *consumertest.MetricsSink, *clocktest.Fake) {
	t.Helper()
	require.NoError(t, cfg.Validate())
	sink := new(consumertest.MetricsSink)
	clk := newManualClock()
	c, err := newConnector(testSettings(), cfg, sink, clk)
	require.NoError(t, err)
	return c, sink, clk
}

// spanSpec describes one test span.
type spanSpec struct {
	service    string
	name       string
	kind       ptrace.SpanKind
	status     ptrace.StatusCode
	durMs      float64
	attrs      map[string]any
	resAttrs   map[string]any
	traceState string
	traceID    byte // 0 leaves the trace ID empty
	events     []map[string]any
	scope      string
	scopeVer   string
}

// buildTraces puts each span in its own ResourceSpans (resources with equal
// attributes must still be merged by the connector).
func buildTraces(specs ...spanSpec) ptrace.Traces {
	td := ptrace.NewTraces()
	for i, s := range specs {
		rs := td.ResourceSpans().AppendEmpty()
		if s.service != "" {
			rs.Resource().Attributes().PutStr("service.name", s.service)
		}
		if s.resAttrs != nil {
			if err := rs.Resource().Attributes().FromRaw(merge(s.resAttrs, map[string]any{"service.name": s.service})); err != nil {
				panic(err)
			}
		}
		ss := rs.ScopeSpans().AppendEmpty()
		ss.Scope().SetName(s.scope)
		ss.Scope().SetVersion(s.scopeVer)
		sp := ss.Spans().AppendEmpty()
		sp.SetName(s.name)
		sp.SetKind(s.kind)
		sp.Status().SetCode(s.status)
		start := pcommon.NewTimestampFromTime(t0)
		sp.SetStartTimestamp(start)
		sp.SetEndTimestamp(start + pcommon.Timestamp(s.durMs*1e6))
		if s.attrs != nil {
			_ = sp.Attributes().FromRaw(s.attrs)
		}
		sp.TraceState().FromRaw(s.traceState)
		if s.traceID != 0 {
			sp.SetTraceID(pcommon.TraceID{s.traceID, 1, 2, 3})
			sp.SetSpanID(pcommon.SpanID{s.traceID, byte(i), 0xff})
		}
		for _, ea := range s.events {
			ev := sp.Events().AppendEmpty()
			ev.SetName("event")
			_ = ev.Attributes().FromRaw(ea)
		}
	}
	return td
}

func merge(a, b map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		if v != "" {
			out[k] = v
		}
	}
	return out
}

// allMetrics merges (copies of) what the sink received into one Metrics.
func allMetrics(sink *consumertest.MetricsSink) pmetric.Metrics {
	out := pmetric.NewMetrics()
	for _, md := range sink.AllMetrics() {
		for i := 0; i < md.ResourceMetrics().Len(); i++ {
			md.ResourceMetrics().At(i).CopyTo(out.ResourceMetrics().AppendEmpty())
		}
	}
	return out
}

// normalize renders metrics as JSON with resources, metrics and points in a
// canonical order, since map iteration makes the emitted order vary.
func normalize(t testing.TB, md pmetric.Metrics) string {
	t.Helper()
	type point map[string]any
	type metric struct {
		Name, Unit, Type string
		Temporality      string `json:",omitempty"`
		Monotonic        bool   `json:",omitempty"`
		Points           []point
	}
	type res struct {
		Resource map[string]any
		Scope    string
		Metrics  []metric
	}
	var out []res
	for i := 0; i < md.ResourceMetrics().Len(); i++ {
		rm := md.ResourceMetrics().At(i)
		for j := 0; j < rm.ScopeMetrics().Len(); j++ {
			sm := rm.ScopeMetrics().At(j)
			r := res{Resource: rm.Resource().Attributes().AsRaw(), Scope: sm.Scope().Name()}
			for k := 0; k < sm.Metrics().Len(); k++ {
				m := sm.Metrics().At(k)
				mm := metric{Name: m.Name(), Unit: m.Unit(), Type: m.Type().String()}
				exs := func(es pmetric.ExemplarSlice) []string {
					var o []string
					for e := 0; e < es.Len(); e++ {
						x := es.At(e)
						o = append(o, fmt.Sprintf("%s/%s=%g@%d", x.TraceID(), x.SpanID(), x.DoubleValue(), x.Timestamp()))
					}
					sort.Strings(o)
					return o
				}
				switch m.Type() {
				case pmetric.MetricTypeSum:
					mm.Temporality = m.Sum().AggregationTemporality().String()
					mm.Monotonic = m.Sum().IsMonotonic()
					for p := 0; p < m.Sum().DataPoints().Len(); p++ {
						dp := m.Sum().DataPoints().At(p)
						mm.Points = append(mm.Points, point{"attrs": dp.Attributes().AsRaw(), "start": dp.StartTimestamp().AsTime(), "time": dp.Timestamp().AsTime(), "value": dp.IntValue(), "exemplars": exs(dp.Exemplars())})
					}
				case pmetric.MetricTypeHistogram:
					mm.Temporality = m.Histogram().AggregationTemporality().String()
					for p := 0; p < m.Histogram().DataPoints().Len(); p++ {
						dp := m.Histogram().DataPoints().At(p)
						mm.Points = append(mm.Points, point{"attrs": dp.Attributes().AsRaw(), "start": dp.StartTimestamp().AsTime(), "time": dp.Timestamp().AsTime(), "count": dp.Count(), "sum": dp.Sum(), "bounds": dp.ExplicitBounds().AsRaw(), "buckets": dp.BucketCounts().AsRaw(), "exemplars": exs(dp.Exemplars())})
					}
				case pmetric.MetricTypeExponentialHistogram:
					mm.Temporality = m.ExponentialHistogram().AggregationTemporality().String()
					for p := 0; p < m.ExponentialHistogram().DataPoints().Len(); p++ {
						dp := m.ExponentialHistogram().DataPoints().At(p)
						mm.Points = append(mm.Points, point{"attrs": dp.Attributes().AsRaw(), "start": dp.StartTimestamp().AsTime(), "time": dp.Timestamp().AsTime(), "count": dp.Count(), "sum": dp.Sum(), "scale": dp.Scale(), "zero": dp.ZeroCount(), "offset": dp.Positive().Offset(), "buckets": dp.Positive().BucketCounts().AsRaw(), "exemplars": exs(dp.Exemplars())})
					}
				}
				sort.Slice(mm.Points, func(a, b int) bool {
					ja, _ := json.Marshal(mm.Points[a])
					jb, _ := json.Marshal(mm.Points[b])
					return string(ja) < string(jb)
				})
				r.Metrics = append(r.Metrics, mm)
			}
			sort.Slice(r.Metrics, func(a, b int) bool { return r.Metrics[a].Name < r.Metrics[b].Name })
			out = append(out, r)
		}
	}
	sort.Slice(out, func(a, b int) bool {
		ja, _ := json.Marshal(out[a].Resource)
		jb, _ := json.Marshal(out[b].Resource)
		return string(ja) < string(jb)
	})
	b, err := json.MarshalIndent(out, "", "  ")
	require.NoError(t, err)
	return string(b) + "\n"
}

// assertGolden compares against testdata/golden/<name>.json (rewritten with -update).
func assertGolden(t *testing.T, name string, md pmetric.Metrics) {
	t.Helper()
	got := normalize(t, md)
	path := filepath.Join("testdata", "golden", name+".json")
	if *update {
		require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
		require.NoError(t, os.WriteFile(path, []byte(got), 0o600))
		return
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "run go test -run %s -update to create the golden file", t.Name())
	require.Equal(t, string(want), got)
}

// consume feeds traces to c.
func consume(t testing.TB, c *connectorImp, specs ...spanSpec) {
	t.Helper()
	require.NoError(t, c.ConsumeTraces(context.Background(), buildTraces(specs...)))
}

func maphashSeedForTest() maphash.Seed { return maphash.MakeSeed() }
