package spanlogsconnector // import "github.com/otelcsp/otelcsp/connector/spanlogsconnector"

import (
	"context"
	"sync"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/otelcsp/otelcsp/connector/spanlogsconnector/internal/metadata"
	"github.com/otelcsp/otelcsp/internal/clock"
	"github.com/otelcsp/otelcsp/internal/ratelog"
)

const (
	attrServiceName      = "service.name"
	attrExceptionType    = "exception.type"
	attrExceptionMessage = "exception.message"
	attrExceptionStack   = "exception.stacktrace"
	attrSuppressedCount  = "spanlogs.suppressed_count"
	exceptionEventName   = "exception"
	unknownService       = "unknown_service"
)

// spanLogs is the traces→logs connector. It owns its rate limiter; per-call
// scratch space comes from a pool so concurrent ConsumeTraces calls share
// nothing but the limiter (behind its mutex) and the counters.
type spanLogs struct {
	cfg       *compiled
	next      consumer.Logs
	logger    *zap.Logger
	telemetry *metadata.TelemetryBuilder
	limiter   *limiter
	fp        fingerprinter
	// now is the wall clock (observed timestamps); mono is the monotonic
	// clock (token bucket refills, the refusal log's pace), so a wall-clock
	// step neither stops refilling nor refills every bucket at once. Both
	// are injected in tests.
	now  func() time.Time
	mono func() time.Duration

	// refusals paces the log of batches the logs pipeline refused.
	refusals *ratelog.Limiter

	// ruleOpts holds one pre-built option slice per rule: passing a slice
	// with ... does not allocate, building the option per call would.
	ruleOpts [][]metric.AddOption
	scratch  sync.Pool
	shutdown sync.Once
}

// scratch is the reusable state of one ConsumeTraces call.
type scratch struct {
	active     []*rule
	body       []byte
	pending    []pendingBody
	emitted    []int64 // per rule index
	suppressed []int64 // per rule index
	evicted    int64
}

// pendingBody remembers where a record's body sits in scratch.body: all
// bodies of a batch become one string at the end (one allocation per batch,
// not per record) and each record gets its substring.
type pendingBody struct {
	rec        plog.LogRecord
	start, end int
}

func newSpanLogs(set component.TelemetrySettings, cfg *compiled, next consumer.Logs) (*spanLogs, error) {
	tb, err := metadata.NewTelemetryBuilder(set)
	if err != nil {
		return nil, err
	}
	c := &spanLogs{
		cfg:       cfg,
		next:      next,
		logger:    set.Logger,
		telemetry: tb,
		limiter:   newLimiter(cfg.maxFingerprints),
		fp:        newFingerprinter(),
		now:       time.Now,
		mono:      clock.Real{}.Monotonic,
		refusals: ratelog.New(refusalLogEvery, zapcore.ErrorLevel,
			"Logs pipeline refused span log records; the records are dropped (the spans were not failed)", "records"),
	}
	for _, r := range cfg.rules {
		c.ruleOpts = append(c.ruleOpts, []metric.AddOption{metric.WithAttributeSet(attribute.NewSet(attribute.String("rule", r.name)))})
	}
	n := len(cfg.rules)
	c.scratch.New = func() any {
		return &scratch{
			active:     make([]*rule, 0, n),
			emitted:    make([]int64, n),
			suppressed: make([]int64, n),
		}
	}
	return c, nil
}

func (c *spanLogs) Start(context.Context, component.Host) error {
	names := make([]string, len(c.cfg.rules))
	for i, r := range c.cfg.rules {
		names[i] = r.name
	}
	c.logger.Info("spanlogs connector started", zap.Strings("rules", names), zap.Int("max_fingerprints", c.cfg.maxFingerprints))
	return nil
}

func (c *spanLogs) Shutdown(context.Context) error {
	c.shutdown.Do(c.telemetry.Shutdown)
	return nil
}

func (c *spanLogs) Capabilities() consumer.Capabilities {
	return consumer.Capabilities{MutatesData: false}
}

