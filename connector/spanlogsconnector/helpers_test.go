package spanlogsconnector

import (
	"context"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/otelcsp/otelcsp/connector/spanlogsconnector/internal/metadata"
	"github.com/otelcsp/otelcsp/internal/clock/clocktest"
)

// testID is the connector ID the tests build connectors with.
var testID = component.NewID(metadata.Type)

// newFakeClock drives both of the connector's clocks: Advance moves the
// wall and the monotonic clock, StepWall only the wall clock (as NTP does).
func newFakeClock() *clocktest.Fake { return clocktest.New(baseTime.Add(time.Minute), 0) }

// baseTime is the fixed start of every test span; the fake clock starts here
// too so observed timestamps are reproducible in golden files.
var baseTime = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

type harness struct {
	c     *spanLogs
	sink  *consumertest.LogsSink
	tel   *componenttest.Telemetry
	clock *clocktest.Fake
}

func newHarness(t testing.TB, cfg *Config) *harness {
	t.Helper()
	comp, err := compileConfig(cfg)
	require.NoError(t, err)
	tel := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tel.Shutdown(context.Background())) })
	sink := new(consumertest.LogsSink)
	c, err := newSpanLogs(tel.NewTelemetrySettings(), testID, comp, sink)
	require.NoError(t, err)
	clock := newFakeClock()
	c.now = clock.Now
	c.mono = clock.Monotonic
	require.NoError(t, c.Start(context.Background(), componenttest.NewNopHost()))
	t.Cleanup(func() { require.NoError(t, c.Shutdown(context.Background())) })
	return &harness{c: c, sink: sink, tel: tel, clock: clock}
}

func (h *harness) consume(t testing.TB, td ptrace.Traces) {
	t.Helper()
	require.NoError(t, h.c.ConsumeTraces(context.Background(), td))
}

// records flattens everything the sink received.
func (h *harness) records() []plog.LogRecord {
	var out []plog.LogRecord
	for _, l := range h.sink.AllLogs() {
		for i := 0; i < l.ResourceLogs().Len(); i++ {
			sls := l.ResourceLogs().At(i).ScopeLogs()
			for j := 0; j < sls.Len(); j++ {
				lrs := sls.At(j).LogRecords()
				for k := 0; k < lrs.Len(); k++ {
					out = append(out, lrs.At(k))
				}
			}
		}
	}
	return out
}

func (h *harness) bodies() []string {
	var out []string
	for _, r := range h.records() {
		out = append(out, r.Body().Str())
	}
	return out
}

// counter returns the value of one of our sum metrics for a rule ("" for
// metrics without attributes); 0 when it was never recorded.
func (h *harness) counter(t testing.TB, name, rule string) int64 {
	t.Helper()
	m, err := h.tel.GetMetric(name)
	if err != nil {
		return 0
	}
	sum, ok := m.Data.(metricdata.Sum[int64])
	require.True(t, ok, "metric %s is %T", name, m.Data)
	var total int64
	for _, dp := range sum.DataPoints {
		id, _ := dp.Attributes.Value("connector")
		require.Equal(t, testID.String(), id.AsString(), "metric %s: connector attribute", name)
		v, _ := dp.Attributes.Value("rule")
		if rule == "" || v.AsString() == rule {
			total += dp.Value
		}
	}
	return total
}

type eventSpec struct {
	name    string
	excType string
	msg     string
	stack   string
	offset  time.Duration
}

type spanSpec struct {
	name   string
	kind   ptrace.SpanKind
	status ptrace.StatusCode
	msg    string
	dur    time.Duration
	attrs  map[string]any
	events []eventSpec
	flags  uint32
}

type idGen struct{ n byte }

func (g *idGen) next() (pcommon.TraceID, pcommon.SpanID) {
	g.n++
	return pcommon.TraceID{0xaa, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, g.n},
		pcommon.SpanID{0xbb, 0, 0, 0, 0, 0, 0, g.n}
}

// addSpans appends a ResourceSpans for service (nil service: no
// service.name) with one scope holding the spans.
func addSpans(td ptrace.Traces, g *idGen, service string, spans ...spanSpec) ptrace.ScopeSpans {
	rs := td.ResourceSpans().AppendEmpty()
	if service != "" {
		rs.Resource().Attributes().PutStr("service.name", service)
	}
	rs.Resource().Attributes().PutStr("deployment.environment.name", "test")
	ss := rs.ScopeSpans().AppendEmpty()
	ss.Scope().SetName("test-scope")
	ss.Scope().SetVersion("1.0.0")
	fillSpans(ss, g, spans...)
	return ss
}

func fillSpans(ss ptrace.ScopeSpans, g *idGen, spans ...spanSpec) {
	for _, s := range spans {
		sp := ss.Spans().AppendEmpty()
		tid, sid := g.next()
		sp.SetTraceID(tid)
		sp.SetSpanID(sid)
		sp.SetName(s.name)
		sp.SetKind(s.kind)
		sp.SetFlags(s.flags)
		sp.Status().SetCode(s.status)
		sp.Status().SetMessage(s.msg)
		sp.SetStartTimestamp(pcommon.NewTimestampFromTime(baseTime))
		sp.SetEndTimestamp(pcommon.NewTimestampFromTime(baseTime.Add(s.dur)))
		// Sorted, so golden files do not depend on map iteration order.
		for _, k := range slices.Sorted(maps.Keys(s.attrs)) {
			if err := sp.Attributes().PutEmpty(k).FromRaw(s.attrs[k]); err != nil {
				panic(err)
			}
		}
		for _, e := range s.events {
			ev := sp.Events().AppendEmpty()
			ev.SetName(e.name)
			ev.SetTimestamp(pcommon.NewTimestampFromTime(baseTime.Add(e.offset)))
			if e.excType != "" {
				ev.Attributes().PutStr("exception.type", e.excType)
			}
			if e.msg != "" {
				ev.Attributes().PutStr("exception.message", e.msg)
			}
			if e.stack != "" {
				ev.Attributes().PutStr("exception.stacktrace", e.stack)
			}
		}
	}
}

func traces(service string, spans ...spanSpec) ptrace.Traces {
	td := ptrace.NewTraces()
	addSpans(td, &idGen{}, service, spans...)
	return td
}

func errSpan(name string) spanSpec {
	return spanSpec{name: name, kind: ptrace.SpanKindServer, status: ptrace.StatusCodeError, msg: "boom", dur: 20 * time.Millisecond}
}

func excSpan(name, typ, stack string) spanSpec {
	return spanSpec{
		name: name, kind: ptrace.SpanKindServer, status: ptrace.StatusCodeError, dur: time.Millisecond,
		events: []eventSpec{{name: "exception", excType: typ, msg: "it broke", stack: stack}},
	}
}

func ptr[T any](v T) *T { return &v }
