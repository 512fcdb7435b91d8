package spanlogsconnector // import "github.com/otelcsp/otelcsp/connector/spanlogsconnector"

import (
	"context"
	"sync"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/otelcsp/otelcsp/internal/clock"
	"github.com/otelcsp/otelcsp/internal/ratelog"
)

const (
	attrServiceName = "service.name"
	unknownService  = "unknown_service"
)

// spanLogs is the traces→logs connector. It owns its rate limiter; per-call
// scratch space comes from a pool so concurrent ConsumeTraces calls share
// nothing but the limiter (behind its mutex) and the counters.
//
// One span's path, top to bottom: ConsumeTraces walks the input; span
// tests the span against the gates of the rules whose service filter
// passed and asks each rule it passes what it emits (gate, rule.match:
// rules.go); each record a rule asks for passes its fingerprint's rate
// limit (admit: fingerprint.go, limiter.go) and is built (output.add,
// record.go, rendering its body with template.go).
type spanLogs struct {
	cfg       *compiled
	next      consumer.Logs
	logger    *zap.Logger
	telemetry *telemetry
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

	scratch  sync.Pool // of *batch
	shutdown sync.Once
}

func newSpanLogs(set component.TelemetrySettings, id component.ID, cfg *compiled, next consumer.Logs) (*spanLogs, error) {
	tel, err := newTelemetry(set, id, cfg.rules)
	if err != nil {
		return nil, err
	}
	c := &spanLogs{
		cfg:       cfg,
		next:      next,
		logger:    set.Logger,
		telemetry: tel,
		limiter:   newLimiter(cfg.maxFingerprints),
		fp:        newFingerprinter(),
		now:       time.Now,
		mono:      clock.Real{}.Monotonic,
		refusals: ratelog.New(refusalLogEvery, zapcore.ErrorLevel,
			"Logs pipeline refused span log records; the records are dropped (the spans were not failed)", "records"),
	}
	n := len(cfg.rules)
	c.scratch.New = func() any {
		return &batch{c: c, active: make([]*rule, 0, n), counts: newCounts(n)}
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
	c.shutdown.Do(c.telemetry.shutdown)
	return nil
}

func (c *spanLogs) Capabilities() consumer.Capabilities {
	return consumer.Capabilities{MutatesData: false}
}

// ConsumeTraces walks the spans once and builds the records in one
// plog.Logs grouped like the input (see output).
//
// It never fails. A refusal by the logs pipeline is counted
// (records_refused) and logged, rate-limited, and the records are dropped:
// the spans have been, or are being, delivered to the traces pipeline's
// other consumers, and failing them would make the sender retry the whole
// batch (elsewhere, behind a fanout): traces stored twice, RED counted
// twice, for the sake of derived records.
func (c *spanLogs) ConsumeTraces(ctx context.Context, td ptrace.Traces) error {
	b := c.scratch.Get().(*batch)
	defer c.putBatch(b)
	b.reset(c.now().UnixNano(), int64(c.mono()))

	rss := td.ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		rs := rss.At(i)
		if !b.startResource(rs) {
			continue
		}
		sss := rs.ScopeSpans()
		for j := 0; j < sss.Len(); j++ {
			ss := sss.At(j)
			b.out.startScope(ss)
			spans := ss.Spans()
			for k := 0; k < spans.Len(); k++ {
				b.span(spans.At(k))
			}
		}
	}

	c.telemetry.batch(ctx, &b.counts)
	logs, ok := b.out.finish()
	if !ok {
		return nil
	}
	if err := c.next.ConsumeLogs(ctx, logs); err != nil {
		c.telemetry.refused(ctx, &b.counts)
		c.refusals.Note(c.logger, c.mono(), int64(logs.LogRecordCount()), zap.Error(err))
	}
	return nil
}

func (c *spanLogs) putBatch(b *batch) {
	b.out.release()
	c.scratch.Put(b)
}

// batch is the state of one ConsumeTraces call: the rules active for the
// current resource, the records built so far and the metric counts. It is
// pooled: its buffers are reused by later calls.
type batch struct {
	c    *spanLogs
	mono int64 // monotonic ns: token buckets

	service string
	active  []*rule // rules whose service filter passes for the resource
	gate    gate    // the active rules' gates joined

	out    output
	counts counts
}

func (b *batch) reset(now, mono int64) {
	b.mono = mono
	b.out.reset(now)
	b.counts.reset()
}

// startResource reads the resource's service and selects the rules whose
// service filter passes for it; false when none does.
func (b *batch) startResource(rs ptrace.ResourceSpans) bool {
	b.service = unknownService
	if v, ok := rs.Resource().Attributes().Get(attrServiceName); ok && v.Type() == pcommon.ValueTypeStr && v.Str() != "" {
		b.service = v.Str()
	}
	b.active = b.active[:0]
	b.gate = gate{over: maxDuration}
	for _, r := range b.c.cfg.rules {
		if r.servicePasses(b.service) {
			b.active = append(b.active, r)
			b.gate = b.gate.join(r.gate)
		}
	}
	b.out.startResource(rs)
	return len(b.active) > 0
}

// span runs the active rules on one span: a span the resource's joined
// gate turns away costs nothing more; otherwise each rule whose gate admits
// it says what it emits, and each record it asks for is built if the rate
// limit of its fingerprint admits it. exc is the exception event of an
// exceptions rule's record, nil for a span record.
func (b *batch) span(span ptrace.Span) {
	f := factsOf(span)
	if !b.gate.admits(f) {
		return
	}
	for _, r := range b.active {
		if !r.gate.admits(f) {
			continue
		}
		v := r.match(span, b.service)
		switch v.emit {
		case emitSpan:
			if suppressed, ok := b.admit(r, span, nil); ok {
				b.out.add(r, b.service, span, v, nil, suppressed)
			}
		case emitExceptions:
			events := span.Events()
			for e := 0; e < events.Len(); e++ {
				if ev := events.At(e); ev.Name() == exceptionEventName {
					exc := exceptionOf(ev)
					if suppressed, ok := b.admit(r, span, &exc); ok {
						b.out.add(r, b.service, span, v, &exc, suppressed)
					}
				}
			}
		}
	}
}

// admit asks the limiter about the record's fingerprint (rules with rate 0
// keep no state) and counts the answer. It returns how many records of the
// fingerprint were suppressed since the last one emitted.
func (b *batch) admit(r *rule, span ptrace.Span, exc *exception) (suppressed int64, ok bool) {
	if r.rate == 0 {
		b.counts.emitted[r.index]++
		return 0, true
	}
	var fp uint64
	if exc != nil {
		fp = b.c.fp.exceptionFP(b.service, r, exc.typ, strAttr(exc.attrs, attrExceptionStack), span.Name())
	} else {
		fp = b.c.fp.spanFP(b.service, r, span.Name())
	}
	d := b.c.limiter.allow(fp, r.rate, r.burst, b.mono)
	if d.evicted {
		b.counts.evicted++
	}
	if !d.allow {
		b.counts.suppressed[r.index]++
		return 0, false
	}
	b.counts.emitted[r.index]++
	return d.suppressed, true
}
