package bench

import (
	"context"
	"strconv"
	"testing"
	"time"

	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/connector"
	"go.opentelemetry.io/collector/connector/connectortest"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/otelcsp/otelcsp/connector/spanlogsconnector"
	"github.com/otelcsp/otelcsp/internal/spanname"
)

// Contrib's exceptions connector is the peer issue 20 names for spanlogs,
// but the module proxy serves no version of
// github.com/open-telemetry/opentelemetry-collector-contrib/connector/exceptionsconnector
// (404 for v0.161.0 and for the version list), so bench/ cannot build it.
// In its place stands plainExceptions below: our own traces→logs consumer
// that emits the output set the exceptions connector documents for its
// logs pipeline, written the plain way with pdata's API. It is not the
// peer; docs/benchmarks.md says so wherever it is compared.

const (
	slServices     = 10
	slSpansPerSvc  = 100
	slBatchSpans   = slServices * slSpansPerSvc
	slSpanAttrs    = 6
	slExcEventName = "exception"
)

const slStack = `java.lang.IllegalStateException: order %d failed
	at com.shop.Payments.charge(Payments.java:42)
	at com.shop.Checkout.pay(Checkout.java:17)
	at com.shop.Http.handle(Http.java:99)`

// slBatch is 1,000 server spans in 10 services (one ResourceSpans and one
// ScopeSpans each) with six attributes each. Every excEvery-th span has
// status ERROR and an `exception` event (exception.type, .message,
// .stacktrace) after a `log` event that is not an exception.
func slBatch(excEvery int) ptrace.Traces {
	td := ptrace.NewTraces()
	n := 0
	for s := range slServices {
		rs := td.ResourceSpans().AppendEmpty()
		rs.Resource().Attributes().PutStr("service.name", "service-"+strconv.Itoa(s))
		rs.Resource().Attributes().PutStr("host.name", "host-1")
		ss := rs.ScopeSpans().AppendEmpty()
		ss.Scope().SetName("io.opentelemetry.http")
		for i := range slSpansPerSvc {
			n++
			sp := ss.Spans().AppendEmpty()
			sp.SetTraceID(pcommon.TraceID{byte(n), byte(n >> 8), 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14})
			sp.SetSpanID(pcommon.SpanID{byte(n), byte(n >> 8), 1, 2, 3, 4, 5, 6})
			sp.SetName("GET /api/items/" + strconv.Itoa(i%20))
			sp.SetKind(ptrace.SpanKindServer)
			start := pcommon.NewTimestampFromTime(t0.Add(time.Duration(n) * time.Millisecond))
			sp.SetStartTimestamp(start)
			sp.SetEndTimestamp(start + pcommon.Timestamp(20*time.Millisecond))
			a := sp.Attributes()
			a.PutStr("http.request.method", "GET")
			a.PutStr("http.route", "/api/items/{id}")
			a.PutInt("http.response.status_code", 500)
			a.PutStr("url.path", "/api/items/"+strconv.Itoa(i))
			a.PutStr("user_agent.original", "bench/1.0")
			a.PutStr("server.address", "items.internal")
			if n%excEvery != 0 {
				continue
			}
			sp.Status().SetCode(ptrace.StatusCodeError)
			sp.Status().SetMessage("order failed")
			sp.Events().AppendEmpty().SetName("log")
			ev := sp.Events().AppendEmpty()
			ev.SetName(slExcEventName)
			ev.SetTimestamp(start + pcommon.Timestamp(time.Millisecond))
			ev.Attributes().PutStr("exception.type", "java.lang.IllegalStateException")
			ev.Attributes().PutStr("exception.message", "order "+strconv.Itoa(n)+" failed")
			ev.Attributes().PutStr("exception.stacktrace", slStack)
		}
	}
	return td
}

// plainExceptions emits what the exceptions connector's logs pipeline
// documents, one record per span event named `exception` in a resource
// with service.name: timestamp = event time, severity ERROR, trace and span
// ID; attributes: the span's, then service.name, span.name, span.kind and
// status.code (OTLP enum names), exception.type and exception.message (its
// default dimensions) and exception.stacktrace. One ResourceLogs (resource
// copied) and ScopeLogs (scope copied) per ScopeSpans. The plain way:
// a Map.CopyTo and a PutStr per added attribute.
type plainExceptions struct{ next consumer.Logs }

func (plainExceptions) Capabilities() consumer.Capabilities { return consumer.Capabilities{} }

