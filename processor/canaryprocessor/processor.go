package canaryprocessor // import "github.com/otelcsp/otelcsp/processor/canaryprocessor"

import (
	"cmp"
	"context"
	"encoding/binary"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/otel/attribute"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/otelcsp/otelcsp/internal/clock"
	"github.com/otelcsp/otelcsp/internal/ratelog"
	"github.com/otelcsp/otelcsp/processor/canaryprocessor/internal/sequence"
)

// The synthetic receiver's canary attributes: synthetic.generator on every
// resource of a canary trace (and of its span-event log records),
// synthetic.sequence on the root span.
const (
	attrGenerator = "synthetic.generator"
	attrSequence  = "synthetic.sequence"
)

const (
	// maxValueLen cuts generator IDs and resource attribute values kept
	// per generator (key, log fields, metric attributes).
	maxValueLen = 256
	// logEvery is the period of each rate-limited log line.
	logEvery = 10 * time.Second
	// maxSweepInterval is the longest time between two sweeps for gaps
	// open for loss_after.
	maxSweepInterval = time.Second
)

// streamTag is what the processor keeps per generator besides the engine's
// state: its metric attributes and its log fields.
type streamTag struct {
	attrs  seqAttrs
	fields []zap.Field
}

type tracesProcessor struct {
	cfg    *Config
	logger *zap.Logger
	tel    *telemetry
	next   consumer.Traces
	clock  Clock
	// base is the origin of the monotonic times handed to ratelog.
	base time.Time

	lossLog    *ratelog.Limiter
	restartLog *ratelog.Limiter
	evictLog   *ratelog.Limiter

	// mu serialises the engine: one batch with canary data, or one sweep,
	// at a time. Batches without canary data never take it.
	mu         sync.Mutex
	tracker    *sequence.Tracker[*streamTag]
	evicted    int64
	key        []byte
	batch      []arrival
	generators atomic.Int64

	sweeps clock.Periodic
}

var _ processor.Traces = (*tracesProcessor)(nil)

func newTracesProcessor(set processor.Settings, cfg *Config, next consumer.Traces, clock Clock) (*tracesProcessor, error) {
	p := &tracesProcessor{
		cfg:    cfg,
		logger: set.Logger,
		next:   next,
		clock:  clock,
		base:   clock.Now(),
		lossLog: ratelog.New(logEvery, zapcore.WarnLevel,
			"Canary traces lost: sequence numbers that never arrived (reason: loss_after elapsed, pushed out of the window, too many gaps, or open when the generator restarted)", "lost_since_last_log"),
		restartLog: ratelog.New(logEvery, zapcore.InfoLevel,
			"Canary generator restarted: it numbers from 1 again under the same synthetic.generator", "restarts_since_last_log"),
		evictLog: ratelog.New(logEvery, zapcore.WarnLevel,
			"Canary generators forgotten: more than max_generators are followed; raise max_generators", "evicted_since_last_log"),
		tracker: sequence.NewTracker[*streamTag](sequence.Config{
			Window:     cfg.Window,
			LossAfter:  cfg.LossAfter,
			MaxStreams: cfg.MaxGenerators,
		}),
	}
	tel, err := newTelemetry(set, p.generators.Load)
	if err != nil {
		return nil, err
	}
	p.tel = tel
	return p, nil
}

// Capabilities: with drop, canary resources are removed from the data.
func (p *tracesProcessor) Capabilities() consumer.Capabilities {
	return consumer.Capabilities{MutatesData: p.cfg.Drop}
}

// sweepInterval is how often gaps are checked against loss_after: a
// quarter of it, at most a second.
func (p *tracesProcessor) sweepInterval() time.Duration {
	return min(maxSweepInterval, max(p.cfg.LossAfter/4, time.Millisecond))
}

// Start begins the sweep loop, which declares lost the gaps open for
// loss_after even when no canary data arrives.
func (p *tracesProcessor) Start(context.Context, component.Host) error {
	p.sweeps.Start(p.clock, p.sweepInterval(), func() { p.sweep(context.Background()) })
	return nil
}

// Shutdown stops the sweep loop. Gaps still open are neither lost nor
// received: this process will not learn which. Safe to call twice or
// without Start.
func (p *tracesProcessor) Shutdown(context.Context) error {
	if first, _ := p.sweeps.Stop(); first {
		p.tel.shutdown()
	}
	return nil
}

// isCanary says whether a resource is a canary generator's.
func isCanary(res pcommon.Resource) bool {
	_, ok := res.Attributes().Get(attrGenerator)
	return ok
}

