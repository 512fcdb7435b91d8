package redmetricsconnector

import (
	"context"
	"encoding/binary"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// graphTraces is the service graph benchmark batch: traces of 12 spans
// through 5 services (frontend → checkout → payments → its database;
// checkout → a queue → shipping → inventory → its cache), one
// ResourceSpans per service as a batch split by resource arrives. Every
// client span finds its server in the batch, so the store is empty after
// each batch; the RED dimensions are the benchmarks' usual two.
func graphTraces(traces int) ptrace.Traces {
	td := ptrace.NewTraces()
	svcs := map[string]ptrace.SpanSlice{}
	order := []string{"frontend", "checkout", "payments", "shipping", "inventory"}
	for _, s := range order {
		rs := td.ResourceSpans().AppendEmpty()
		rs.Resource().Attributes().PutStr("service.name", s)
		rs.Resource().Attributes().PutStr("host.name", "host-1")
		svcs[s] = rs.ScopeSpans().AppendEmpty().Spans()
	}
	type sp struct {
		svc, name   string
		kind        ptrace.SpanKind
		id, parent  uint64
		ms          int
		attrs       map[string]string
		failedEvery int
	}
	tmpl := []sp{
		{svc: "frontend", name: "GET /checkout", kind: ptrace.SpanKindServer, id: 1, ms: 120},
		{svc: "frontend", name: "POST /cart/checkout", kind: ptrace.SpanKindClient, id: 2, parent: 1, ms: 100},
		{svc: "checkout", name: "POST /cart/checkout", kind: ptrace.SpanKindServer, id: 3, parent: 2, ms: 95},
		{svc: "checkout", name: "validate", kind: ptrace.SpanKindInternal, id: 4, parent: 3, ms: 2},
		{svc: "checkout", name: "POST /charge", kind: ptrace.SpanKindClient, id: 5, parent: 3, ms: 60, failedEvery: 17},
		{svc: "payments", name: "POST /charge", kind: ptrace.SpanKindServer, id: 6, parent: 5, ms: 55, failedEvery: 17},
		{svc: "payments", name: "INSERT charges", kind: ptrace.SpanKindClient, id: 7, parent: 6, ms: 8, attrs: map[string]string{"db.name": "payments", "db.system": "postgresql"}},
		{svc: "checkout", name: "orders publish", kind: ptrace.SpanKindProducer, id: 8, parent: 3, ms: 3, attrs: map[string]string{"messaging.system": "kafka"}},
		{svc: "shipping", name: "orders process", kind: ptrace.SpanKindConsumer, id: 9, parent: 8, ms: 40},
		{svc: "shipping", name: "GET /stock", kind: ptrace.SpanKindClient, id: 10, parent: 9, ms: 20},
		{svc: "inventory", name: "GET /stock", kind: ptrace.SpanKindServer, id: 11, parent: 10, ms: 18},
		{svc: "inventory", name: "GET stock:*", kind: ptrace.SpanKindClient, id: 12, parent: 11, ms: 1, attrs: map[string]string{"db.name": "0", "db.system": "redis"}},
	}
	methods := [...]string{"GET", "POST"}
	for tr := 0; tr < traces; tr++ {
		var tid pcommon.TraceID
		binary.LittleEndian.PutUint64(tid[:8], uint64(tr)*0x9E3779B97F4A7C15)
		binary.LittleEndian.PutUint64(tid[8:], uint64(tr+1)*0xC2B2AE3D27D4EB4F)
		for _, t := range tmpl {
			s := svcs[t.svc].AppendEmpty()
			s.SetName(t.name)
			s.SetKind(t.kind)
			s.SetTraceID(tid)
			var id pcommon.SpanID
			binary.LittleEndian.PutUint64(id[:], uint64(tr)<<8|t.id)
			s.SetSpanID(id)
			if t.parent != 0 {
				binary.LittleEndian.PutUint64(id[:], uint64(tr)<<8|t.parent)
				s.SetParentSpanID(id)
			}
			start := pcommon.NewTimestampFromTime(t0)
			s.SetStartTimestamp(start)
			s.SetEndTimestamp(start + pcommon.Timestamp(t.ms+tr%7)*pcommon.Timestamp(time.Millisecond))
			if t.failedEvery > 0 && tr%t.failedEvery == 0 {
				s.Status().SetCode(ptrace.StatusCodeError)
			}
			s.Attributes().PutStr("http.request.method", methods[tr%2])
			s.Attributes().PutInt("http.response.status_code", 200)
			for k, v := range t.attrs {
				s.Attributes().PutStr(k, v)
			}
		}
	}
	return td
}

// graphBenchTraces is 84 traces: 1,008 spans.
const graphBenchTraces = 84

// splitByResource returns one Traces per ResourceSpans of td, as each
// service's SDK exports its own batches.
func splitByResource(td ptrace.Traces) []ptrace.Traces {
	var out []ptrace.Traces
	for i := 0; i < td.ResourceSpans().Len(); i++ {
		one := ptrace.NewTraces()
		td.ResourceSpans().At(i).CopyTo(one.ResourceSpans().AppendEmpty())
		out = append(out, one)
	}
	return out
}

// BenchmarkServiceGraph: the same traces through redmetrics with the
// service graph off and on (RED + graph in one pass). batch=whole sends
// whole traces in one call (both sides of every call pair within the
// batch); batch=per-service sends each service's spans in a call of their
// own, so every call pairs through the shared store. allocs/op are per
// 1,008 spans.
func BenchmarkServiceGraph(b *testing.B) {
	for _, split := range []bool{false, true} {
		for _, on := range []bool{false, true} {
			name := "batch=whole"
			if split {
				name = "batch=per-service"
			}
			name += "/graph=off"
			if on {
				name = name[:len(name)-3] + "on"
			}
			b.Run(name, func(b *testing.B) {
				cfg := benchConfig()
				cfg.ServiceGraph.Enabled = on
				c := newBenchConnector(b, cfg)
				td := graphTraces(graphBenchTraces)
				spans := td.SpanCount()
				batches := []ptrace.Traces{td}
				if split {
					batches = splitByResource(td)
				}
				ctx := context.Background()
				for _, x := range batches {
					_ = c.ConsumeTraces(ctx, x)
				}
				b.ReportAllocs()
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					for _, x := range batches {
						_ = c.ConsumeTraces(ctx, x)
					}
				}
				b.StopTimer()
				ns := float64(b.Elapsed().Nanoseconds()) / float64(b.N*spans)
				b.ReportMetric(ns, "ns/span")
				b.ReportMetric(1e9/ns, "spans/s")
				if on && c.sg.len() != 0 {
					b.Fatalf("%d spans left unpaired", c.sg.len())
				}
			})
		}
	}
}

