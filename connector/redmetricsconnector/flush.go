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

// flush emits every series due and, for delta, resets them. Shards are
// locked one at a time, so ingestion waits at most for one shard's share of
// the flush, never for the whole of it. Expired series are dropped here.
func (c *connectorImp) flush(ctx context.Context) {
	c.flushMu.Lock()
	defer c.flushMu.Unlock()
	began := time.Now()

	nowT := c.clock.Now()
	now := nowT.UnixNano()
	prev := c.lastFlush
	c.lastFlush = now

	b := newBuilder(c, pcommon.Timestamp(prev), pcommon.Timestamp(now))
	var expired int64
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.Lock()
		for h, head := range sh.m {
			var first, last *series
			for s := head; s != nil; {
				next := s.next
				s.next = nil
				if c.expiration > 0 && now-s.lastSeen >= c.expiration {
					// A series updated since the last flush (possible when a
					// batch's clock reading predates a long flush gap) is
					// reported once more so no span is lost.
					if s.dirty {
						b.emit(s)
					}
					c.live.Add(-1)
					c.res.release(s.res)
					expired++
					s = next
					continue
				}
				if last == nil {
					first = s
				} else {
					last.next = s
				}
				last = s
				c.emitAndReset(b, s)
				s = next
			}
			if first == nil {
				delete(sh.m, h)
			} else {
				sh.m[h] = first
			}
		}
		sh.mu.Unlock()
	}

	c.overflowMu.Lock()
	for f, o := range c.overflow {
		if o == nil {
			continue
		}
		if c.expiration > 0 && now-o.lastSeen >= c.expiration {
			if o.dirty {
				b.emit(o)
			}
			c.overflow[f] = nil
			continue
		}
		c.emitAndReset(b, o)
	}
	c.overflowMu.Unlock()

	c.res.sweep()

	if expired > 0 {
		c.tb.RedmetricsSeriesExpired.Add(ctx, expired)
	}
	c.tb.RedmetricsSeriesActive.Record(ctx, c.live.Load())

	if b.md.DataPointCount() > 0 {
		if err := c.next.ConsumeMetrics(ctx, b.md); err != nil {
			c.logger.Error("Failed to send RED metrics", zap.Error(err), zap.Int("data_points", b.md.DataPointCount()))
		}
	}
	c.tb.RedmetricsFlushDuration.Record(ctx, time.Since(began).Seconds())
}

// emitAndReset writes s's data points and clears what belongs to one interval.
func (c *connectorImp) emitAndReset(b *builder, s *series) {
	if !c.delta || s.count > 0 {
		b.emit(s)
	}
	if c.delta {
		s.resetDelta()
	}
	s.dirty = false
	s.clearExemplars()
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
	temp   pmetric.AggregationTemporality
	prefix string
}

type rmOut struct {
	sm                      pmetric.ScopeMetrics
	calls, duration, events pmetric.Metric
	hasSpan, hasEvents      bool
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

func (b *builder) emit(s *series) {
	o := b.out(s.res)
	b.attrs.Clear()
	if s.res == nil && s.vals == nil {
		b.attrs.PutBool(overflowKey, true)
	} else {
		p := b.c.spanPlan
		if s.family == familyEvent {
			p = b.c.eventPlan
		}
		for i := range p.slots {
			putValue(b.attrs, p.slots[i].name, s.vals[i])
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
		dp.SetIntValue(int64(s.count))
		b.exemplars(s, dp.Exemplars())
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
	dp.SetIntValue(int64(s.count))
	b.exemplars(s, dp.Exemplars())

	switch {
	case s.buckets != nil:
		hp := o.duration.Histogram().DataPoints().AppendEmpty()
		b.attrs.CopyTo(hp.Attributes())
		hp.SetStartTimestamp(start)
		hp.SetTimestamp(b.now)
		hp.SetCount(s.count)
		hp.SetSum(s.sum)
		hp.ExplicitBounds().FromRaw(b.c.bounds)
		hp.BucketCounts().FromRaw(s.buckets)
		b.exemplars(s, hp.Exemplars())
	case s.expo != nil:
		ep := o.duration.ExponentialHistogram().DataPoints().AppendEmpty()
		b.attrs.CopyTo(ep.Attributes())
		ep.SetStartTimestamp(start)
		ep.SetTimestamp(b.now)
		ep.SetCount(s.count)
		ep.SetSum(s.sum)
		ep.SetScale(s.expo.scale)
		ep.SetZeroCount(s.expo.zero)
		ep.Positive().SetOffset(s.expo.offset)
		ep.Positive().BucketCounts().FromRaw(s.expo.counts)
		b.exemplars(s, ep.Exemplars())
	}
}

func (b *builder) exemplars(s *series, es pmetric.ExemplarSlice) {
	if s.exemplars == nil || len(*s.exemplars) == 0 {
		return
	}
	exs := *s.exemplars
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