// ConsumeTraces counts the canary traces of td and, with drop, removes
// them; the rest passes on untouched. Data without canary resources costs
// one attribute lookup per resource.
func (p *tracesProcessor) ConsumeTraces(ctx context.Context, td ptrace.Traces) error {
	rss := td.ResourceSpans()
	n := rss.Len()
	i := 0
	for i < n && !isCanary(rss.At(i).Resource()) {
		i++
	}
	if i == n {
		return p.next.ConsumeTraces(ctx, td)
	}
	p.observe(ctx, td, i)
	if !p.cfg.Drop {
		return p.next.ConsumeTraces(ctx, td)
	}
	rss.RemoveIf(func(rs ptrace.ResourceSpans) bool { return isCanary(rs.Resource()) })
	if rss.Len() == 0 {
		return nil
	}
	return p.next.ConsumeTraces(ctx, td)
}

// arrival is one numbered span of a batch.
type arrival struct {
	key      string
	seq, end int64
	gen      string
	res      pcommon.Resource
}

// observe hands every numbered span of td's canary resources (from the
// first one, at index from) to the engine. A batch arrives at one moment,
// and a generator's batch is laid out by resource, not by number, so the
// numbers of a batch are handed over in ascending order per generator:
// only what arrives in a later batch than a higher number is reordered.
func (p *tracesProcessor) observe(ctx context.Context, td ptrace.Traces, from int) {
	now := p.clock.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	batch := p.batch[:0]
	rss := td.ResourceSpans()
	for i := from; i < rss.Len(); i++ {
		rs := rss.At(i)
		gv, ok := rs.Resource().Attributes().Get(attrGenerator)
		if !ok {
			continue
		}
		var key, gen string
		for _, ss := range rs.ScopeSpans().All() {
			for _, span := range ss.Spans().All() {
				sv, ok := span.Attributes().Get(attrSequence)
				if !ok {
					continue
				}
				seq, ok := sequenceOf(sv)
				if !ok {
					p.tel.invalid(ctx)
					continue
				}
				if key == "" {
					gen = valueString(gv)
					key = p.streamKey(gen, rs.Resource())
				}
				end := span.EndTimestamp()
				rootEnd := int64(0)
				if end <= math.MaxInt64 {
					rootEnd = int64(end)
				}
				batch = append(batch, arrival{key: key, seq: seq, end: rootEnd, gen: gen, res: rs.Resource()})
			}
		}
	}
	slices.SortStableFunc(batch, func(a, b arrival) int {
		if c := strings.Compare(a.key, b.key); c != 0 {
			return c
		}
		return cmp.Compare(a.seq, b.seq)
	})
	for i := range batch {
		a := &batch[i]
		o := p.tracker.Observe(a.key, a.seq, a.end, now, func() *streamTag { return p.newTag(a.gen, a.res) })
		p.record(ctx, o, a.end, now)
	}
	clear(batch)
	p.batch = batch[:0]
	p.afterEngine(ctx)
}

// record counts one arrival and logs a restart.
func (p *tracesProcessor) record(ctx context.Context, o sequence.Observation[*streamTag], rootEnd int64, now time.Time) {
	latency := time.Duration(-1)
	if rootEnd > 0 {
		latency = max(0, now.Sub(time.Unix(0, rootEnd)))
	}
	p.tel.arrival(ctx, o, latency)
	if o.Restart {
		fields := o.Stream.Tag.fields
		p.restartLog.Note(p.logger, now.Sub(p.base), 1, append(fields[:len(fields):len(fields)],
			zap.Int64("synthetic.sequence", o.Stream.High()))...)
	}
}

// afterEngine reports what the engine declared lost or evicted. Called
// with mu held.
func (p *tracesProcessor) afterEngine(ctx context.Context) {
	mono := p.clock.Now().Sub(p.base)
	for _, l := range p.tracker.TakeLosses() {
		n := l.Count()
		p.tel.lost(ctx, l)
		fields := append(l.Stream.Tag.fields[:len(l.Stream.Tag.fields):len(l.Stream.Tag.fields)],
			zap.Int64("first_sequence", l.Lo), zap.Int64("last_sequence", l.Hi), zap.Int64("count", n),
			zap.String("reason", l.Reason.String()))
		p.lossLog.Note(p.logger, mono, n, fields...)
	}
	if ev := p.tracker.Evicted(); ev > p.evicted {
		d := ev - p.evicted
		p.evicted = ev
		p.tel.evicted(ctx, d)
		p.evictLog.Note(p.logger, mono, d, zap.Int("max_generators", p.cfg.MaxGenerators))
	}
	p.generators.Store(int64(p.tracker.Len()))
}

