package redmetricsconnector

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// sgSpan is one span of a service graph test: trace, span and parent IDs
// are small numbers (0 = empty parent).
type sgSpan struct {
	service  string
	name     string
	kind     ptrace.SpanKind
	trace    byte
	id       byte
	parent   byte
	durMs    float64
	failed   bool
	attrs    map[string]any
	resAttrs map[string]any
}

func sgTrace(b byte) pcommon.TraceID {
	return pcommon.TraceID{b, 0xee, 1, 2, 3, 4, 5, 6, 7, 8, b, 9, 10, 11, 12, 13}
}
func sgSpanID(b byte) pcommon.SpanID { return pcommon.SpanID{b, 0xdd, 1, 2, 3, 4, 5, 6} }

// sgTraces puts each span in its own ResourceSpans, as spans of different
// services arrive.
func sgTraces(spans ...sgSpan) ptrace.Traces {
	td := ptrace.NewTraces()
	for _, s := range spans {
		rs := td.ResourceSpans().AppendEmpty()
		if s.resAttrs != nil {
			_ = rs.Resource().Attributes().FromRaw(s.resAttrs)
		}
		rs.Resource().Attributes().PutStr("service.name", s.service)
		sp := rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
		sp.SetName(s.name)
		if sp.Name() == "" {
			sp.SetName("op")
		}
		sp.SetKind(s.kind)
		sp.SetTraceID(sgTrace(s.trace))
		sp.SetSpanID(sgSpanID(s.id))
		if s.parent != 0 {
			sp.SetParentSpanID(sgSpanID(s.parent))
		}
		if s.failed {
			sp.Status().SetCode(ptrace.StatusCodeError)
		}
		start := pcommon.NewTimestampFromTime(t0)
		sp.SetStartTimestamp(start)
		sp.SetEndTimestamp(start + pcommon.Timestamp(s.durMs*1e6))
		if s.attrs != nil {
			_ = sp.Attributes().FromRaw(s.attrs)
		}
	}
	return td
}

func sgConfig() *Config {
	cfg := createDefaultConfig()
	cfg.ServiceGraph.Enabled = true
	return cfg
}

func consumeSG(t testing.TB, c *connectorImp, spans ...sgSpan) {
	t.Helper()
	require.NoError(t, c.ConsumeTraces(context.Background(), sgTraces(spans...)))
}

// graphOnly keeps the service graph's metrics (traces_service_graph_*).
func graphOnly(md pmetric.Metrics) pmetric.Metrics {
	out := pmetric.NewMetrics()
	md.CopyTo(out)
	out.ResourceMetrics().RemoveIf(func(rm pmetric.ResourceMetrics) bool {
		rm.ScopeMetrics().RemoveIf(func(sm pmetric.ScopeMetrics) bool {
			sm.Metrics().RemoveIf(func(m pmetric.Metric) bool { return len(m.Name()) < 20 || m.Name()[:20] != "traces_service_graph" })
			return sm.Metrics().Len() == 0
		})
		return rm.ScopeMetrics().Len() == 0
	})
	return out
}

// edge is one emitted edge, for assertions.
type edge struct {
	client, server, conn string
	failed               bool
}

type edgeStats struct {
	requests, failed    int64
	clientN, serverN    uint64
	clientSum, serverSm float64
}

func edges(t *testing.T, md pmetric.Metrics) map[edge]edgeStats {
	t.Helper()
	out := map[edge]edgeStats{}
	key := func(a pcommon.Map) edge {
		get := func(k string) string { v, _ := a.Get(k); return v.Str() }
		f, _ := a.Get("failed")
		return edge{get("client"), get("server"), get("connection_type"), f.Bool()}
	}
	for i := 0; i < md.ResourceMetrics().Len(); i++ {
		sms := md.ResourceMetrics().At(i).ScopeMetrics()
		for j := 0; j < sms.Len(); j++ {
			ms := sms.At(j).Metrics()
			for k := 0; k < ms.Len(); k++ {
				m := ms.At(k)
				switch m.Name() {
				case "traces_service_graph_request_total", "traces_service_graph_request_failed_total":
					for p := 0; p < m.Sum().DataPoints().Len(); p++ {
						dp := m.Sum().DataPoints().At(p)
						e := key(dp.Attributes())
						s := out[e]
						if m.Name() == "traces_service_graph_request_total" {
							s.requests = dp.IntValue()
						} else {
							s.failed = dp.IntValue()
						}
						out[e] = s
					}
				case "traces_service_graph_request_server", "traces_service_graph_request_client":
					require.Equal(t, "s", m.Unit())
					for p := 0; p < m.Histogram().DataPoints().Len(); p++ {
						dp := m.Histogram().DataPoints().At(p)
						require.Equal(t, defaultLatencyBucketsSec, dp.ExplicitBounds().AsRaw())
						e := key(dp.Attributes())
						s := out[e]
						if m.Name() == "traces_service_graph_request_server" {
							s.serverN, s.serverSm = dp.Count(), dp.Sum()
						} else {
							s.clientN, s.clientSum = dp.Count(), dp.Sum()
						}
						out[e] = s
					}
				}
			}
		}
	}
	return out
}

