package redmetricsconnector

import (
	"fmt"
	"regexp"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// eachPoint calls f with the attributes of every data point of md.
func eachPoint(md pmetric.Metrics, f func(metric string, attrs pcommon.Map)) {
	for i := 0; i < md.ResourceMetrics().Len(); i++ {
		sms := md.ResourceMetrics().At(i).ScopeMetrics()
		for j := 0; j < sms.Len(); j++ {
			ms := sms.At(j).Metrics()
			for k := 0; k < ms.Len(); k++ {
				m := ms.At(k)
				switch m.Type() {
				case pmetric.MetricTypeSum:
					for p := 0; p < m.Sum().DataPoints().Len(); p++ {
						f(m.Name(), m.Sum().DataPoints().At(p).Attributes())
					}
				case pmetric.MetricTypeHistogram:
					for p := 0; p < m.Histogram().DataPoints().Len(); p++ {
						f(m.Name(), m.Histogram().DataPoints().At(p).Attributes())
					}
				case pmetric.MetricTypeExponentialHistogram:
					for p := 0; p < m.ExponentialHistogram().DataPoints().Len(); p++ {
						f(m.Name(), m.ExponentialHistogram().DataPoints().At(p).Attributes())
					}
				}
			}
		}
	}
}

func keysInOrder(m pcommon.Map) []string {
	var out []string
	for k := range m.All() {
		out = append(out, k)
	}
	return out
}

// instanceConfig has every kind of series: span series with scope and
// configured dimensions, event series, and (limit 4) overflow series of
// both families.
func instanceConfig() *Config {
	cfg := createDefaultConfig()
	cfg.Dimensions = []Dimension{{Name: "http.method"}}
	cfg.IncludeInstrumentationScope = []string{"lib"}
	cfg.Events = EventsConfig{Enabled: true, Dimensions: []Dimension{{Name: "exception.type"}}}
	cfg.CardinalityLimit = 4
	return cfg
}

func instanceSpans() []spanSpec {
	var specs []spanSpec
	for i := 0; i < 6; i++ {
		specs = append(specs, spanSpec{
			service: "a", name: fmt.Sprint("op", i), durMs: 1, scope: "lib", scopeVer: "1.0",
			attrs:  map[string]any{"http.method": "GET"},
			events: []map[string]any{{"exception.type": "E"}},
		})
	}
	return specs
}

// Every point the connector emits (calls, duration, events, and the
// overflow series of each) carries collector.instance.id, right after the
// default dimensions as contrib places it.
func TestCollectorInstanceIDOnEverySeries(t *testing.T) {
	for _, expo := range []bool{false, true} {
		t.Run(fmt.Sprint("exponential=", expo), func(t *testing.T) {
			cfg := instanceConfig()
			if expo {
				cfg.Histogram.Exponential = &ExponentialHistogramConfig{}
			}
			c, sink, clk := newTestConnector(t, cfg)
			consume(t, c, instanceSpans()...)
			flushNow(t, c, clk, time.Minute)

			seen := map[string]int{}
			overflow := map[string]int{}
			eachPoint(allMetrics(sink), func(metric string, attrs pcommon.Map) {
				id, ok := attrs.Get(collectorInstanceKey)
				require.True(t, ok, "%s point without %s: %v", metric, collectorInstanceKey, attrs.AsRaw())
				assert.Equal(t, testInstanceID, id.Str())
				seen[metric]++
				if _, ok := attrs.Get(overflowKey); ok {
					overflow[metric]++
					assert.Equal(t, []string{overflowKey, collectorInstanceKey}, keysInOrder(attrs))
					return
				}
				want := []string{serviceNameKey, spanNameKey, spanKindKey, statusCodeKey, collectorInstanceKey, scopeNameKey, scopeVersionKey, "http.method"}
				if metric == "traces.span.metrics.events" {
					want = append(want, "exception.type")
				}
				assert.Equal(t, want, keysInOrder(attrs), metric)
			})
			for _, m := range []string{"traces.span.metrics.calls", "traces.span.metrics.duration", "traces.span.metrics.events"} {
				assert.Positive(t, seen[m], m)
				assert.Equal(t, 1, overflow[m], "%s: one overflow series, with the instance ID", m)
			}
		})
	}
}

func TestCollectorInstanceIDExcluded(t *testing.T) {
	cfg := instanceConfig()
	cfg.ExcludeDimensions = []string{collectorInstanceKey, statusCodeKey}
	c, sink, clk := newTestConnector(t, cfg)
	consume(t, c, instanceSpans()...)
	flushNow(t, c, clk, time.Minute)
	var points, overflow int
	eachPoint(allMetrics(sink), func(metric string, attrs pcommon.Map) {
		points++
		_, ok := attrs.Get(collectorInstanceKey)
		assert.False(t, ok, "%s: %v", metric, attrs.AsRaw())
		if _, ok := attrs.Get(overflowKey); ok {
			overflow++
		}
	})
	assert.Positive(t, points)
	assert.Equal(t, 3, overflow, "calls, duration and events overflow points, without the instance ID")
}

// Two gateways behind a traceID fanout see the same services: their
// series must differ by writer, or the backend gets one cumulative stream
// from two writers.
func TestCollectorInstanceIDSplitsWriters(t *testing.T) {
	spans := []spanSpec{{service: "a", name: "op", durMs: 1}}
	out := map[string]bool{}
	for _, id := range []string{"gw-1", "gw-2"} {
		set := testSettings()
		set.Resource.Attributes().PutStr(serviceInstanceIDKey, id)
		sink := new(consumertest.MetricsSink)
		clk := newManualClock()
		c, err := newConnector(set, createDefaultConfig(), sink, clk)
		require.NoError(t, err)
		consume(t, c, spans...)
		flushNow(t, c, clk, time.Minute)
		eachPoint(allMetrics(sink), func(_ string, attrs pcommon.Map) {
			v, _ := attrs.Get(collectorInstanceKey)
			out[v.Str()] = true
		})
	}
	assert.Equal(t, map[string]bool{"gw-1": true, "gw-2": true}, out)
}

func TestCollectorInstanceIDSource(t *testing.T) {
	res := func(kv map[string]any) pcommon.Resource {
		r := pcommon.NewResource()
		require.NoError(t, r.Attributes().FromRaw(kv))
		return r
	}
	// The collector's own instance ID.
	assert.Equal(t, "svc-id", collectorInstanceID(res(map[string]any{"service.name": "otelcsp", "service.instance.id": "svc-id"})))
	// A collector.instance.id set in the service's telemetry resource is
	// what contrib reads: it wins, so a config pinned for contrib keeps
	// its series.
	assert.Equal(t, "pinned", collectorInstanceID(res(map[string]any{"service.instance.id": "svc-id", "collector.instance.id": "pinned"})))
	assert.Equal(t, "svc-id", collectorInstanceID(res(map[string]any{"service.instance.id": "svc-id", "collector.instance.id": ""})))
	// Neither (a host that does not set the resource): a random UUID, one
	// per connector, as contrib does.
	uuidRe := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	a, b := collectorInstanceID(pcommon.NewResource()), collectorInstanceID(pcommon.NewResource())
	assert.Regexp(t, uuidRe, a)
	assert.Regexp(t, uuidRe, b)
	assert.NotEqual(t, a, b)
}

// The instance ID costs nothing per span: it is not part of the hashed
// values, so series keys are the same whatever its value.
func TestCollectorInstanceIDNotHashed(t *testing.T) {
	cfg := createDefaultConfig()
	c, _, _ := newTestConnector(t, cfg)
	assert.Len(t, c.spanPlan.slots, 4, "service.name, span.name, span.kind, status.code; the instance ID is no slot")
	assert.Equal(t, 4, c.spanPlan.instAt)
	consume(t, c, spanSpec{service: "a", name: "op", kind: ptrace.SpanKindServer, durMs: 1})
	assert.Equal(t, int64(1), c.live.Load())
}
