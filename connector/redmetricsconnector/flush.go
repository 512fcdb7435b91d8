package redmetricsconnector // import "github.com/otelcsp/otelcsp/connector/redmetricsconnector"

import (
	"context"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.uber.org/zap"

	"github.com/otelcsp/otelcsp/connector/redmetricsconnector/internal/metadata"
)

const (
	metricCalls    = "calls"
	metricDuration = "duration"
	metricEvents   = "events"
)

// flush emits every series due and, for delta, resets them. Each shard is
// locked only while its series are copied into a flat snapshot (a few tens
// of nanoseconds per series); the pmetric data is built and handed on after
// every lock is released, so ingestion never waits for encoding or export.
// Expired series are dropped here; age is measured on the monotonic clock.
//
// A refusal by the next consumer is counted (points_refused) and logged,
// rate-limited; nothing is retried and nothing propagates: flushes run on
// the connector's own timer (and at Shutdown), never inside ConsumeTraces.
// Cumulative points lost that way are covered by the next flush's totals;
// delta points are lost.
func (c *connectorImp) flush(ctx context.Context) { c.flushAt(ctx, false) }

// flushAt is flush; final (at shutdown) first records every span still
// waiting in the service graph store as unpaired, since none will come.
func (c *connectorImp) flushAt(ctx context.Context, final bool) {
	c.flushMu.Lock()
	defer c.flushMu.Unlock()
	began := time.Now()

	at := c.stamp()
	now, mono := at.wall, at.mono
	prev := c.lastFlush
	c.lastFlush = now

	if c.sg != nil {
		// Spans past the TTL are recorded before the snapshot, so an idle
		// connector still reports its unpaired spans and virtual edges.
		st := c.expire(c.sg, at, final)
		if st.overflowed > 0 {
			c.tb.RedmetricsSpansOverflowed.Add(ctx, st.overflowed, c.own)
		}
		if st.created > 0 {
			c.tb.RedmetricsSeriesCreated.Add(ctx, st.created, c.own)
		}
	}

	// What concurrent callers counted in their lanes joins the shards
	// first, so the snapshot has every span accepted before the flush.
	c.drainLanes(at)

	sn := &snapshot{
		snaps: make([]snap, 0, c.lastSnaps),
		u64:   make([]uint64, 0, c.lastSnapU64),
	}
	var expired int64
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.Lock()
		sh.t.retain(func(s *series) bool {
			if c.expiration > 0 && mono-s.lastSeen >= c.expiration {
				// A series updated since the last flush (possible when a
				// batch's clock reading predates a long flush gap) is
				// reported once more so no span is lost.
				if s.dirty {
					sn.take(s)
				}
				c.live.Add(-1)
				if s.res != nil {
					c.res.release(s.res)
				}
				expired++
				return false
			}
			c.takeAndReset(sn, s)
			return true
		})
		sh.mu.Unlock()
	}

	c.overflowMu.Lock()
	for f, o := range c.overflow {
		if o == nil {
			continue
		}
		if c.expiration > 0 && mono-o.lastSeen >= c.expiration {
			if o.dirty {
				sn.take(o)
			}
			c.overflow[f] = nil
			continue
		}
		c.takeAndReset(sn, o)
	}
	c.overflowMu.Unlock()

	c.res.sweep()
	c.lastSnaps, c.lastSnapU64 = len(sn.snaps), len(sn.u64)

	b := newBuilder(c, pcommon.Timestamp(prev), pcommon.Timestamp(now))
	for i := range sn.snaps {
		b.emit(sn, &sn.snaps[i])
	}

	if expired > 0 {
		c.tb.RedmetricsSeriesExpired.Add(ctx, expired, c.own)
	}
	c.tb.RedmetricsSeriesActive.Record(ctx, c.live.Load(), c.own)
	if c.sg != nil {
		c.tb.RedmetricsGraphStoreSpans.Record(ctx, int64(c.sg.len()), c.own)
	}

	if n := b.md.DataPointCount(); n > 0 {
		if err := c.next.ConsumeMetrics(ctx, b.md); err != nil {
			c.tb.RedmetricsPointsRefused.Add(ctx, int64(n), c.own)
			c.refusals.Note(c.logger, c.clock.Monotonic(), int64(n), zap.Error(err))
		}
	}
	c.tb.RedmetricsFlushDuration.Record(ctx, time.Since(began).Seconds(), c.own)
}