// sideCounts returns unpaired or dropped counts by "client/server/conn".
func sideCounts(md pmetric.Metrics, name string) map[string]int64 {
	out := map[string]int64{}
	for i := 0; i < md.ResourceMetrics().Len(); i++ {
		sms := md.ResourceMetrics().At(i).ScopeMetrics()
		for j := 0; j < sms.Len(); j++ {
			ms := sms.At(j).Metrics()
			for k := 0; k < ms.Len(); k++ {
				if m := ms.At(k); m.Name() == name {
					for p := 0; p < m.Sum().DataPoints().Len(); p++ {
						dp := m.Sum().DataPoints().At(p)
						a := dp.Attributes().AsRaw()
						out[fmt.Sprintf("%v/%v/%v", a["client"], a["server"], a["connection_type"])] += dp.IntValue()
					}
				}
			}
		}
	}
	return out
}

func TestServiceGraphOffByDefault(t *testing.T) {
	c, sink, clk := newTestConnector(t, createDefaultConfig())
	assert.Nil(t, c.sg)
	consumeSG(t, c,
		sgSpan{service: "front", kind: ptrace.SpanKindClient, trace: 1, id: 1, durMs: 10},
		sgSpan{service: "back", kind: ptrace.SpanKindServer, trace: 1, id: 2, parent: 1, durMs: 8},
	)
	flushNow(t, c, clk, time.Minute)
	assert.Equal(t, 0, graphOnly(allMetrics(sink)).DataPointCount())
	assert.Positive(t, allMetrics(sink).DataPointCount(), "RED still emitted")
}

// Client → server, the two spans in one batch, in either order, one
// failed: two edges (failed is part of the key, contrib #32018), with
// both latencies, and the RED metrics unchanged beside them.
func TestServiceGraphRequestResponse(t *testing.T) {
	cfg := sgConfig()
	cfg.ServiceGraph.Dimensions = []Dimension{{Name: "http.request.method"}, {Name: "deployment.environment", Default: strp("none")}}
	c, sink, clk := newTestConnector(t, cfg)
	get := map[string]any{"http.request.method": "GET"}
	consumeSG(t, c,
		sgSpan{service: "front", kind: ptrace.SpanKindClient, trace: 1, id: 1, durMs: 30, attrs: get, resAttrs: map[string]any{"deployment.environment": "prod"}},
		sgSpan{service: "back", kind: ptrace.SpanKindServer, trace: 1, id: 2, parent: 1, durMs: 20, attrs: get},
		// Server first, then its client; the server fails.
		sgSpan{service: "back", kind: ptrace.SpanKindServer, trace: 2, id: 2, parent: 1, durMs: 3, failed: true, attrs: get},
		sgSpan{service: "front", kind: ptrace.SpanKindClient, trace: 2, id: 1, durMs: 5, attrs: get, resAttrs: map[string]any{"deployment.environment": "prod"}},
	)
	assert.Equal(t, 0, c.sg.len(), "both pairs completed")
	flushNow(t, c, clk, time.Minute)
	md := allMetrics(sink)
	assertGolden(t, "graph_request_response", graphOnly(md))
	got := edges(t, md)
	assert.Equal(t, map[edge]edgeStats{
		{"front", "back", "", false}: {requests: 1, clientN: 1, serverN: 1, clientSum: 0.030, serverSm: 0.020},
		{"front", "back", "", true}:  {requests: 1, failed: 1, clientN: 1, serverN: 1, clientSum: 0.005, serverSm: 0.003},
	}, roundStats(got))
	// Labels in contrib's order, the writer after the fixed ones, then
	// the dimensions of each side.
	eachPoint(graphOnly(md), func(_ string, a pcommon.Map) {
		assert.Equal(t, []string{"client", "server", "connection_type", "failed", collectorInstanceKey,
			"client_http.request.method", "client_deployment.environment", "server_http.request.method", "server_deployment.environment"}, keysInOrder(a))
		env, _ := a.Get("server_deployment.environment")
		assert.Equal(t, "none", env.Str())
	})
	calls := findMetric(t, md, "front", "traces.span.metrics.calls")
	require.Equal(t, 1, calls.Sum().DataPoints().Len())
	assert.Equal(t, int64(2), calls.Sum().DataPoints().At(0).IntValue(), "RED counts the same spans")
}

