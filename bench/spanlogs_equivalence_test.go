package bench

import (
	"context"
	"fmt"
	"maps"
	"testing"

	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/plog"
)

// slRecord is what the equivalence test compares of one record.
type slRecord struct {
	resource  map[string]any
	scope     string
	severity  plog.SeverityNumber
	sevText   string
	attrs     map[string]any
	body      string
	eventName string
}

// slCollect indexes the records by trace ID, span ID and timestamp (one
// exception event each in the benchmark input).
func slCollect(t *testing.T, lds []plog.Logs) map[string]slRecord {
	t.Helper()
	out := map[string]slRecord{}
	for _, ld := range lds {
		for i := 0; i < ld.ResourceLogs().Len(); i++ {
			rl := ld.ResourceLogs().At(i)
			for j := 0; j < rl.ScopeLogs().Len(); j++ {
				sl := rl.ScopeLogs().At(j)
				for k := 0; k < sl.LogRecords().Len(); k++ {
					lr := sl.LogRecords().At(k)
					key := fmt.Sprintf("%s/%s/%d", lr.TraceID(), lr.SpanID(), lr.Timestamp())
					if _, dup := out[key]; dup {
						t.Fatalf("two records for %s", key)
					}
					out[key] = slRecord{
						resource: rl.Resource().Attributes().AsRaw(), scope: sl.Scope().Name(),
						severity: lr.SeverityNumber(), sevText: lr.SeverityText(),
						attrs: lr.Attributes().AsRaw(), body: lr.Body().AsString(), eventName: lr.EventName(),
					}
				}
			}
		}
	}
	return out
}

// TestSpanLogsEquivalent checks that BenchmarkSpanLogs compares the same
// output: from the benchmark batches, spanlogs (spanlogsExceptionsConfig)
// and plainExceptions emit records for the same exception events (trace
// ID, span ID, timestamp), with the same severity, resource, scope and
// attributes, except for these named differences:
//   - plainExceptions adds service.name, span.name, span.kind and
//     status.code attributes; spanlogs has the service in the resource and
//     the other three in the body, which the test checks instead;
//   - spanlogs sets a body, the event name `exception`, an observed
//     timestamp and the trace flags; plainExceptions sets none of them.
func TestSpanLogsEquivalent(t *testing.T) {
	for _, every := range []int{10, 1} {
		got := map[string]map[string]slRecord{}
		for _, im := range slImpls() {
			sink := new(consumertest.LogsSink)
			c := im.start(t, sink)
			if err := c.ConsumeTraces(context.Background(), slBatch(every)); err != nil {
				t.Fatal(err)
			}
			got[im.name] = slCollect(t, sink.AllLogs())
		}
		sl, plain := got["spanlogs"], got["plainexceptions"]
		if want := slBatchSpans / every; len(plain) != want || len(sl) != want {
			t.Fatalf("every %d: %d spanlogs records, %d plainexceptions records, want %d each", every, len(sl), len(plain), want)
		}
		for key, p := range plain {
			s, ok := sl[key]
			if !ok {
				t.Fatalf("spanlogs has no record for %s", key)
			}
			if s.severity != p.severity || s.sevText != p.sevText {
				t.Errorf("%s: severity %v %q, plainexceptions %v %q", key, s.severity, s.sevText, p.severity, p.sevText)
			}
			if !maps.Equal(anyStrings(s.resource), anyStrings(p.resource)) || s.scope != p.scope {
				t.Errorf("%s: resource %v scope %q, plainexceptions %v %q", key, s.resource, s.scope, p.resource, p.scope)
			}
			rest := maps.Clone(p.attrs)
			for _, k := range plainOnlyAttrs {
				delete(rest, k)
			}
			if !maps.Equal(anyStrings(s.attrs), anyStrings(rest)) {
				t.Errorf("%s: attributes\n spanlogs        %v\n plainexceptions %v (without %v)", key, s.attrs, rest, plainOnlyAttrs)
			}
			if s.resource["service.name"] != p.attrs["service.name"] {
				t.Errorf("%s: service %v in the resource, plainexceptions' attribute %v", key, s.resource["service.name"], p.attrs["service.name"])
			}
			wantBody := fmt.Sprintf("%v %v %s %s: %v: %v", p.attrs["service.name"], p.attrs["span.name"],
				lowerKind[p.attrs["span.kind"].(string)], upperStatus[p.attrs["status.code"].(string)],
				p.attrs["exception.type"], p.attrs["exception.message"])
			if s.body != wantBody {
				t.Errorf("%s: body %q, want %q (from plainexceptions' attributes)", key, s.body, wantBody)
			}
			if s.eventName != "exception" || p.eventName != "" {
				t.Errorf("%s: event names %q / %q", key, s.eventName, p.eventName)
			}
		}
	}
}

// lowerKind and upperStatus translate plainExceptions' OTLP enum names to
// the names spanlogs renders ({span.kind}, {status.code}); spelled out so
// the test does not trust the shared table it would be checking.
var (
	lowerKind   = map[string]string{"SPAN_KIND_SERVER": "server"}
	upperStatus = map[string]string{"STATUS_CODE_ERROR": "ERROR"}
)

// anyStrings renders raw attribute values for comparison (ints stay ints
// in AsRaw, but maps.Equal needs comparable values).
func anyStrings(m map[string]any) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = fmt.Sprintf("%T:%v", v, v)
	}
	return out
}
