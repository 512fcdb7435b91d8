package redmetricsconnector

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/connector/connectortest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/otelcsp/otelcsp/connector/redmetricsconnector/internal/metadata"
)

// keyingConfigs are the configs FuzzKeying picks from: the default, every
// keying feature at once, and limits small enough that most inputs overflow.
func keyingConfigs() []*Config {
	def := createDefaultConfig()

	all := createDefaultConfig()
	all.Dimensions = []Dimension{{Name: "a"}, {Name: "b", Default: strp("none")}}
	all.ExcludeDimensions = []string{"span.kind"}
	all.ResourceMetricsKeyAttributes = []string{"service.name", "k"}
	all.IncludeInstrumentationScope = []string{"s", "io.opentelemetry.http"}
	all.Histogram.Exponential = &ExponentialHistogramConfig{MaxSize: 4}
	all.AggregationTemporality = Delta
	all.Exemplars = ExemplarsConfig{Enabled: true, MaxPerDataPoint: 2}
	all.Events = EventsConfig{Enabled: true, Dimensions: []Dimension{{Name: "exception.type"}}}

	overflow := createDefaultConfig()
	overflow.CardinalityLimit = 2
	overflow.Dimensions = []Dimension{{Name: "a"}}
	overflow.Events = EventsConfig{Enabled: true, Dimensions: []Dimension{{Name: "e"}}}
	overflow.Histogram.Explicit = &ExplicitHistogramConfig{Buckets: []time.Duration{0, time.Nanosecond, time.Second}}

	tiny := createDefaultConfig()
	tiny.AggregationCardinalityLimit = 1
	tiny.AggregationTemporality = contribDelta
	tiny.Histogram.Disable = true
	tiny.Namespace = ""
	tiny.Histogram.Unit = UnitSeconds

	return []*Config{def, all, overflow, tiny}
}

// FuzzKeying feeds arbitrary OTLP trace payloads (twice, with a flush in
// between, each straight into the shards or through a lane) through a
// connector built by the factory and checks what comes
// out: the calls over all series, the overflow series included, add up to
// the adjusted count of every span whose resource has a service.name (the
// README: other spans are skipped); events likewise; every histogram point
// counts what its calls point counts; no series is emitted twice in a
// flush; live series never exceed the cardinality limit.
func FuzzKeying(f *testing.F) {
	seed := func(specs ...spanSpec) []byte {
		b, err := (&ptrace.ProtoMarshaler{}).MarshalTraces(buildTraces(specs...))
		if err != nil {
			f.Fatal(err)
		}
		return b
	}
	probe, err := (&ptrace.ProtoMarshaler{}).MarshalTraces(configProbeTraces())
	if err != nil {
		f.Fatal(err)
	}
	for _, v := range []uint8{0, 1, 2, 3, 0x40 | 1, 0x80 | 1, 0xc0 | 2, 0x80 | 3} {
		f.Add(probe, v)
		f.Add(seed(
			spanSpec{service: "a", name: "x", attrs: map[string]any{"a": "1"}, traceID: 1, traceState: "ot=th:c"},
			spanSpec{service: "a", name: "x", attrs: map[string]any{"a": int64(1)}, traceID: 2, traceState: "ot=rv:1;th:fffffffffffff"},
			spanSpec{service: "b", name: "y", attrs: map[string]any{"a": false}, resAttrs: map[string]any{"k": 1.5}, events: []map[string]any{{"e": "x"}}},
			spanSpec{service: "", name: "z", resAttrs: map[string]any{"k": "v"}},
			spanSpec{name: "no service"},
		), v)
		f.Add([]byte{}, v)
	}
	cfgs := keyingConfigs()
	for i, cfg := range cfgs {
		if err := cfg.Validate(); err != nil {
			f.Fatalf("keying config %d: %v", i, err)
		}
	}
	f.Fuzz(func(t *testing.T, payload []byte, variant uint8) {
		td, err := (&ptrace.ProtoUnmarshaler{}).UnmarshalTraces(payload)
		if err != nil {
			return
		}
		cfg := cfgs[int(variant&0x3f)%len(cfgs)]
		wantCalls, wantEvents := expectedCounts(td, cfg.Events.Enabled)

		ctx := context.Background()
		sink := new(consumertest.MetricsSink)
		conn, err := NewFactory().CreateTracesToMetrics(ctx, connectortest.NewNopSettings(metadata.Type), cfg, sink)
		if err != nil {
			t.Fatal(err)
		}
		c := conn.(*connectorImp)
		if err := c.Start(ctx, componenttest.NewNopHost()); err != nil {
			t.Fatal(err)
		}
		// The ticker is a minute away: the flushes are this one and the
		// final one at shutdown, so the totals are exact. Bits 6 and 7 of
		// variant send the first and the second batch through a lane (as
		// a caller that finds another one updating the shards does).
		consume := func(viaLane bool) {
			if viaLane {
				c.primary.Lock()
				defer c.primary.Unlock()
			}
			if err := c.ConsumeTraces(ctx, td); err != nil {
				t.Fatal(err)
			}
		}
		consume(variant&0x40 != 0)
		c.flush(ctx)
		consume(variant&0x80 != 0)
		if err := c.Shutdown(ctx); err != nil {
			t.Fatal(err)
		}
		if live, limit := c.live.Load(), int64(cfg.cardinalityLimit()); limit > 0 && live > limit {
			t.Fatalf("%d live series over the limit of %d", live, limit)
		}

		flushes := sink.AllMetrics()
		var gotCalls, gotEvents uint64
		for i, md := range flushes {
			calls, events := checkFlush(t, cfg, md)
			// Cumulative flushes repeat the running totals: only the last
			// one holds everything; delta flushes add up.
			if cfg.delta() || i == len(flushes)-1 {
				gotCalls += calls
				gotEvents += events
			}
		}
		if gotCalls != 2*wantCalls {
			t.Fatalf("calls: got %d, want %d (twice %d)", gotCalls, 2*wantCalls, wantCalls)
		}
		if gotEvents != 2*wantEvents {
			t.Fatalf("events: got %d, want %d (twice %d)", gotEvents, 2*wantEvents, wantEvents)
		}
	})
}