func roundStats(m map[edge]edgeStats) map[edge]edgeStats {
	for k, v := range m {
		v.clientSum = float64(int64(v.clientSum*1e6+0.5)) / 1e6
		v.serverSm = float64(int64(v.serverSm*1e6+0.5)) / 1e6
		m[k] = v
	}
	return m
}

// A client span naming a database is an edge by itself; producer →
// consumer is a messaging edge.
func TestServiceGraphDatabaseAndMessaging(t *testing.T) {
	c, sink, clk := newTestConnector(t, sgConfig())
	consumeSG(t, c,
		sgSpan{service: "orders", kind: ptrace.SpanKindClient, trace: 1, id: 1, durMs: 4, attrs: map[string]any{"db.name": "ordersdb", "db.system": "postgresql"}},
		sgSpan{service: "orders", kind: ptrace.SpanKindProducer, trace: 2, id: 1, durMs: 1},
		sgSpan{service: "mailer", kind: ptrace.SpanKindConsumer, trace: 2, id: 2, parent: 1, durMs: 50},
	)
	assert.Equal(t, 0, c.sg.len())
	flushNow(t, c, clk, time.Minute)
	md := allMetrics(sink)
	assertGolden(t, "graph_database_messaging", graphOnly(md))
	assert.Equal(t, map[edge]edgeStats{
		{"orders", "ordersdb", "database", false}:       {requests: 1, clientN: 1, serverN: 1, clientSum: 0.004, serverSm: 0.004},
		{"orders", "mailer", "messaging_system", false}: {requests: 1, clientN: 1, serverN: 1, clientSum: 0.001, serverSm: 0.050},
	}, roundStats(edges(t, md)))
}

// Uninstrumented peers: a client span whose server never reports becomes
// an edge to its peer attribute (or "unknown") once the TTL passes; a
// root server span is called by "user"; a server span with a parent but
// no client, to the node its peer attribute names, or to none. Each
// expired span is counted as unpaired.
func TestServiceGraphVirtualNodes(t *testing.T) {
	c, sink, clk := newTestConnector(t, sgConfig())
	consumeSG(t, c,
		sgSpan{service: "front", kind: ptrace.SpanKindClient, trace: 1, id: 1, durMs: 7, attrs: map[string]any{"peer.service": "payments-saas", "server.address": "pay.example"}},
		sgSpan{service: "front", kind: ptrace.SpanKindClient, trace: 2, id: 1, durMs: 9, attrs: map[string]any{"server.address": "api.example"}},
		sgSpan{service: "front", kind: ptrace.SpanKindClient, trace: 3, id: 1, durMs: 2, failed: true},
		sgSpan{service: "front", kind: ptrace.SpanKindServer, trace: 4, id: 1, durMs: 40},
		sgSpan{service: "back", kind: ptrace.SpanKindServer, trace: 5, id: 2, parent: 1, durMs: 6, attrs: map[string]any{"peer.service": "legacy"}},
		sgSpan{service: "back", kind: ptrace.SpanKindServer, trace: 6, id: 2, parent: 1, durMs: 6},
		sgSpan{service: "queue-reader", kind: ptrace.SpanKindProducer, trace: 7, id: 1, durMs: 1, attrs: map[string]any{"messaging.system": "kafka"}},
	)
	assert.Equal(t, 6, c.sg.len(), "the root server span is an edge at once")
	flushNow(t, c, clk, time.Second)
	assert.Empty(t, edges(t, allMetrics(sink))[edge{"front", "payments-saas", "virtual_node", false}], "not before the TTL")
	sink.Reset()
	flushNow(t, c, clk, 2*time.Second)
	assert.Equal(t, 0, c.sg.len())
	md := allMetrics(sink)
	assertGolden(t, "graph_virtual_nodes", graphOnly(md))
	assert.Equal(t, map[edge]edgeStats{
		{"front", "payments-saas", "virtual_node", false}: {requests: 1, clientN: 1, clientSum: 0.007},
		{"front", "api.example", "virtual_node", false}:   {requests: 1, clientN: 1, clientSum: 0.009},
		{"front", "unknown", "virtual_node", true}:        {requests: 1, failed: 1, clientN: 1, clientSum: 0.002},
		{"user", "front", "virtual_node", false}:          {requests: 1, serverN: 1, serverSm: 0.040},
		{"legacy", "back", "virtual_node", false}:         {requests: 1, serverN: 1, serverSm: 0.006},
		{"queue-reader", "kafka", "virtual_node", false}:  {requests: 1, clientN: 1, clientSum: 0.001},
	}, roundStats(edges(t, md)))
	assert.Equal(t, map[string]int64{
		"front//": 3, "/back/": 2, "queue-reader//messaging_system": 1,
	}, sideCounts(md, "traces_service_graph_unpaired_spans_total"))
}