// sweep declares lost the gaps open for loss_after.
func (p *tracesProcessor) sweep(ctx context.Context) {
	now := p.clock.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	p.tracker.Sweep(now)
	p.afterEngine(ctx)
}

// streamKey identifies a generator's sequence: its ID and the values of
// the configured resource attributes, each length-prefixed so that no two
// lists of values make the same key.
func (p *tracesProcessor) streamKey(gen string, res pcommon.Resource) string {
	b := binary.AppendUvarint(p.key[:0], uint64(len(gen)))
	b = append(b, gen...)
	for _, name := range p.cfg.ResourceAttributes {
		v := ""
		if av, ok := res.Attributes().Get(name); ok {
			v = valueString(av)
		}
		b = binary.AppendUvarint(b, uint64(len(v)))
		b = append(b, v...)
	}
	p.key = b
	return string(b)
}

// newTag builds a new generator's metric attributes and log fields, once.
func (p *tracesProcessor) newTag(gen string, res pcommon.Resource) *streamTag {
	t := &streamTag{fields: make([]zap.Field, 0, 1+len(p.cfg.ResourceAttributes))}
	t.fields = append(t.fields, zap.String(attrGenerator, gen))
	kvs := make([]attribute.KeyValue, 0, len(p.cfg.ResourceAttributes)+1)
	for _, name := range p.cfg.ResourceAttributes {
		v := ""
		if av, ok := res.Attributes().Get(name); ok {
			v = strings.ToValidUTF8(valueString(av), "\uFFFD")
		}
		kvs = append(kvs, attribute.String(name, v))
		t.fields = append(t.fields, zap.String(name, v))
	}
	t.attrs = p.tel.sequenceAttrs(kvs)
	return t
}

// valueString is an attribute value as a string of at most maxValueLen
// bytes (cut at a rune boundary).
func valueString(v pcommon.Value) string {
	var s string
	if v.Type() == pcommon.ValueTypeStr {
		s = v.Str()
	} else {
		s = v.AsString()
	}
	if len(s) <= maxValueLen {
		return s
	}
	cut := maxValueLen
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return strings.Clone(s[:cut])
}

// sequenceOf reads synthetic.sequence: a whole number >= 1, as an int (what
// the synthetic receiver writes), a double or a decimal string (what a
// pipeline that rewrote it may have made of it).
func sequenceOf(v pcommon.Value) (int64, bool) {
	switch v.Type() {
	case pcommon.ValueTypeInt:
		n := v.Int()
		return n, n >= 1
	case pcommon.ValueTypeDouble:
		f := v.Double()
		if f >= 1 && f < math.Exp2(63) && f == math.Trunc(f) {
			return int64(f), true
		}
	case pcommon.ValueTypeStr:
		n, err := strconv.ParseInt(v.Str(), 10, 64)
		return n, err == nil && n >= 1
	}
	return 0, false
}

// logsProcessor removes (with drop) the log records of canary resources:
// the synthetic receiver's span-event logs of canary traces. They carry no
// sequence number, so there is nothing to count.
type logsProcessor struct {
	drop bool
	next consumer.Logs
}

var _ processor.Logs = (*logsProcessor)(nil)

func newLogsProcessor(cfg *Config, next consumer.Logs) *logsProcessor {
	return &logsProcessor{drop: cfg.Drop, next: next}
}

func (p *logsProcessor) Capabilities() consumer.Capabilities {
	return consumer.Capabilities{MutatesData: p.drop}
}

func (*logsProcessor) Start(context.Context, component.Host) error { return nil }
func (*logsProcessor) Shutdown(context.Context) error              { return nil }

// ConsumeLogs passes ld on, without its canary resources when drop is set.
func (p *logsProcessor) ConsumeLogs(ctx context.Context, ld plog.Logs) error {
	if !p.drop {
		return p.next.ConsumeLogs(ctx, ld)
	}
	rls := ld.ResourceLogs()
	n := rls.Len()
	i := 0
	for i < n && !isCanary(rls.At(i).Resource()) {
		i++
	}
	if i == n {
		return p.next.ConsumeLogs(ctx, ld)
	}
	rls.RemoveIf(func(rl plog.ResourceLogs) bool { return isCanary(rl.Resource()) })
	if rls.Len() == 0 {
		return nil
	}
	return p.next.ConsumeLogs(ctx, ld)
}
