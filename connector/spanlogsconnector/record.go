package spanlogsconnector // import "github.com/otelcsp/otelcsp/connector/spanlogsconnector"

import (
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

const (
	attrExceptionType    = "exception.type"
	attrExceptionMessage = "exception.message"
	attrExceptionStack   = "exception.stacktrace"
	attrSuppressedCount  = "spanlogs.suppressed_count"
	exceptionEventName   = "exception"
)

// exception is the exception event an exceptions rule's record is made of.
type exception struct {
	attrs pcommon.Map // the event's attributes, copied first onto the record
	typ   string      // exception.type
	msg   string      // exception.message
	ts    pcommon.Timestamp
}

func exceptionOf(ev ptrace.SpanEvent) exception {
	attrs := ev.Attributes()
	return exception{
		attrs: attrs,
		typ:   strAttr(attrs, attrExceptionType),
		msg:   strAttr(attrs, attrExceptionMessage),
		ts:    ev.Timestamp(),
	}
}

func strAttr(m pcommon.Map, k string) string {
	if v, ok := m.Get(k); ok && v.Type() == pcommon.ValueTypeStr {
		return v.Str()
	}
	return ""
}

// output builds the records of one ConsumeTraces call in one plog.Logs
// grouped like the input: one ResourceLogs per ResourceSpans and one
// ScopeLogs per ScopeSpans that produced at least one record. Containers are
// created on the first record that needs them, so spans that match nothing
// cost no allocation. An output is pooled with the call's scratch space.
type output struct {
	now int64 // observed timestamp of every record (unix ns, wall clock)

	logs    plog.Logs
	created bool

	rs       ptrace.ResourceSpans
	rl       plog.ResourceLogs
	rlExists bool

	ss       ptrace.ScopeSpans
	sl       plog.ScopeLogs
	slExists bool

	// All bodies of the batch are rendered into body and become one string
	// when the batch is finished (one allocation per batch, not per record);
	// pending says which part of it is each record's.
	body    []byte
	pending []pendingBody
}

type pendingBody struct {
	rec        plog.LogRecord
	start, end int
}

// maxPooledBody bounds the body buffer kept for reuse, so one huge batch
// does not pin its buffer in the pool forever.
const maxPooledBody = 1 << 20

func (o *output) reset(now int64) {
	*o = output{now: now, body: o.body[:0], pending: o.pending[:0]}
}

// release drops what the output must not keep while pooled: the records
// (they belong to the next consumer now) and an oversized body buffer.
func (o *output) release() {
	clear(o.pending)
	if cap(o.body) > maxPooledBody {
		o.body, o.pending = nil, nil
	}
	o.logs, o.rs, o.ss = plog.Logs{}, ptrace.ResourceSpans{}, ptrace.ScopeSpans{}
	o.rl, o.sl = plog.ResourceLogs{}, plog.ScopeLogs{}
}

func (o *output) startResource(rs ptrace.ResourceSpans) {
	o.rs = rs
	o.rlExists = false
}

func (o *output) startScope(ss ptrace.ScopeSpans) {
	o.ss = ss
	o.slExists = false
}

// add appends one record to the current scope's output and fills it from
// the span, the rule's verdict and, for exception records, the event.
func (o *output) add(r *rule, service string, span ptrace.Span, v verdict, exc *exception, suppressed int64) {
	lr := o.scope().LogRecords().AppendEmpty()
	ts := span.EndTimestamp()
	first := pcommon.Map{}
	in := renderInput{rule: r, service: service, resource: o.rs.Resource().Attributes(), span: span, threshold: v.threshold}
	if exc != nil {
		ts, first = exc.ts, exc.attrs
		in.excType, in.excMsg = exc.typ, exc.msg
		lr.SetEventName(exceptionEventName)
	}
	lr.SetTimestamp(ts)
	lr.SetObservedTimestamp(pcommon.Timestamp(o.now))
	lr.SetTraceID(span.TraceID())
	lr.SetSpanID(span.SpanID())
	// The low 8 bits of span flags are the W3C trace flags, which is what
	// a log record's flags hold; the higher span bits (remote parent) have
	// no meaning on a log record.
	lr.SetFlags(plog.LogRecordFlags(span.Flags() & 0xff))
	lr.SetSeverityNumber(v.severity.num)
	lr.SetSeverityText(v.severity.text)

	copyAttributes(lr.Attributes(), first, span.Attributes(), r.attrs, suppressed > 0)
	if suppressed > 0 {
		lr.Attributes().PutInt(attrSuppressedCount, suppressed)
	}

	start := len(o.body)
	o.body = r.body.render(o.body, &in)
	o.pending = append(o.pending, pendingBody{rec: lr, start: start, end: len(o.body)})
}

// scope returns the current scope's ScopeLogs, creating it, its
// ResourceLogs and the Logs as needed (resource, scope and schema URLs
// copied from the input).
func (o *output) scope() plog.ScopeLogs {
	if !o.created {
		o.logs = plog.NewLogs()
		o.created = true
	}
	if !o.rlExists {
		o.rl = o.logs.ResourceLogs().AppendEmpty()
		o.rs.Resource().CopyTo(o.rl.Resource())
		o.rl.SetSchemaUrl(o.rs.SchemaUrl())
		o.rlExists = true
	}
	if !o.slExists {
		o.sl = o.rl.ScopeLogs().AppendEmpty()
		o.ss.Scope().CopyTo(o.sl.Scope())
		o.sl.SetSchemaUrl(o.ss.SchemaUrl())
		o.slExists = true
	}
	return o.sl
}

// finish sets every record's body and returns the logs; false when no
// record was built.
func (o *output) finish() (plog.Logs, bool) {
	if !o.created {
		return plog.Logs{}, false
	}
	bodies := string(o.body)
	for i := range o.pending {
		p := &o.pending[i]
		p.rec.Body().SetStr(bodies[p.start:p.end])
	}
	return o.logs, true
}

// copyAttributes fills dst with first (all of it) then the span attributes
// the filter keeps, without overwriting keys first already set. The exact
// capacity is reserved once, so the attribute slice is allocated once and
// not at all when nothing is kept.
func copyAttributes(dst, first, span pcommon.Map, f *attrFilter, extra bool) {
	hasFirst := first != (pcommon.Map{}) && first.Len() > 0
	if f.all() && !hasFirst && !extra {
		if span.Len() > 0 {
			span.CopyTo(dst)
		}
		return
	}
	n, fromSpan := 0, !f.none
	switch {
	case f.none:
	case f.all():
		n = span.Len()
	default:
		span.Range(func(k string, _ pcommon.Value) bool {
			if f.keep(k) {
				n++
			}
			return true
		})
	}
	if hasFirst {
		n += first.Len()
	}
	if extra {
		n++
	}
	if n == 0 {
		return
	}
	dst.EnsureCapacity(n)
	if hasFirst {
		first.Range(func(k string, v pcommon.Value) bool {
			v.CopyTo(dst.PutEmpty(k))
			return true
		})
	}
	if !fromSpan {
		return
	}
	span.Range(func(k string, v pcommon.Value) bool {
		if !f.keep(k) {
			return true
		}
		// Span keys are unique, so a key dst already holds is one of
		// first's: looking in first scans fewer entries.
		if hasFirst {
			if _, exists := first.Get(k); exists {
				return true
			}
		}
		v.CopyTo(dst.PutEmpty(k))
		return true
	})
}