// Empty peer attributes disable virtual nodes: expired spans are only
// counted as unpaired.
func TestServiceGraphVirtualNodesDisabled(t *testing.T) {
	cfg := sgConfig()
	cfg.ServiceGraph.VirtualNodePeerAttributes = []string{}
	c, sink, clk := newTestConnector(t, cfg)
	consumeSG(t, c,
		sgSpan{service: "front", kind: ptrace.SpanKindClient, trace: 1, id: 1, durMs: 7, attrs: map[string]any{"peer.service": "x"}},
		sgSpan{service: "front", kind: ptrace.SpanKindServer, trace: 4, id: 1, durMs: 40},
	)
	flushNow(t, c, clk, time.Minute)
	md := allMetrics(sink)
	assert.Empty(t, edges(t, md))
	assert.Equal(t, map[string]int64{"front//": 1}, sideCounts(md, "traces_service_graph_unpaired_spans_total"))
}

// Both sides in different batches pair while within the TTL; past it,
// the first becomes unpaired (a virtual edge) and the late one waits in
// turn.
func TestServiceGraphPairingAcrossBatchesAndExpiry(t *testing.T) {
	c, sink, clk := newTestConnector(t, sgConfig())
	consumeSG(t, c, sgSpan{service: "front", kind: ptrace.SpanKindClient, trace: 1, id: 1, durMs: 10})
	clk.Advance(1900 * time.Millisecond)
	consumeSG(t, c, sgSpan{service: "back", kind: ptrace.SpanKindServer, trace: 1, id: 2, parent: 1, durMs: 8})
	assert.Equal(t, 0, c.sg.len(), "paired across batches")

	consumeSG(t, c, sgSpan{service: "front", kind: ptrace.SpanKindClient, trace: 2, id: 1, durMs: 10})
	clk.Advance(2 * time.Second)
	// The batch expires the client first, then stores the late server.
	consumeSG(t, c, sgSpan{service: "back", kind: ptrace.SpanKindServer, trace: 2, id: 2, parent: 1, durMs: 8})
	assert.Equal(t, 1, c.sg.len())
	flushNow(t, c, clk, 3*time.Second)
	md := allMetrics(sink)
	assertGolden(t, "graph_batches_expiry", graphOnly(md))
	assert.Equal(t, map[edge]edgeStats{
		{"front", "back", "", false}:                {requests: 1, clientN: 1, serverN: 1, clientSum: 0.010, serverSm: 0.008},
		{"front", "unknown", "virtual_node", false}: {requests: 1, clientN: 1, clientSum: 0.010},
	}, roundStats(edges(t, md)))
	assert.Equal(t, map[string]int64{"front//": 1, "/back/": 1}, sideCounts(md, "traces_service_graph_unpaired_spans_total"))
	assert.Equal(t, 0, c.sg.len())
}

// Shutdown records what still waits: no span is left uncounted.
func TestServiceGraphShutdownExpiresAll(t *testing.T) {
	c, sink, clk := newTestConnector(t, sgConfig())
	require.NoError(t, c.Start(context.Background(), nil))
	consumeSG(t, c, sgSpan{service: "front", kind: ptrace.SpanKindClient, trace: 1, id: 1, durMs: 10, attrs: map[string]any{"peer.service": "p"}})
	clk.Advance(time.Millisecond)
	require.NoError(t, c.Shutdown(context.Background()))
	md := allMetrics(sink)
	assert.Equal(t, int64(1), edges(t, md)[edge{"front", "p", "virtual_node", false}].requests)
	assert.Equal(t, 0, c.sg.len())
}

// Delta temporality applies to the graph too: only edges that got calls
// in the interval, starting at the previous flush.
func TestServiceGraphDelta(t *testing.T) {
	cfg := sgConfig()
	cfg.AggregationTemporality = Delta
	c, sink, clk := newTestConnector(t, cfg)
	pair := []sgSpan{
		{service: "front", kind: ptrace.SpanKindClient, trace: 1, id: 1, durMs: 10},
		{service: "back", kind: ptrace.SpanKindServer, trace: 1, id: 2, parent: 1, durMs: 8},
	}
	consumeSG(t, c, pair...)
	consumeSG(t, c, pair...)
	flushNow(t, c, clk, time.Minute)
	assert.Equal(t, int64(2), edges(t, allMetrics(sink))[edge{"front", "back", "", false}].requests)
	sink.Reset()
	consumeSG(t, c, pair...)
	flushNow(t, c, clk, time.Minute)
	md := graphOnly(allMetrics(sink))
	assert.Equal(t, int64(1), edges(t, md)[edge{"front", "back", "", false}].requests)
	eachPoint(md, func(_ string, _ pcommon.Map) {})
	dp := md.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().At(0).Sum().DataPoints().At(0)
	assert.Equal(t, t0.Add(time.Minute).UnixNano(), int64(dp.StartTimestamp()))
	assert.Equal(t, pmetric.AggregationTemporalityDelta, md.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().At(0).Sum().AggregationTemporality())
}

