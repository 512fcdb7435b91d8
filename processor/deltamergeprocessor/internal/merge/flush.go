package merge // import "github.com/otelcsp/otelcsp/processor/deltamergeprocessor/internal/merge"

import (
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
)

// Flush returns one cumulative point for every stream held: start time
// when the table first saw the stream, timestamp now. Then it drops the
// streams (and, in the streams that stay, the writers) that merged no point
// for the expiration: an expired stream is reported one last time.
func (t *Table) Flush(now time.Time) (pmetric.Metrics, FlushResult) {
	var fr FlushResult
	md := pmetric.NewMetrics()
	ts := pcommon.NewTimestampFromTime(now)
	rms := md.ResourceMetrics()
	rms.EnsureCapacity(len(t.resList))
	for _, res := range t.resList {
		rm := rms.AppendEmpty()
		res.attrs.CopyTo(rm.Resource().Attributes())
		sms := rm.ScopeMetrics()
		sms.EnsureCapacity(len(res.scopes))
		for _, sc := range res.scopes {
			sm := sms.AppendEmpty()
			sm.Scope().SetName(sc.key.name)
			sm.Scope().SetVersion(sc.key.version)
			sc.attrs.CopyTo(sm.Scope().Attributes())
			ms := sm.Metrics()
			ms.EnsureCapacity(len(sc.metrics))
			for _, me := range sc.metrics {
				fr.Points += t.emitMetric(ms.AppendEmpty(), me, ts)
			}
		}
	}
	if t.cfg.Expiration > 0 {
		fr.Expired = t.expire(now.UnixNano() - int64(t.cfg.Expiration))
	}
	return md, fr
}

func (t *Table) emitMetric(m pmetric.Metric, me *metricEntry, ts pcommon.Timestamp) int {
	m.SetName(me.key.name)
	m.SetUnit(me.key.unit)
	m.SetDescription(me.description)
	switch me.key.typ {
	case pmetric.MetricTypeSum:
		sum := m.SetEmptySum()
		sum.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
		sum.SetIsMonotonic(me.key.monotonic)
		dps := sum.DataPoints()
		dps.EnsureCapacity(len(me.streams))
		for _, s := range me.streams {
			dp := dps.AppendEmpty()
			s.attrs.CopyTo(dp.Attributes())
			dp.SetStartTimestamp(s.start)
			dp.SetTimestamp(ts)
			s.sum.emit(dp)
		}
	case pmetric.MetricTypeHistogram:
		h := m.SetEmptyHistogram()
		h.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
		dps := h.DataPoints()
		dps.EnsureCapacity(len(me.streams))
		for _, s := range me.streams {
			dp := dps.AppendEmpty()
			s.attrs.CopyTo(dp.Attributes())
			dp.SetStartTimestamp(s.start)
			dp.SetTimestamp(ts)
			if s.hist != nil {
				s.hist.emit(dp)
			}
		}
	case pmetric.MetricTypeExponentialHistogram:
		h := m.SetEmptyExponentialHistogram()
		h.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
		dps := h.DataPoints()
		dps.EnsureCapacity(len(me.streams))
		for _, s := range me.streams {
			dp := dps.AppendEmpty()
			s.attrs.CopyTo(dp.Attributes())
			dp.SetStartTimestamp(s.start)
			dp.SetTimestamp(ts)
			if s.expo != nil {
				s.expo.emit(dp)
			}
		}
	}
	return len(me.streams)
}

// expire drops streams idle since before cutoff and, in the others,
// writers idle since before cutoff. It walks every list backwards, so the
// swap-removals only move entries it has visited.
func (t *Table) expire(cutoff int64) int64 {
	var n int64
	for i := len(t.resList) - 1; i >= 0; i-- {
		res := t.resList[i]
		for j := len(res.scopes) - 1; j >= 0; j-- {
			sc := res.scopes[j]
			for k := len(sc.metrics) - 1; k >= 0; k-- {
				me := sc.metrics[k]
				for l := len(me.streams) - 1; l >= 0; l-- {
					s := me.streams[l]
					if s.lastMerged < cutoff {
						t.dropStream(s) // may drop me, sc and res: only when they are empty
						n++
						continue
					}
					if len(s.writers) > 0 {
						t.expireWriters(s, cutoff)
					}
				}
			}
		}
	}
	return n
}