// expectedCounts returns the adjusted count of the spans the connector
// must count (their resource has service.name, of any type) and, with
// events on, of their events. Sums wrap like the connector's uint64
// counters do.
func expectedCounts(td ptrace.Traces, events bool) (calls, evs uint64) {
	rss := td.ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		rs := rss.At(i)
		if _, ok := rs.Resource().Attributes().Get(serviceNameKey); !ok {
			continue
		}
		for j := 0; j < rs.ScopeSpans().Len(); j++ {
			spans := rs.ScopeSpans().At(j).Spans()
			for k := 0; k < spans.Len(); k++ {
				s := spans.At(k)
				w := adjustedCount(s.TraceState().AsRaw(), s.SpanID())
				calls += w
				if events {
					evs += w * uint64(s.Events().Len())
				}
			}
		}
	}
	return calls, evs
}

// checkFlush checks one flush's internal consistency and returns the sum of
// its calls and events points.
func checkFlush(t *testing.T, cfg *Config, md pmetric.Metrics) (calls, events uint64) {
	t.Helper()
	prefix := ""
	if cfg.Namespace != "" {
		prefix = cfg.Namespace + "."
	}
	seen := map[string]bool{}
	key := func(res pcommon.Map, name string, attrs pcommon.Map) string {
		return attrKey(res) + "|" + name + "|" + attrKey(attrs)
	}
	unique := func(res pcommon.Map, name string, attrs pcommon.Map) {
		k := key(res, name, attrs)
		if seen[k] {
			t.Fatalf("series emitted twice in one flush: %s", k)
		}
		seen[k] = true
	}
	callsBy := map[string]uint64{}
	histBy := map[string]uint64{}
	for i := 0; i < md.ResourceMetrics().Len(); i++ {
		rm := md.ResourceMetrics().At(i)
		res := rm.Resource().Attributes()
		for j := 0; j < rm.ScopeMetrics().Len(); j++ {
			ms := rm.ScopeMetrics().At(j).Metrics()
			for k := 0; k < ms.Len(); k++ {
				m := ms.At(k)
				switch m.Name() {
				case prefix + metricCalls, prefix + metricEvents:
					dps := m.Sum().DataPoints()
					for p := 0; p < dps.Len(); p++ {
						dp := dps.At(p)
						unique(res, m.Name(), dp.Attributes())
						if strings.HasSuffix(m.Name(), metricCalls) {
							calls += uint64(dp.IntValue())
							callsBy[key(res, "", dp.Attributes())] += uint64(dp.IntValue())
						} else {
							events += uint64(dp.IntValue())
						}
					}
				case prefix + metricDuration:
					if m.Type() == pmetric.MetricTypeHistogram {
						dps := m.Histogram().DataPoints()
						for p := 0; p < dps.Len(); p++ {
							dp := dps.At(p)
							unique(res, m.Name(), dp.Attributes())
							var n uint64
							for _, c := range dp.BucketCounts().AsRaw() {
								n += c
							}
							if n != dp.Count() || dp.BucketCounts().Len() != dp.ExplicitBounds().Len()+1 {
								t.Fatalf("histogram point: %d buckets over %d bounds hold %d, count %d", dp.BucketCounts().Len(), dp.ExplicitBounds().Len(), n, dp.Count())
							}
							histBy[key(res, "", dp.Attributes())] += dp.Count()
						}
					} else {
						dps := m.ExponentialHistogram().DataPoints()
						for p := 0; p < dps.Len(); p++ {
							dp := dps.At(p)
							unique(res, m.Name(), dp.Attributes())
							n := dp.ZeroCount()
							for _, c := range dp.Positive().BucketCounts().AsRaw() {
								n += c
							}
							if n != dp.Count() || dp.Positive().BucketCounts().Len() > int(cfg.expoMaxSize()) {
								t.Fatalf("exponential point: %d buckets (max %d) hold %d, count %d", dp.Positive().BucketCounts().Len(), cfg.expoMaxSize(), n, dp.Count())
							}
							histBy[key(res, "", dp.Attributes())] += dp.Count()
						}
					}
				default:
					t.Fatalf("unexpected metric %q", m.Name())
				}
			}
		}
	}
	if !cfg.Histogram.Disable {
		for k, n := range callsBy {
			if histBy[k] != n {
				t.Fatalf("series %s: %d calls but its histogram counts %d", k, n, histBy[k])
			}
		}
		if len(histBy) != len(callsBy) {
			t.Fatalf("%d histogram series, %d calls series", len(histBy), len(callsBy))
		}
	}
	return calls, events
}

// attrKey renders m with value types, so that "1", 1 and 1.0 differ as they
// do for the connector, in key order, so that order does not matter.
func attrKey(m pcommon.Map) string {
	kv := make([]string, 0, m.Len())
	for k, v := range m.All() {
		kv = append(kv, fmt.Sprintf("%q=%s:%q", k, v.Type(), v.AsString()))
	}
	slices.Sort(kv)
	return strings.Join(kv, ",")
}