// Edges count against the one cardinality_limit: past it, they go to an
// overflow edge series (with the writer identity), RED's too.
func TestServiceGraphSharesCardinalityLimit(t *testing.T) {
	cfg := sgConfig()
	cfg.CardinalityLimit = 3
	c, sink, clk := newTestConnector(t, cfg)
	var spans []sgSpan
	for i := byte(1); i <= 5; i++ {
		spans = append(spans,
			sgSpan{service: "front", kind: ptrace.SpanKindClient, trace: i, id: 1, durMs: 1},
			sgSpan{service: fmt.Sprint("back-", i), kind: ptrace.SpanKindServer, trace: i, id: 2, parent: 1, durMs: 1})
	}
	consumeSG(t, c, spans...)
	assert.Equal(t, int64(3), c.live.Load())
	flushNow(t, c, clk, time.Minute)
	md := allMetrics(sink)
	var total, overflow int64
	eachPoint(graphOnly(md), func(name string, a pcommon.Map) {
		if name != "traces_service_graph_request_total" {
			return
		}
		id, ok := a.Get(collectorInstanceKey)
		require.True(t, ok)
		assert.Equal(t, testInstanceID, id.Str())
		if _, ok := a.Get(overflowKey); ok {
			overflow++
		}
		total++
	})
	assert.Equal(t, int64(1), overflow)
	var requests int64
	for _, s := range edges(t, md) {
		requests += s.requests
	}
	assert.Equal(t, int64(5), requests, "no call lost: the overflow series has the rest")
}

// exclude_dimensions: [collector.instance.id] removes the writer from the
// graph's series too.
func TestServiceGraphInstanceExcluded(t *testing.T) {
	cfg := sgConfig()
	cfg.ExcludeDimensions = []string{collectorInstanceKey}
	c, sink, clk := newTestConnector(t, cfg)
	consumeSG(t, c,
		sgSpan{service: "front", kind: ptrace.SpanKindClient, trace: 1, id: 1, durMs: 10},
		sgSpan{service: "back", kind: ptrace.SpanKindServer, trace: 1, id: 2, parent: 1, durMs: 8},
	)
	flushNow(t, c, clk, time.Minute)
	n := 0
	eachPoint(graphOnly(allMetrics(sink)), func(_ string, a pcommon.Map) {
		n++
		assert.Equal(t, []string{"client", "server", "connection_type", "failed"}, keysInOrder(a))
	})
	assert.Equal(t, 3, n)
}

// The flood: 1M client spans whose servers never come. The store never
// holds more than max_items, every span past it is counted as dropped,
// and a dropped span allocates nothing.
func TestServiceGraphUnpairedFlood(t *testing.T) {
	const total = 1_000_000
	const batch = 1000
	cfg := sgConfig()
	c, sink, clk := newTestConnector(t, cfg)
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "flooder")
	spans := rs.ScopeSpans().AppendEmpty().Spans()
	for i := 0; i < batch; i++ {
		sp := spans.AppendEmpty()
		sp.SetName("call")
		sp.SetKind(ptrace.SpanKindClient)
		sp.Attributes().PutStr("peer.service", "blackhole")
	}
	ctx := context.Background()
	var seq uint64
	renumber := func() {
		for i := 0; i < batch; i++ {
			seq++
			var tid pcommon.TraceID
			var sid pcommon.SpanID
			for b := 0; b < 8; b++ {
				tid[8+b] = byte(seq >> (8 * b))
				sid[b] = byte(seq >> (8 * b))
			}
			tid[0] = 1
			spans.At(i).SetTraceID(tid)
			spans.At(i).SetSpanID(sid)
		}
	}
	maxSeen := 0
	for seq < total {
		renumber()
		require.NoError(t, c.ConsumeTraces(ctx, td))
		if n := c.sg.len(); n > maxSeen {
			maxSeen = n
		}
	}
	assert.Equal(t, defaultStoreMaxItems, maxSeen, "the store fills up to max_items and no further")

	// Once full, a batch of new client spans is all dropped: no allocation.
	allocs := testing.AllocsPerRun(20, func() {
		renumber()
		_ = c.ConsumeTraces(ctx, td)
	})
	if !raceEnabled {
		assert.Zero(t, allocs, "allocations per batch of %d dropped spans", batch)
	}
	assert.Equal(t, defaultStoreMaxItems, c.sg.len())

	flushNow(t, c, clk, 3*time.Second)
	md := allMetrics(sink)
	dropped := sideCounts(md, "traces_service_graph_dropped_spans_total")["flooder//"]
	unpaired := sideCounts(md, "traces_service_graph_unpaired_spans_total")["flooder//"]
	assert.Equal(t, int64(defaultStoreMaxItems), unpaired)
	assert.Equal(t, int64(seq)-int64(defaultStoreMaxItems), dropped, "every span past the store is counted")
	assert.Equal(t, int64(defaultStoreMaxItems), edges(t, md)[edge{"flooder", "blackhole", "virtual_node", false}].requests)
	assert.Equal(t, 0, c.sg.len())
}