func (p plainExceptions) ConsumeTraces(ctx context.Context, td ptrace.Traces) error {
	ld := plog.NewLogs()
	for i := 0; i < td.ResourceSpans().Len(); i++ {
		rs := td.ResourceSpans().At(i)
		service, ok := rs.Resource().Attributes().Get("service.name")
		if !ok {
			continue
		}
		for j := 0; j < rs.ScopeSpans().Len(); j++ {
			ss := rs.ScopeSpans().At(j)
			rl := ld.ResourceLogs().AppendEmpty()
			rs.Resource().CopyTo(rl.Resource())
			sl := rl.ScopeLogs().AppendEmpty()
			ss.Scope().CopyTo(sl.Scope())
			for k := 0; k < ss.Spans().Len(); k++ {
				span := ss.Spans().At(k)
				for e := 0; e < span.Events().Len(); e++ {
					ev := span.Events().At(e)
					if ev.Name() != slExcEventName {
						continue
					}
					lr := sl.LogRecords().AppendEmpty()
					lr.SetTimestamp(ev.Timestamp())
					lr.SetSeverityNumber(plog.SeverityNumberError)
					lr.SetSeverityText("ERROR")
					lr.SetTraceID(span.TraceID())
					lr.SetSpanID(span.SpanID())
					attrs := lr.Attributes()
					span.Attributes().CopyTo(attrs)
					attrs.PutStr("service.name", service.Str())
					attrs.PutStr("span.name", span.Name())
					attrs.PutStr("span.kind", spanname.KindProto(span.Kind()))
					attrs.PutStr("status.code", spanname.StatusProto(span.Status().Code()))
					for _, key := range [...]string{"exception.type", "exception.message", "exception.stacktrace"} {
						v, _ := ev.Attributes().Get(key)
						attrs.PutStr(key, v.Str())
					}
				}
			}
		}
	}
	return p.next.ConsumeLogs(ctx, ld)
}

// plainOnlyAttrs are the attributes plainExceptions adds that spanlogs
// does not: spanlogs keeps the service in the resource (copied onto every
// ResourceLogs) and renders span name, kind and status into the body when
// its template asks for them.
var plainOnlyAttrs = []string{"service.name", "span.name", "span.kind", "status.code"}

// spanlogsExceptionsConfig configures spanlogs to emit the records
// plainExceptions emits: one exceptions rule, no rate limit or
// deduplication (the exceptions connector has neither), every span
// attribute copied, and a body naming what the other side puts in
// attributes.
func spanlogsExceptionsConfig() *spanlogsconnector.Config {
	cfg := spanlogsconnector.NewFactory().CreateDefaultConfig().(*spanlogsconnector.Config)
	cfg.Rules = []spanlogsconnector.RuleConfig{{
		Name: "exceptions", Type: "exceptions",
		Body: "{service} {span.name} {span.kind} {status.code}: {exception.type}: {exception.message}",
	}}
	cfg.RatePerFingerprint = 0
	return cfg
}

type slImpl struct {
	name  string
	start func(tb testing.TB, next consumer.Logs) consumer.Traces
}

func slImpls() []slImpl {
	return []slImpl{
		{"spanlogs", func(tb testing.TB, next consumer.Logs) consumer.Traces {
			tb.Helper()
			f := spanlogsconnector.NewFactory()
			c, err := f.CreateTracesToLogs(context.Background(), connectortest.NewNopSettings(f.Type()), spanlogsExceptionsConfig(), next)
			if err != nil {
				tb.Fatal(err)
			}
			startConnector(tb, c)
			return c
		}},
		{"plainexceptions", func(_ testing.TB, next consumer.Logs) consumer.Traces {
			return plainExceptions{next: next}
		}},
	}
}

func startConnector(tb testing.TB, c connector.Traces) {
	tb.Helper()
	ctx := context.Background()
	if err := c.Start(ctx, componenttest.NewNopHost()); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = c.Shutdown(ctx) })
}

// recordCount counts the records it is given and drops them, as a fast
// exporter would.
type recordCount struct{ records int }

func (*recordCount) Capabilities() consumer.Capabilities { return consumer.Capabilities{} }

func (r *recordCount) ConsumeLogs(_ context.Context, ld plog.Logs) error {
	r.records += ld.LogRecordCount()
	return nil
}

// BenchmarkSpanLogs feeds the same 1,000-span batch to spanlogs (configured
// as spanlogsExceptionsConfig) and to plainExceptions. input=sparse: one
// span in ten carries an exception (100 records a batch); input=dense:
// every span does (1,000 records). Each record copies 9 attributes in
// spanlogs (6 span + 3 exception) and 13 in plainExceptions (6 span + 7
// added).
func BenchmarkSpanLogs(b *testing.B) {
	for _, input := range []struct {
		name  string
		every int
	}{{"sparse", 10}, {"dense", 1}} {
		for _, im := range slImpls() {
			b.Run("input="+input.name+"/impl="+im.name, func(b *testing.B) {
				ctx := context.Background()
				sink := new(recordCount)
				c := im.start(b, sink)
				td := slBatch(input.every)
				if err := c.ConsumeTraces(ctx, td); err != nil { // warm pools
					b.Fatal(err)
				}
				sink.records = 0
				b.ReportAllocs()
				b.ResetTimer()
				for range b.N {
					if err := c.ConsumeTraces(ctx, td); err != nil {
						b.Fatal(err)
					}
				}
				b.StopTimer()
				spans := float64(b.N) * slBatchSpans
				b.ReportMetric(spans/b.Elapsed().Seconds(), "spans/s")
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/spans, "ns/span")
				b.ReportMetric(float64(sink.records)/float64(b.N), "records/op")
			})
		}
	}
}