// BenchmarkServiceGraphDropped is the unpaired flood once the store is
// full: every batch is 1,000 new client spans, all dropped.
func BenchmarkServiceGraphDropped(b *testing.B) {
	cfg := benchConfig()
	cfg.ServiceGraph.Enabled = true
	cfg.ServiceGraph.Store.MaxItems = 1000
	cfg.ServiceGraph.Store.TTL = time.Hour
	c := newBenchConnector(b, cfg)
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "flooder")
	spans := rs.ScopeSpans().AppendEmpty().Spans()
	for i := 0; i < benchSpans; i++ {
		sp := spans.AppendEmpty()
		sp.SetName("call")
		sp.SetKind(ptrace.SpanKindClient)
		sp.Attributes().PutStr("peer.service", "blackhole")
	}
	var seq uint64
	renumber := func() {
		for i := 0; i < benchSpans; i++ {
			seq++
			var tid pcommon.TraceID
			binary.LittleEndian.PutUint64(tid[8:], seq*0x9E3779B97F4A7C15)
			spans.At(i).SetTraceID(tid)
			var sid pcommon.SpanID
			binary.LittleEndian.PutUint64(sid[:], seq)
			spans.At(i).SetSpanID(sid)
		}
	}
	ctx := context.Background()
	renumber()
	_ = c.ConsumeTraces(ctx, td) // fills the store
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		renumber()
		b.StartTimer()
		_ = c.ConsumeTraces(ctx, td)
	}
	b.StopTimer()
	reportSpans(b)
	if c.sg.len() != 1000 {
		b.Fatalf("store holds %d", c.sg.len())
	}
}