// The half-node cache is bounded too: spans with ever new dimension
// values keep it under twice the store's bound.
func TestServiceGraphNodeCacheBounded(t *testing.T) {
	cfg := sgConfig()
	cfg.ServiceGraph.Store.MaxItems = 100
	cfg.ServiceGraph.Dimensions = []Dimension{{Name: "u"}}
	c, _, clk := newTestConnector(t, cfg)
	for r := 0; r < 50; r++ {
		var spans []sgSpan
		for i := 0; i < 100; i++ {
			spans = append(spans, sgSpan{service: "s", kind: ptrace.SpanKindClient, trace: byte(i), id: byte(r + 1), attrs: map[string]any{"u": fmt.Sprint(r, "-", i)}})
		}
		consumeSG(t, c, spans...)
		clk.Advance(3 * time.Second)
		for i := range c.sg.stores {
			assert.LessOrEqual(t, c.sg.stores[i].nNode, 2*c.sg.stores[i].max+64)
			assert.LessOrEqual(t, len(c.sg.stores[i].nodes), 2*c.sg.stores[i].max+64)
			assert.Len(t, c.sg.stores[i].front, nodeFront, "the front never grows")
		}
	}
}

// Turning the graph on changes nothing in the RED metrics, and the graph
// of the benchmark's traces is the one drawn in its comment.
func TestServiceGraphLeavesREDUnchanged(t *testing.T) {
	out := map[bool]pmetric.Metrics{}
	for _, on := range []bool{false, true} {
		cfg := benchConfig()
		cfg.ServiceGraph.Enabled = on
		c, sink, clk := newTestConnector(t, cfg)
		require.NoError(t, c.ConsumeTraces(context.Background(), graphTraces(graphBenchTraces)))
		flushNow(t, c, clk, time.Minute)
		md := allMetrics(sink)
		red := pmetric.NewMetrics()
		md.CopyTo(red)
		red.ResourceMetrics().RemoveIf(func(rm pmetric.ResourceMetrics) bool {
			rm.ScopeMetrics().RemoveIf(func(sm pmetric.ScopeMetrics) bool {
				sm.Metrics().RemoveIf(func(m pmetric.Metric) bool {
					return graphOnly(md).MetricCount() > 0 && len(m.Name()) > 20 && m.Name()[:20] == "traces_service_graph"
				})
				return sm.Metrics().Len() == 0
			})
			return rm.ScopeMetrics().Len() == 0
		})
		out[on] = red
		if on {
			got := map[edge]int64{}
			for e, s := range edges(t, md) {
				got[e] = s.requests
			}
			assert.Equal(t, map[edge]int64{
				{"user", "frontend", "virtual_node", false}:         84,
				{"frontend", "checkout", "", false}:                 84,
				{"checkout", "payments", "", false}:                 79,
				{"checkout", "payments", "", true}:                  5,
				{"payments", "payments", "database", false}:         84,
				{"checkout", "shipping", "messaging_system", false}: 84,
				{"shipping", "inventory", "", false}:                84,
				{"inventory", "0", "database", false}:               84,
			}, got)
			assert.Equal(t, 0, c.sg.len())
		}
	}
	assert.Equal(t, normalize(t, out[false]), normalize(t, out[true]))
}

