package redmetricsconnector // import "github.com/otelcsp/otelcsp/connector/redmetricsconnector"

import (
	"sync"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// Metric families. A span series carries both calls and duration (they share
// dimensions); an event series carries the events count.
const (
	familySpan uint8 = iota
	familyEvent
)

// exemplar is one trace/span ID sample of a data point.
type exemplar struct {
	traceID pcommon.TraceID
	spanID  pcommon.SpanID
	value   float64
	ts      pcommon.Timestamp
}

// series is the aggregation state of one dimension set. It is owned by one
// shard and only touched under that shard's lock.
//
// Its identity is its resource and its key (appendKey: the family and the
// dimension values, encoded): comparing two series is one pointer and one
// memory comparison, and the values are decoded from the key only at
// flush. The overflow series have no key.
type series struct {
	res    *resource
	key    string
	family uint8
	dirty  bool  // updated since the last flush
	exNext int32 // next exemplar slot to overwrite once the ring is full

	start    int64 // unix ns (wall) the series was created (cumulative start time)
	lastSeen int64 // monotonic ns of the batch that last updated it (expiry)

	count uint64  // calls (span series) or events (event series), adjusted
	sum   float64 // sum of durations, weighted by adjusted count (edges: client latency)
	sum2  float64 // edges: sum of server latencies

	buckets []uint64  // explicit histogram: len(bounds)+1 counters
	expo    *expoHist // exponential histogram

	exemplars *[]exemplar // ring, cap = max_per_data_point; nil until the first exemplar
}

// shard is one slice of the series table. Shards are picked by the top bits
// of the series hash, so concurrent ConsumeTraces calls rarely meet on a lock.
type shard struct {
	mu sync.Mutex
	t  seriesTable
	_  [24]byte // keep neighbouring shard locks on separate cache lines
}

func valsEqual(a, b []dimVal) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !a[i].equal(b[i]) {
			return false
		}
	}
	return true
}

// addExemplar keeps the most recent max exemplars of the flush interval.
func (s *series) addExemplar(max int, e exemplar) {
	if max <= 0 {
		return
	}
	if s.exemplars == nil {
		ex := make([]exemplar, 0, max)
		s.exemplars = &ex
	}
	ex := s.exemplars
	if len(*ex) < max {
		*ex = append(*ex, e)
		return
	}
	(*ex)[s.exNext] = e
	s.exNext = (s.exNext + 1) % int32(max)
}

func (s *series) clearExemplars() {
	if s.exemplars != nil {
		*s.exemplars = (*s.exemplars)[:0]
	}
	s.exNext = 0
}

// resetDelta zeroes what a delta flush reported, keeping the allocations so
// the next interval's updates do not allocate.
func (s *series) resetDelta() {
	s.count = 0
	s.sum = 0
	s.sum2 = 0
	clear(s.buckets)
	if s.expo != nil {
		s.expo.reset()
	}
}

// bucketIndex returns the explicit bucket of v: bucket i holds values in
// (bounds[i-1], bounds[i]], the last one values above every bound.
//
// A branch-free search (a conditional move per halving) was measured and
// is slower here: durations cluster in a few buckets, so the branches are
// mostly predicted, and the moves lengthen the dependency chain.
func bucketIndex(bounds []float64, v float64) int {
	lo, hi := 0, len(bounds)
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if bounds[mid] < v {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return lo
}

// newSeries makes a series; an empty key makes the family's overflow series.
func (c *connectorImp) newSeries(res *resource, family uint8, key string, now stamp) *series {
	s := &series{res: res, family: family, key: key, start: now.wall, lastSeen: now.mono}
	if family == familySpan && !c.histDisabled {
		if c.expo {
			s.expo = newExpoHist()
		} else {
			s.buckets = make([]uint64, len(c.bounds)+1)
		}
	}
	if family == familyEdge {
		// Client latency buckets, then server latency buckets.
		s.buckets = make([]uint64, 2*c.sg.nb)
	}
	return s
}

// update adds one span (standing for w spans) to s. Caller holds s's lock.
func (c *connectorImp) update(s *series, w uint64, dur float64, ex bool, span ptrace.Span, now stamp) {
	s.lastSeen = now.mono
	s.dirty = true
	s.count += w
	if s.family == familySpan {
		s.sum += dur * float64(w)
		if s.buckets != nil {
			s.buckets[bucketIndex(c.bounds, dur)] += w
		} else if s.expo != nil {
			s.expo.record(dur, w, c.expoMax)
		}
	}
	if ex {
		s.addExemplar(c.maxEx, exemplar{traceID: span.TraceID(), spanID: span.SpanID(), value: dur, ts: span.EndTimestamp()})
	}
}

// merge adds the counts of o (a lane's delta series of the same family and
// histogram kind) to s. Caller holds s's lock.
func (s *series) merge(o *series, maxEx int, expoMax int32) {
	s.lastSeen = max(s.lastSeen, o.lastSeen)
	s.dirty = true
	s.count += o.count
	s.sum += o.sum
	s.sum2 += o.sum2
	for i, n := range o.buckets {
		s.buckets[i] += n
	}
	if o.expo != nil {
		s.expo.merge(o.expo, expoMax)
	}
	if o.exemplars != nil {
		ex := *o.exemplars
		// Oldest first, so the ring keeps the most recent ones.
		for i := range ex {
			s.addExemplar(maxEx, ex[(int(o.exNext)+i)%len(ex)])
		}
	}
}