// ConsumeTraces walks the spans once, asks every rule whose service filter
// passes for the span's resource, and builds the records in place in one
// plog.Logs grouped like the input: one ResourceLogs per ResourceSpans and
// one ScopeLogs per ScopeSpans that produced at least one record.
//
// It never fails. A refusal by the logs pipeline is counted
// (records_refused) and logged, rate-limited, and the records are dropped:
// the spans have been, or are being, delivered to the traces pipeline's
// other consumers, and failing them would make the sender retry the whole
// batch (elsewhere, behind a fanout): traces stored twice, RED counted
// twice, for the sake of derived records.
func (c *spanLogs) ConsumeTraces(ctx context.Context, td ptrace.Traces) error {
	sc := c.scratch.Get().(*scratch)
	defer c.putScratch(sc)
	sc.body = sc.body[:0]
	sc.pending = sc.pending[:0]
	clear(sc.emitted)
	clear(sc.suppressed)
	sc.evicted = 0

	b := batch{c: c, sc: sc, now: c.now().UnixNano(), mono: int64(c.mono())}
	rss := td.ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		rs := rss.At(i)
		b.startResource(rs)
		if len(sc.active) == 0 {
			continue
		}
		sss := rs.ScopeSpans()
		for j := 0; j < sss.Len(); j++ {
			ss := sss.At(j)
			b.startScope(ss)
			spans := ss.Spans()
			for k := 0; k < spans.Len(); k++ {
				b.span(spans.At(k))
			}
		}
	}

	c.flushMetrics(ctx, sc)
	if !b.created {
		return nil
	}
	if len(sc.pending) > 0 {
		bodies := string(sc.body)
		for i := range sc.pending {
			p := &sc.pending[i]
			p.rec.Body().SetStr(bodies[p.start:p.end])
		}
		clear(sc.pending) // drop references to the records before pooling
	}
	if err := c.next.ConsumeLogs(ctx, b.logs); err != nil {
		c.refused(ctx, sc, b.logs.LogRecordCount(), err)
	}
	return nil
}

// refused counts a refused batch by rule (every record of the batch was
// refused: the batch's emitted counts are its records) and logs it.
func (c *spanLogs) refused(ctx context.Context, sc *scratch, records int, err error) {
	for i, n := range sc.emitted {
		if n > 0 {
			c.telemetry.SpanlogsRecordsRefused.Add(ctx, n, c.ruleOpts[i]...)
		}
	}
	c.refusals.Note(c.logger, c.mono(), int64(records), zap.Error(err))
}

// maxPooledBody bounds the body buffer kept for reuse, so one huge batch
// does not pin its buffer in the pool forever.
const maxPooledBody = 1 << 20

func (c *spanLogs) putScratch(sc *scratch) {
	if cap(sc.body) > maxPooledBody {
		sc.body = nil
		sc.pending = nil
	}
	c.scratch.Put(sc)
}

// flushMetrics adds the batch's counts once per rule rather than once per
// record. Records count as emitted when built, whether or not the next
// consumer then accepts them (those it refuses are counted again in
// records_refused).
func (c *spanLogs) flushMetrics(ctx context.Context, sc *scratch) {
	for i := range sc.emitted {
		if n := sc.emitted[i]; n > 0 {
			c.telemetry.SpanlogsRecordsEmitted.Add(ctx, n, c.ruleOpts[i]...)
		}
		if n := sc.suppressed[i]; n > 0 {
			c.telemetry.SpanlogsRecordsSuppressed.Add(ctx, n, c.ruleOpts[i]...)
		}
	}
	if sc.evicted > 0 {
		c.telemetry.SpanlogsFingerprintsEvicted.Add(ctx, sc.evicted)
	}
}

// batch is the cursor of one ConsumeTraces call: where we are in the input
// and which output containers exist so far (created lazily, so spans that
// match nothing cost no allocation).
type batch struct {
	c    *spanLogs
	sc   *scratch
	now  int64 // unix ns (wall): observed timestamps
	mono int64 // monotonic ns: token buckets

	logs    plog.Logs
	created bool

	rs       ptrace.ResourceSpans
	service  string
	rl       plog.ResourceLogs
	rlExists bool

	ss       ptrace.ScopeSpans
	sl       plog.ScopeLogs
	slExists bool
}

func (b *batch) startResource(rs ptrace.ResourceSpans) {
	b.rs = rs
	b.rlExists = false
	b.service = unknownService
	if v, ok := rs.Resource().Attributes().Get(attrServiceName); ok && v.Type() == pcommon.ValueTypeStr && v.Str() != "" {
		b.service = v.Str()
	}
	b.sc.active = b.sc.active[:0]
	for _, r := range b.c.cfg.rules {
		if r.servicePasses(b.service) {
			b.sc.active = append(b.sc.active, r)
		}
	}
}

func (b *batch) startScope(ss ptrace.ScopeSpans) {
	b.ss = ss
	b.slExists = false
}

// span runs the active rules on one span. Each rule tests its cheap,
// type-specific condition (status, duration, events) before the globs.
func (b *batch) span(span ptrace.Span) {
	for _, r := range b.sc.active {
		switch r.kind {
		case kindErrors:
			if span.Status().Code() == ptrace.StatusCodeError && r.passesSpan(span) {
				b.emitSpan(r, span, 0)
			}
		case kindSlow:
			d := spanDuration(span)
			if d <= r.minThreshold || !r.passesSpan(span) {
				continue
			}
			if th := r.thresholdFor(b.service, span.Name()); th > 0 && d > th {
				b.emitSpan(r, span, th)
			}
		case kindAll:
			if r.passesSpan(span) {
				b.emitSpan(r, span, 0)
			}
		case kindExceptions:
			events := span.Events()
			if events.Len() == 0 || !r.passesSpan(span) {
				continue
			}
			for e := 0; e < events.Len(); e++ {
				if ev := events.At(e); ev.Name() == exceptionEventName {
					b.emitException(r, span, ev)
				}
			}
		}
	}
}