// A batch with more spans than its own table holds: the first clients
// pair in the batch, the later ones through the shared store, whichever
// side comes first; a client paired in the batch whose server comes twice
// counts the second server as waiting (it goes to the store).
func TestServiceGraphBatchLargerThanItsTable(t *testing.T) {
	const n = batchPairs + 500
	c, sink, clk := newTestConnector(t, sgConfig())
	td := ptrace.NewTraces()
	add := func(svc string, kind ptrace.SpanKind, parent bool) ptrace.SpanSlice {
		rs := td.ResourceSpans().AppendEmpty()
		rs.Resource().Attributes().PutStr("service.name", svc)
		spans := rs.ScopeSpans().AppendEmpty().Spans()
		for i := 0; i < n; i++ {
			sp := spans.AppendEmpty()
			sp.SetKind(kind)
			var tid pcommon.TraceID
			tid[0], tid[1], tid[15] = byte(i), byte(i>>8), 7
			sp.SetTraceID(tid)
			if parent {
				sp.SetSpanID(pcommon.SpanID{2, byte(i), byte(i >> 8)})
				sp.SetParentSpanID(pcommon.SpanID{1, byte(i), byte(i >> 8)})
			} else {
				sp.SetSpanID(pcommon.SpanID{1, byte(i), byte(i >> 8)})
			}
			sp.SetEndTimestamp(pcommon.Timestamp(time.Millisecond))
		}
		return spans
	}
	add("front", ptrace.SpanKindClient, false)
	add("back", ptrace.SpanKindServer, true)
	require.NoError(t, c.ConsumeTraces(context.Background(), td))
	assert.Equal(t, 0, c.sg.len(), "every pair completed")
	flushNow(t, c, clk, time.Minute)
	assert.Equal(t, int64(n), edges(t, allMetrics(sink))[edge{"front", "back", "", false}].requests)
}

// Concurrent batches pairing each other's spans, with flushes running at
// the same time: every call is counted once, none is lost, and the store
// ends empty (run with -race).
func TestServiceGraphConcurrentPairingAndFlush(t *testing.T) {
	const workers, rounds, perRound = 4, 50, 40
	cfg := sgConfig()
	cfg.AggregationTemporality = Delta
	c, sink, clk := newTestConnector(t, cfg)
	ctx := context.Background()
	batch := func(w, r int, server bool) ptrace.Traces {
		td := ptrace.NewTraces()
		rs := td.ResourceSpans().AppendEmpty()
		svc, kind := "front", ptrace.SpanKindClient
		if server {
			svc, kind = "back", ptrace.SpanKindServer
		}
		rs.Resource().Attributes().PutStr("service.name", svc)
		spans := rs.ScopeSpans().AppendEmpty().Spans()
		for i := 0; i < perRound; i++ {
			sp := spans.AppendEmpty()
			sp.SetKind(kind)
			var tid pcommon.TraceID
			tid[0], tid[1], tid[2], tid[15] = byte(w), byte(r), byte(i), byte(r*7+i)
			sp.SetTraceID(tid)
			if server {
				sp.SetSpanID(pcommon.SpanID{2})
				sp.SetParentSpanID(pcommon.SpanID{1})
			} else {
				sp.SetSpanID(pcommon.SpanID{1})
			}
			sp.SetEndTimestamp(pcommon.Timestamp(time.Millisecond))
		}
		return td
	}
	done := make(chan struct{})
	flushed := make(chan struct{})
	go func() {
		defer close(flushed)
		for {
			select {
			case <-done:
				return
			default:
				c.flush(ctx)
			}
		}
	}()
	errs := make(chan error, 2*workers)
	for w := 0; w < workers; w++ {
		// One goroutine sends a worker's clients, another its servers
		// (the other worker's order): pairs meet across calls and
		// goroutines, in the batch tables and the shared store.
		for _, server := range []bool{false, true} {
			go func(w int, server bool) {
				for r := 0; r < rounds; r++ {
					if err := c.ConsumeTraces(ctx, batch(w, r, server)); err != nil {
						errs <- err
						return
					}
				}
				errs <- nil
			}(w, server)
		}
	}
	for i := 0; i < 2*workers; i++ {
		require.NoError(t, <-errs)
	}
	close(done)
	<-flushed
	assert.Equal(t, 0, c.sg.len(), "every client met its server (TTL 2s, the manual clock did not move)")
	flushNow(t, c, clk, time.Second)
	var total int64
	for _, md := range sink.AllMetrics() {
		for e, s := range edges(t, md) {
			require.Equal(t, edge{"front", "back", "", false}, e)
			total += s.requests
		}
	}
	assert.Equal(t, int64(workers*rounds*perRound), total, "delta points add up to every call, once")
}

