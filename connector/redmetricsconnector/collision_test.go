package redmetricsconnector

import (
	"context"
	"fmt"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/otelcsp/otelcsp/internal/clock/clocktest"
)

// collidingSets are dimension sets a naive key (values joined, or values
// without presence) would merge.
var collidingSets = []spanSpec{
	{service: "a", name: "op", attrs: map[string]any{"x": "v"}},               // x=v, y absent
	{service: "a", name: "op", attrs: map[string]any{"y": "v"}},               // x absent, y=v
	{service: "a", name: "op", attrs: map[string]any{"x": ""}},                // x empty string
	{service: "a", name: "op", attrs: map[string]any{}},                       // both absent
	{service: "a", name: "op", attrs: map[string]any{"x": "v", "y": ""}},      // y empty vs absent
	{service: "a", name: "op", attrs: map[string]any{"x": "ab", "y": "c"}},    // "ab"+"c"
	{service: "a", name: "op", attrs: map[string]any{"x": "a", "y": "bc"}},    // "a"+"bc"
	{service: "a", name: "op", attrs: map[string]any{"x": int64(1)}},          // int 1
	{service: "a", name: "op", attrs: map[string]any{"x": "1"}},               // string "1"
	{service: "a", name: "op", attrs: map[string]any{"x": true}},              // bool true
	{service: "a", name: "op", attrs: map[string]any{"x": 1.0}},               // double 1
	{service: "a", name: "op\x00", attrs: map[string]any{"x": "v"}},           // separator in a value
	{service: "a", name: "op", kind: ptrace.SpanKindServer},                   // kind differs
	{service: "a", name: "op", status: ptrace.StatusCodeError},                // status differs
	{service: "b", name: "op", attrs: map[string]any{"x": "v"}},               // other resource
	{service: "a", name: "op", attrs: map[string]any{"x": "v"}, durMs: 1e-12}, // same set as the first
}

func collisionConfig() *Config {
	cfg := createDefaultConfig()
	cfg.Dimensions = []Dimension{{Name: "x"}, {Name: "y"}}
	return cfg
}

func countSeries(t *testing.T, c *connectorImp, sink interface{ Reset() }, clk *clocktest.Fake) int {
	t.Helper()
	n := 0
	for i := range c.shards {
		c.shards[i].t.each(func(*series) { n++ })
	}
	return n
}

func TestSeriesKeyNoCollisions(t *testing.T) {
	for _, forced := range []bool{false, true} {
		t.Run(fmt.Sprintf("all_hashes_equal=%v", forced), func(t *testing.T) {
			c, sink, clk := newTestConnector(t, collisionConfig())
			if forced {
				// Every series on one hash: only the value comparison separates them.
				c.testHash = func(uint64, []byte) uint64 { return 42 }
			}
			consume(t, c, collidingSets...)
			consume(t, c, collidingSets...)
			want := len(collidingSets) - 1
			assert.Equal(t, want, countSeries(t, c, sink, clk))
			assert.Equal(t, int64(want), c.live.Load())
			flushNow(t, c, clk, time.Minute)
			md := allMetrics(sink)
			var points int
			var total int64
			for i := 0; i < md.ResourceMetrics().Len(); i++ {
				for _, p := range sumPoints(md.ResourceMetrics().At(i).ScopeMetrics().At(0).Metrics().At(0)) {
					points++
					total += p.IntValue()
					if p.IntValue() != 2 {
						assert.Equal(t, int64(4), p.IntValue(), "only the duplicated set has 4: %v", p.Attributes().AsRaw())
					}
				}
			}
			assert.Equal(t, want, points)
			assert.Equal(t, int64(2*len(collidingSets)), total)
		})
	}
}