// takeAndReset snapshots s if it has something to report and clears what
// belongs to one interval.
func (c *connectorImp) takeAndReset(sn *snapshot, s *series) {
	if !c.delta || s.count > 0 {
		sn.take(s)
	}
	s.endInterval(c.delta)
}

// snapshot is a flush's copy of the series it reports. A series' resource
// and dimension values never change after creation, so the snapshot keeps a
// pointer to them; the counters are copied.
type snapshot struct {
	snaps []snap
	u64   []uint64 // bucket counters of every snap, back to back
	ex    []exemplar
}

type snap struct {
	s          *series
	count      uint64
	sum        float64
	sum2       float64
	bOff, bLen int // counters in snapshot.u64
	exOff      int // exemplars in snapshot.ex
	exLen      int
	scale      int32
	offset     int32
	zero       uint64
	hist       uint8 // histNone, histExplicit or histExpo
}

const (
	histNone uint8 = iota
	histExplicit
	histExpo
)

func (sn *snapshot) take(s *series) {
	p := snap{s: s, count: s.count, sum: s.sum, sum2: s.edgeSum2(), bOff: len(sn.u64)}
	switch {
	case s.nctr != 0:
		p.hist = histExplicit
		sn.u64 = append(sn.u64, s.hist()...)
	case s.expo != nil:
		p.hist = histExpo
		sn.u64 = append(sn.u64, s.expo.counts...)
		p.scale, p.offset, p.zero = s.expo.scale, s.expo.offset, s.expo.zero
	}
	p.bLen = len(sn.u64) - p.bOff
	if ex := s.exemplarList(); len(ex) > 0 {
		p.exOff = len(sn.ex)
		sn.ex = append(sn.ex, ex...)
		p.exLen = len(ex)
	}
	sn.snaps = append(sn.snaps, p)
}

// builder assembles one flush's pmetric.Metrics, one ResourceMetrics per
// resource.
type builder struct {
	c      *connectorImp
	md     pmetric.Metrics
	byRes  map[*resource]*rmOut
	prev   pcommon.Timestamp
	now    pcommon.Timestamp
	attrs  pcommon.Map // scratch attribute map, copied into each point
	vals   []dimVal    // scratch: the values decoded from a series' key
	temp   pmetric.AggregationTemporality
	prefix string
}

type rmOut struct {
	sm                      pmetric.ScopeMetrics
	calls, duration, events pmetric.Metric
	hasSpan, hasEvents      bool
	graph                   [numGraphMetrics]pmetric.Metric
	hasGraph                [numGraphMetrics]bool
}

func newBuilder(c *connectorImp, prev, now pcommon.Timestamp) *builder {
	b := &builder{
		c: c, md: pmetric.NewMetrics(), byRes: map[*resource]*rmOut{},
		prev: prev, now: now, attrs: pcommon.NewMap(),
		temp: pmetric.AggregationTemporalityCumulative,
	}
	if c.delta {
		b.temp = pmetric.AggregationTemporalityDelta
	}
	if c.cfg.Namespace != "" {
		b.prefix = c.cfg.Namespace + "."
	}
	return b
}

func (b *builder) out(r *resource) *rmOut {
	if o, ok := b.byRes[r]; ok {
		return o
	}
	rm := b.md.ResourceMetrics().AppendEmpty()
	if r != nil {
		r.attrs.CopyTo(rm.Resource().Attributes())
	}
	sm := rm.ScopeMetrics().AppendEmpty()
	sm.Scope().SetName(metadata.ScopeName)
	o := &rmOut{sm: sm}
	b.byRes[r] = o
	return o
}

func (b *builder) sum(m pmetric.Metric, name string) {
	m.SetName(b.prefix + name)
	s := m.SetEmptySum()
	s.SetIsMonotonic(true)
	s.SetAggregationTemporality(b.temp)
}

