package canaryprocessor

import (
	"context"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/otel/attribute"

	"github.com/otelcsp/otelcsp/internal/clock/clocktest"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// ownAttrs is the attribute set of a metric of the processor that
// metadatatest.NewSettings makes (ID "canary"), with kvs.
func ownAttrs(kvs ...attribute.KeyValue) attribute.Set {
	return attribute.NewSet(append(kvs, attribute.String(attrProcessor, "canary"))...)
}

// newManualClock is a clock the test moves; its ticker fires only on sweep.
func newManualClock() *clocktest.Fake { return clocktest.New(t0, 0) }

// sweep hands the sweep loop a tick, twice: the second returns only once
// the loop is done with the first one's sweep.
func sweep(t *testing.T, clk *clocktest.Fake) {
	t.Helper()
	clk.Tick(t)
	clk.Tick(t)
}

// canaryTrace is a trace as the synthetic receiver builds it in canary
// mode: synthetic.generator on every resource (two services here), the
// sequence on the root span, which ends at end; the child on the other
// service's resource.
type canaryTrace struct {
	gen   string
	seq   any // int64 as the receiver writes it; anything in fuzz tests
	end   time.Time
	attrs map[string]string // more resource attributes (k8s.pod.name, ...)
}

func appendCanary(td ptrace.Traces, c canaryTrace) {
	tid := pcommon.TraceID{1, byte(len(c.gen))}
	if n, ok := c.seq.(int64); ok {
		tid[8] = byte(n >> 8)
		tid[9] = byte(n)
	}
	root := pcommon.SpanID{1}
	for i, svc := range []string{"frontend", "catalog"} {
		rs := td.ResourceSpans().AppendEmpty()
		ra := rs.Resource().Attributes()
		ra.PutStr("service.name", svc)
		ra.PutStr(attrGenerator, c.gen)
		for k, v := range c.attrs {
			ra.PutStr(k, v)
		}
		s := rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
		s.SetTraceID(tid)
		s.SetStartTimestamp(pcommon.NewTimestampFromTime(c.end.Add(-10 * time.Millisecond)))
		s.SetEndTimestamp(pcommon.NewTimestampFromTime(c.end))
		if i == 0 {
			s.SetSpanID(root)
			s.SetName("GET /api/products")
			if c.seq != nil {
				_ = s.Attributes().FromRaw(map[string]any{attrSequence: c.seq, "http.request.method": "GET"})
			}
		} else {
			s.SetSpanID(pcommon.SpanID{2})
			s.SetParentSpanID(root)
			s.SetName("catalog.CatalogService/ListProducts")
			s.SetEndTimestamp(pcommon.NewTimestampFromTime(c.end.Add(-time.Millisecond)))
		}
	}
}

// canaries is a batch of canary traces of one generator, numbered seqs,
// the root of number n ending at t0 + n seconds.
func canaries(gen string, seqs ...int64) ptrace.Traces {
	td := ptrace.NewTraces()
	for _, s := range seqs {
		appendCanary(td, canaryTrace{gen: gen, seq: s, end: t0.Add(time.Duration(s) * time.Second)})
	}
	return td
}

// appTraces is ordinary traffic: resources spans of an app, no canary.
func appTraces(resources, spansPerResource int) ptrace.Traces {
	td := ptrace.NewTraces()
	for r := range resources {
		rs := td.ResourceSpans().AppendEmpty()
		ra := rs.Resource().Attributes()
		ra.PutStr("service.name", "checkout")
		ra.PutStr("service.namespace", "shop")
		ra.PutStr("service.version", "1.4.2")
		ra.PutStr("service.instance.id", "checkout-"+string(rune('a'+r%26)))
		ra.PutStr("deployment.environment.name", "production")
		ra.PutStr("telemetry.sdk.language", "go")
		ra.PutStr("k8s.pod.name", "checkout-7d9f8")
		ra.PutStr("k8s.node.name", "node-3")
		ss := rs.ScopeSpans().AppendEmpty()
		for i := range spansPerResource {
			s := ss.Spans().AppendEmpty()
			s.SetTraceID(pcommon.TraceID{2, byte(r), byte(i)})
			s.SetSpanID(pcommon.SpanID{2, byte(r), byte(i), 1})
			s.SetName("checkout.CheckoutService/PlaceOrder")
			s.Attributes().PutStr("rpc.system", "grpc")
			s.Attributes().PutInt("rpc.grpc.status_code", 0)
		}
	}
	return td
}

// traceRecorder is the next consumer: it keeps what it gets.
type traceRecorder struct {
	mu    sync.Mutex
	got   []ptrace.Traces
	err   error
	calls chan struct{}
}

func newTraceRecorder() *traceRecorder { return &traceRecorder{calls: make(chan struct{}, 1000)} }

func (r *traceRecorder) Capabilities() consumer.Capabilities { return consumer.Capabilities{} }

func (r *traceRecorder) ConsumeTraces(_ context.Context, td ptrace.Traces) error {
	r.mu.Lock()
	r.got = append(r.got, td)
	err := r.err
	r.mu.Unlock()
	select {
	case r.calls <- struct{}{}:
	default:
	}
	return err
}

func (r *traceRecorder) batches() []ptrace.Traces {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]ptrace.Traces(nil), r.got...)
}

// services lists the service.name of every resource the recorder got.
func (r *traceRecorder) services() []string {
	var out []string
	for _, td := range r.batches() {
		for _, rs := range td.ResourceSpans().All() {
			v, _ := rs.Resource().Attributes().Get("service.name")
			out = append(out, v.Str())
		}
	}
	return out
}

type logRecorder struct {
	mu  sync.Mutex
	got []plog.Logs
}

func (r *logRecorder) Capabilities() consumer.Capabilities { return consumer.Capabilities{} }

func (r *logRecorder) ConsumeLogs(_ context.Context, ld plog.Logs) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, ld)
	return nil
}

func (r *logRecorder) records() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, ld := range r.got {
		n += ld.LogRecordCount()
	}
	return n
}