func TestHashSeparatesPresence(t *testing.T) {
	seed := newResources(maphashSeedForTest(), nil, 0).seed
	a := []dimVal{{t: vStr, s: "v"}, {}}
	b := []dimVal{{}, {t: vStr, s: "v"}}
	e := []dimVal{{t: vStr, s: ""}, {}}
	n := []dimVal{{}, {}}
	hash := func(res uint64, family uint8, v []dimVal) uint64 {
		return keyHash(seed, res, appendKey(nil, family, v))
	}
	hs := map[uint64]bool{}
	keys := map[string]bool{}
	for _, v := range [][]dimVal{a, b, e, n} {
		hs[hash(1, familySpan, v)] = true
		keys[string(appendKey(nil, familySpan, v))] = true
	}
	assert.Len(t, hs, 4)
	assert.Len(t, keys, 4, "keys separate presence too: equal keys are what merges series")
	assert.NotEqual(t, hash(1, familySpan, a), hash(1, familyEvent, a), "families never share a series")
	assert.NotEqual(t, hash(1, familySpan, a), hash(2, familySpan, a), "resources never share a series")
}

// TestConcurrentConsumeAndFlush runs ingestion from several goroutines while
// flushing; under -race this checks the sharded locking, and the totals
// check that no span is lost or double counted across flushes.
func TestConcurrentConsumeAndFlush(t *testing.T) {
	cfg := createDefaultConfig()
	cfg.AggregationTemporality = Delta
	cfg.Dimensions = []Dimension{{Name: "k"}}
	cfg.CardinalityLimit = 50
	cfg.Exemplars = ExemplarsConfig{Enabled: true, MaxPerDataPoint: 3}
	cfg.Events = EventsConfig{Enabled: true, Dimensions: []Dimension{{Name: "e"}}}
	c, sink, clk := newTestConnector(t, cfg)
	const workers, batches, perBatch = 4, 30, 40
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for b := 0; b < batches; b++ {
				specs := make([]spanSpec, perBatch)
				for i := range specs {
					specs[i] = spanSpec{service: fmt.Sprintf("s%d", i%3), name: fmt.Sprintf("op%d", (w+i)%7), durMs: float64(i), traceID: byte(i + 1),
						attrs: map[string]any{"k": fmt.Sprint((b * i) % 30)}, events: []map[string]any{{"e": "x"}}}
				}
				assert.NoError(t, c.ConsumeTraces(context.Background(), buildTraces(specs...)))
			}
		}(w)
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	for flushing := true; flushing; {
		select {
		case <-done:
			flushing = false
		default:
			flushNow(t, c, clk, time.Second)
		}
	}
	flushNow(t, c, clk, time.Second)
	var calls, events int64
	for _, md := range sink.AllMetrics() {
		for i := 0; i < md.ResourceMetrics().Len(); i++ {
			ms := md.ResourceMetrics().At(i).ScopeMetrics().At(0).Metrics()
			for j := 0; j < ms.Len(); j++ {
				m := ms.At(j)
				switch m.Name() {
				case "traces.span.metrics.calls":
					for _, p := range sumPoints(m) {
						calls += p.IntValue()
					}
				case "traces.span.metrics.events":
					for _, p := range sumPoints(m) {
						events += p.IntValue()
					}
				}
			}
		}
	}
	require.Equal(t, int64(workers*batches*perBatch), calls)
	require.Equal(t, int64(workers*batches*perBatch), events)
	assert.LessOrEqual(t, c.live.Load(), int64(50))
}