func (b *batch) emitSpan(r *rule, span ptrace.Span, th time.Duration) {
	if r.rate != 0 {
		d := b.c.limiter.allow(b.c.fp.spanFP(b.service, r, span.Name()), r.rate, r.burst, b.mono)
		if !b.count(r, d) {
			return
		}
		b.emit(r, span, th, pcommon.Map{}, "", "", span.EndTimestamp(), d.suppressed)
		return
	}
	b.sc.emitted[r.index]++
	b.emit(r, span, th, pcommon.Map{}, "", "", span.EndTimestamp(), 0)
}

func (b *batch) emitException(r *rule, span ptrace.Span, ev ptrace.SpanEvent) {
	attrs := ev.Attributes()
	excType := strAttr(attrs, attrExceptionType)
	excMsg := strAttr(attrs, attrExceptionMessage)
	var suppressed int64
	if r.rate != 0 {
		stack := strAttr(attrs, attrExceptionStack)
		d := b.c.limiter.allow(b.c.fp.exceptionFP(b.service, r, excType, stack, span.Name()), r.rate, r.burst, b.mono)
		if !b.count(r, d) {
			return
		}
		suppressed = d.suppressed
	} else {
		b.sc.emitted[r.index]++
	}
	lr := b.emit(r, span, 0, attrs, excType, excMsg, ev.Timestamp(), suppressed)
	lr.SetEventName(exceptionEventName)
}

// count records a limiter decision in the batch counters.
func (b *batch) count(r *rule, d decision) bool {
	if d.evicted {
		b.sc.evicted++
	}
	if !d.allow {
		b.sc.suppressed[r.index]++
		return false
	}
	b.sc.emitted[r.index]++
	return true
}

func strAttr(m pcommon.Map, k string) string {
	if v, ok := m.Get(k); ok && v.Type() == pcommon.ValueTypeStr {
		return v.Str()
	}
	return ""
}

// emit appends one record to the current scope's output and fills it.
// first holds attributes that go before the span's (the exception event's).
func (b *batch) emit(r *rule, span ptrace.Span, th time.Duration, first pcommon.Map, excType, excMsg string, ts pcommon.Timestamp, suppressed int64) plog.LogRecord {
	if !b.created {
		b.logs = plog.NewLogs()
		b.created = true
	}
	if !b.rlExists {
		b.rl = b.logs.ResourceLogs().AppendEmpty()
		b.rs.Resource().CopyTo(b.rl.Resource())
		b.rl.SetSchemaUrl(b.rs.SchemaUrl())
		b.rlExists = true
	}
	if !b.slExists {
		b.sl = b.rl.ScopeLogs().AppendEmpty()
		b.ss.Scope().CopyTo(b.sl.Scope())
		b.sl.SetSchemaUrl(b.ss.SchemaUrl())
		b.slExists = true
	}
	lr := b.sl.LogRecords().AppendEmpty()
	lr.SetTimestamp(ts)
	lr.SetObservedTimestamp(pcommon.Timestamp(b.now))
	lr.SetTraceID(span.TraceID())
	lr.SetSpanID(span.SpanID())
	// The low 8 bits of span flags are the W3C trace flags, which is what
	// a log record's flags hold; the higher span bits (remote parent) have
	// no meaning on a log record.
	lr.SetFlags(plog.LogRecordFlags(span.Flags() & 0xff))
	sev := r.severityFor(span)
	lr.SetSeverityNumber(sev.num)
	lr.SetSeverityText(sev.text)

	copyAttributes(lr.Attributes(), first, span.Attributes(), r.attrs, suppressed > 0)
	if suppressed > 0 {
		lr.Attributes().PutInt(attrSuppressedCount, suppressed)
	}

	in := renderInput{
		rule: r, service: b.service, resource: b.rs.Resource().Attributes(), span: span,
		excType: excType, excMsg: excMsg, threshold: th,
	}
	start := len(b.sc.body)
	b.sc.body = r.body.render(b.sc.body, &in)
	b.sc.pending = append(b.sc.pending, pendingBody{rec: lr, start: start, end: len(b.sc.body)})
	return lr
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
		if hasFirst {
			if _, exists := dst.Get(k); exists {
				return true
			}
		}
		v.CopyTo(dst.PutEmpty(k))
		return true
	})
}