func (b *builder) emit(sn *snapshot, p *snap) {
	s := p.s
	if s.family >= familyEdge {
		b.emitGraph(sn, p)
		return
	}
	o := b.out(s.res)
	b.attrs.Clear()
	if s.key() == "" {
		b.attrs.PutBool(overflowKey, true)
		// Overflow series carry the writer identity too (contrib's carry
		// only the overflow flag): several gateways' overflow series
		// would otherwise be one stream written by many.
		if b.c.spanPlan.instAt >= 0 {
			b.attrs.PutStr(collectorInstanceKey, b.c.instanceID)
		}
	} else {
		p := b.c.spanPlan
		if s.family == familyEvent {
			p = b.c.eventPlan
		}
		b.vals = decodeKey(s.key(), b.vals[:0])
		for i := range p.slots {
			if i == p.instAt {
				b.attrs.PutStr(collectorInstanceKey, b.c.instanceID)
			}
			putValue(b.attrs, p.slots[i].name, b.vals[i])
		}
		if p.instAt == len(p.slots) {
			b.attrs.PutStr(collectorInstanceKey, b.c.instanceID)
		}
	}
	start := pcommon.Timestamp(s.start)
	if b.c.delta {
		start = b.prev
	}

	if s.family == familyEvent {
		if !o.hasEvents {
			o.hasEvents = true
			o.events = o.sm.Metrics().AppendEmpty()
			b.sum(o.events, metricEvents)
		}
		dp := o.events.Sum().DataPoints().AppendEmpty()
		b.attrs.CopyTo(dp.Attributes())
		dp.SetStartTimestamp(start)
		dp.SetTimestamp(b.now)
		dp.SetIntValue(int64(p.count))
		b.exemplars(sn, p, dp.Exemplars())
		return
	}

	if !o.hasSpan {
		o.hasSpan = true
		o.calls = o.sm.Metrics().AppendEmpty()
		b.sum(o.calls, metricCalls)
		if !b.c.histDisabled {
			o.duration = o.sm.Metrics().AppendEmpty()
			o.duration.SetName(b.prefix + metricDuration)
			o.duration.SetUnit(string(b.c.cfg.Histogram.Unit))
			if b.c.expo {
				o.duration.SetEmptyExponentialHistogram().SetAggregationTemporality(b.temp)
			} else {
				o.duration.SetEmptyHistogram().SetAggregationTemporality(b.temp)
			}
		}
	}
	dp := o.calls.Sum().DataPoints().AppendEmpty()
	b.attrs.CopyTo(dp.Attributes())
	dp.SetStartTimestamp(start)
	dp.SetTimestamp(b.now)
	dp.SetIntValue(int64(p.count))
	b.exemplars(sn, p, dp.Exemplars())

	counts := sn.u64[p.bOff : p.bOff+p.bLen]
	// Only the snapshot and the series' immutable fields (resource, values,
	// family, start) are read here: the shard lock is no longer held.
	switch p.hist {
	case histExplicit:
		hp := o.duration.Histogram().DataPoints().AppendEmpty()
		b.attrs.CopyTo(hp.Attributes())
		hp.SetStartTimestamp(start)
		hp.SetTimestamp(b.now)
		hp.SetCount(p.count)
		hp.SetSum(p.sum)
		hp.ExplicitBounds().FromRaw(b.c.bounds)
		hp.BucketCounts().FromRaw(counts)
		b.exemplars(sn, p, hp.Exemplars())
	case histExpo:
		ep := o.duration.ExponentialHistogram().DataPoints().AppendEmpty()
		b.attrs.CopyTo(ep.Attributes())
		ep.SetStartTimestamp(start)
		ep.SetTimestamp(b.now)
		ep.SetCount(p.count)
		ep.SetSum(p.sum)
		ep.SetScale(p.scale)
		ep.SetZeroCount(p.zero)
		ep.Positive().SetOffset(p.offset)
		ep.Positive().BucketCounts().FromRaw(counts)
		b.exemplars(sn, p, ep.Exemplars())
	}
}

func (b *builder) exemplars(sn *snapshot, p *snap, es pmetric.ExemplarSlice) {
	if p.exLen == 0 {
		return
	}
	exs := sn.ex[p.exOff : p.exOff+p.exLen]
	es.EnsureCapacity(len(exs))
	for i := range exs {
		x := &exs[i]
		e := es.AppendEmpty()
		e.SetTraceID(x.traceID)
		e.SetSpanID(x.spanID)
		e.SetDoubleValue(x.value)
		e.SetTimestamp(x.ts)
	}
}