// A database name on the resource makes each of its client spans a
// database call (it is looked up once per ResourceSpans); the next
// resource's client spans, without one, pair with their servers.
func TestServiceGraphDatabaseNameFromResource(t *testing.T) {
	c, sink, clk := newTestConnector(t, sgConfig())
	td := sgTraces(
		sgSpan{service: "api", kind: ptrace.SpanKindClient, trace: 1, id: 1, durMs: 2, resAttrs: map[string]any{"db.name": "cache"}},
		sgSpan{service: "api", kind: ptrace.SpanKindClient, trace: 2, id: 1, durMs: 4},
		sgSpan{service: "users", kind: ptrace.SpanKindServer, trace: 2, id: 2, parent: 1, durMs: 3},
	)
	// A second client span in the first ResourceSpans, also without a
	// database name of its own, and one that carries its own.
	spans := td.ResourceSpans().At(0).ScopeSpans().At(0).Spans()
	spans.At(0).CopyTo(spans.AppendEmpty())
	spans.At(1).SetSpanID(sgSpanID(9))
	own := spans.AppendEmpty()
	spans.At(0).CopyTo(own)
	own.SetSpanID(sgSpanID(10))
	own.Attributes().PutStr("db.name", "orders")
	require.NoError(t, c.ConsumeTraces(context.Background(), td))
	assert.Equal(t, 0, c.sg.len())
	flushNow(t, c, clk, time.Minute)
	assert.Equal(t, map[edge]edgeStats{
		{"api", "cache", "database", false}:  {requests: 2, clientN: 2, serverN: 2, clientSum: 0.004, serverSm: 0.004},
		{"api", "orders", "database", false}: {requests: 1, clientN: 1, serverN: 1, clientSum: 0.002, serverSm: 0.002},
		{"api", "users", "", false}:          {requests: 1, clientN: 1, serverN: 1, clientSum: 0.004, serverSm: 0.003},
	}, roundStats(edges(t, allMetrics(sink))))
}

// attrKeys.first honours the order of the keys, not of the map, on both
// of its paths (one key; several in one pass), and its length test lets
// every length through, 63 bytes and more included.
func TestAttrKeysFirst(t *testing.T) {
	m := pcommon.NewMap()
	m.PutStr("c", "vc")
	m.PutInt("b", 7)
	m.PutStr("a", "va")
	long, longer := strings.Repeat("l", 63), strings.Repeat("l", 70)
	m.PutStr(longer, "vl")
	m.PutStr("dd", "vd")
	for keys, want := range map[string]string{
		"a,b,c": "va", "b,c": "7", "c,b": "vc", "x,c": "vc", "b": "7", "x": "", "x,y": "",
		"xx,dd": "vd", "x," + long: "", "x," + longer: "vl", long + ",c": "vc",
	} {
		k := newAttrKeys(strings.Split(keys, ","))
		got, ok := k.first(m)
		assert.Equal(t, want != "", ok, keys)
		assert.Equal(t, want, got, keys)
	}
}

// bucketNear is bucketIndex whatever its hint, on bounds and between them.
func TestBucketNear(t *testing.T) {
	bounds := defaultLatencyBucketsSec
	var vals []float64
	for _, b := range bounds {
		vals = append(vals, b, math.Nextafter(b, 0), math.Nextafter(b, 100), b/2)
	}
	vals = append(vals, 0, -1, 1e9, math.Inf(1), math.NaN())
	for _, v := range vals {
		for hint := 0; hint <= len(bounds); hint++ {
			require.Equal(t, bucketIndex(bounds, v), bucketNear(bounds, v, hint), "v=%v hint=%d", v, hint)
		}
	}
}

// Many sides whose hashes share slots of the cache's direct-mapped front
// still allocate nothing once interned: storing a span of a known side
// finds its node behind the front.
func TestServiceGraphKnownSidesAllocateNothing(t *testing.T) {
	cfg := sgConfig()
	c, _, _ := newTestConnector(t, cfg)
	const sides = 3 * nodeFront // more than the front holds, in every shard
	clients, servers := ptrace.NewTraces(), ptrace.NewTraces()
	for i := 0; i < sides; i++ {
		var tid pcommon.TraceID
		binary.LittleEndian.PutUint64(tid[:], uint64(i)+1)
		cl := clients.ResourceSpans().AppendEmpty()
		cl.Resource().Attributes().PutStr("service.name", fmt.Sprint("client-", i))
		sp := cl.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
		sp.SetKind(ptrace.SpanKindClient)
		sp.SetTraceID(tid)
		sp.SetSpanID(pcommon.SpanID{1})
		sv := servers.ResourceSpans().AppendEmpty()
		sv.Resource().Attributes().PutStr("service.name", "server")
		sp = sv.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
		sp.SetKind(ptrace.SpanKindServer)
		sp.SetTraceID(tid)
		sp.SetSpanID(pcommon.SpanID{2})
		sp.SetParentSpanID(pcommon.SpanID{1})
	}
	ctx := context.Background()
	round := func() {
		// Each client span waits in the store, and its server completes it.
		_ = c.ConsumeTraces(ctx, clients)
		_ = c.ConsumeTraces(ctx, servers)
	}
	round() // interns the sides, creates the series
	require.Zero(t, c.sg.len())
	allocs := testing.AllocsPerRun(10, round)
	if !raceEnabled {
		assert.Zero(t, allocs, "allocations per round of %d stored and completed calls", sides)
	}
	require.Zero(t, c.sg.len())
}