func TestFlushTimingWithInjectedClock(t *testing.T) {
	cfg := createDefaultConfig()
	cfg.MetricsFlushInterval = 15 * time.Second
	c, sink, clk := newTestConnector(t, cfg)
	require.NoError(t, c.Start(context.Background(), nil))
	defer func() { require.NoError(t, c.Shutdown(context.Background())) }()

	consume(t, c, spanSpec{service: "a", name: "op", durMs: 1})
	clk.Advance(14 * time.Second)
	// No tick yet: give the loop a chance to (wrongly) flush, then check.
	time.Sleep(20 * time.Millisecond)
	assert.Empty(t, sink.AllMetrics(), "no flush before the interval")

	clk.Advance(time.Second)
	require.Eventually(t, func() bool { return len(sink.AllMetrics()) == 1 }, 5*time.Second, time.Millisecond)
	dp := sink.AllMetrics()[0].ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().At(0).Sum().DataPoints().At(0)
	assert.Equal(t, t0.Add(15*time.Second).UnixNano(), int64(dp.Timestamp()), "stamped with the injected clock")

	clk.Advance(15 * time.Second)
	require.Eventually(t, func() bool { return len(sink.AllMetrics()) == 2 }, 5*time.Second, time.Millisecond)
}

// TestKeyRoundTrip: decodeKey gives back every value appendKey encoded, of
// every type, including long strings (multi-byte length prefixes), large
// numbers, and span kinds or status codes outside the known range.
func TestKeyRoundTrip(t *testing.T) {
	long := strings.Repeat("x", 300)
	vals := []dimVal{
		{t: vStr, s: "svc"}, {}, {t: vStr, s: ""}, {t: vStr, s: long},
		{t: vInt, n: uint64(1<<64 - 1)}, {t: vInt, n: 200}, {t: vDouble, n: math.Float64bits(-0.5)},
		{t: vBool, n: 1}, {t: vBool}, {t: vKind, n: 2}, {t: vKind, n: 1 << 31}, {t: vStatus, n: 300},
	}
	for _, family := range []uint8{familySpan, familyEvent, familyEdge} {
		key := string(appendKey(nil, family, vals))
		assert.Equal(t, family, key[0])
		assert.Equal(t, vals, decodeKey(key, nil))
	}
	assert.Empty(t, decodeKey(string(appendKey(nil, familySpan, nil)), nil))
}

// TestPlanKeyMatchesFill: the key a plan writes straight from the span is
// the key of the values fill reads, for every source (span, event,
// resource, default, absent) and value type.
func TestPlanKeyMatchesFill(t *testing.T) {
	cfg := createDefaultConfig()
	cfg.Dimensions = []Dimension{{Name: "s"}, {Name: "i"}, {Name: "d"}, {Name: "b"}, {Name: "m"}, {Name: "r"}, {Name: "e"}, {Name: "def", Default: strp("x")}, {Name: "none"}}
	cfg.IncludeInstrumentationScope = []string{"scope"}
	cfg.Events = EventsConfig{Enabled: true, Dimensions: []Dimension{{Name: "e"}}}
	span := ptrace.NewSpan()
	span.SetName("op")
	span.SetKind(ptrace.SpanKindClient)
	span.Status().SetCode(ptrace.StatusCodeError)
	a := span.Attributes()
	a.PutStr("s", "v")
	a.PutInt("i", -7)
	a.PutDouble("d", 1.5)
	a.PutBool("b", true)
	a.PutEmptyMap("m").PutStr("k", "v")
	res, ev := pcommon.NewMap(), pcommon.NewMap()
	res.PutStr("r", "from-resource")
	res.PutStr("s", "shadowed")
	ev.PutInt("e", 3)
	for _, p := range []*plan{newSpanPlan(cfg), newEventPlan(cfg)} {
		for _, sctx := range []spanCtx{
			{service: "svc", span: span, resAttrs: res},
			{service: "svc", span: span, resAttrs: res, eventAttrs: ev, hasEvent: true, scopeOK: true, scopeName: "scope", scopeVer: "1"},
		} {
			vals := make([]dimVal, len(p.slots))
			p.fill(&sctx, vals)
			assert.Equal(t, string(appendKey(nil, familyEvent, vals)), string(p.appendKey(&sctx, familyEvent, nil)))
			assert.Equal(t, vals, decodeKey(string(p.appendKey(&sctx, familySpan, nil)), nil))
		}
	}
}
