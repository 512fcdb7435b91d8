package syntheticreceiver // import "github.com/otelcsp/otelcsp/receiver/syntheticreceiver"

import (
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// eventsToLogs turns every span event of td into one log record, the way an
// instrumented service logs what it also records on its spans: same
// resource, trace and span IDs for correlation, the event's time and
// attributes; exceptions are errors whose body is the exception message.
// td is only read.
func eventsToLogs(td ptrace.Traces) (plog.Logs, int) {
	ld := plog.NewLogs()
	n := 0
	rss := td.ResourceSpans()
	for i := range rss.Len() {
		rs := rss.At(i)
		var rl plog.ResourceLogs
		hasRL := false
		sss := rs.ScopeSpans()
		for j := range sss.Len() {
			ss := sss.At(j)
			var sl plog.ScopeLogs
			hasSL := false
			spans := ss.Spans()
			for k := range spans.Len() {
				span := spans.At(k)
				evs := span.Events()
				if evs.Len() == 0 {
					continue
				}
				if !hasRL {
					rl = ld.ResourceLogs().AppendEmpty()
					rs.Resource().CopyTo(rl.Resource())
					hasRL = true
				}
				if !hasSL {
					sl = rl.ScopeLogs().AppendEmpty()
					ss.Scope().CopyTo(sl.Scope())
					hasSL = true
				}
				for e := range evs.Len() {
					ev := evs.At(e)
					lr := sl.LogRecords().AppendEmpty()
					lr.SetTimestamp(ev.Timestamp())
					lr.SetObservedTimestamp(ev.Timestamp())
					lr.SetTraceID(span.TraceID())
					lr.SetSpanID(span.SpanID())
					lr.SetFlags(plog.DefaultLogRecordFlags.WithIsSampled(true))
					lr.SetEventName(ev.Name())
					ev.Attributes().CopyTo(lr.Attributes())
					if ev.Name() == eventException {
						lr.SetSeverityNumber(plog.SeverityNumberError)
						lr.SetSeverityText("ERROR")
						if msg, ok := ev.Attributes().Get(attrExcMessage); ok {
							lr.Body().SetStr(msg.Str())
						}
					} else {
						lr.SetSeverityNumber(plog.SeverityNumberInfo)
						lr.SetSeverityText("INFO")
						lr.Body().SetStr(ev.Name())
					}
					n++
				}
			}
		}
	}
	return ld, n
}
