package redmetricsconnector // import "github.com/otelcsp/otelcsp/connector/redmetricsconnector"

import (
	"math"
	"sync"
	"unsafe"

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
//
// Memory per series is what cardinality_limit buys, so the layout is
// chosen for Go's allocation size classes: the struct is 80 B (a size
// class), and the key and the counters share one pointer-free allocation,
// data: the key's klen bytes, padded to a word, then nctr uint64 words.
// With the default 16 bounds and a 45 B key that is 184 B (the 192 B
// class), where a struct with its own slice header and string header took
// the 112 B class and the counters and the key 144 B and 48 B apart. The
// key comes first so that key() is a plain view (the table compares it on
// every lookup), and the lookup's comparison reads the cache line the
// update then writes.
type series struct {
	res  *resource
	data unsafe.Pointer // the key, then nctr counter words (see key, words)
	klen uint32         // key bytes
	// nctr counts the words after the key: the explicit histogram's
	// buckets (len(bounds)+1), or for an edge its client buckets, its
	// server buckets and the sum of server latencies (edgeSum2); 0 without
	// an explicit histogram.
	nctr   uint32
	family uint8
	dirty  bool // updated since the last flush

	start    int64 // unix ns (wall) the series was created (cumulative start time)
	lastSeen int64 // monotonic ns of the batch that last updated it (expiry)

	count uint64  // calls (span series) or events (event series), adjusted
	sum   float64 // sum of durations, weighted by adjusted count (edges: client latency)

	expo      *expoHist // exponential histogram
	exemplars *exRing   // nil until the first exemplar
}

// exRing is a series' most recent exemplars: cap = max_per_data_point.
type exRing struct {
	ex   []exemplar
	next int32 // next slot to overwrite once the ring is full
}

// key returns the series key: a view of data, whose key bytes are never
// written after newSeries.
func (s *series) key() string {
	return unsafe.String((*byte)(s.data), s.klen)
}

// keyWords is the key's size in data, padded to a word.
func keyWords(klen int) int { return (klen + 7) / 8 }

// counters points at the first counter word. Only valid with nctr > 0:
// otherwise it may point past data's end, at the next allocation.
func (s *series) counters() unsafe.Pointer {
	return unsafe.Add(s.data, keyWords(int(s.klen))*8)
}

// words returns the counter words (see nctr); nil without any.
func (s *series) words() []uint64 {
	if s.nctr == 0 {
		return nil
	}
	return unsafe.Slice((*uint64)(s.counters()), s.nctr)
}

// addBucket adds w to counter i: words()[i] += w without building the
// slice, on the per-span path.
func (s *series) addBucket(i int, w uint64) {
	if uint(i) >= uint(s.nctr) {
		panic("redmetrics: bucket index out of range")
	}
	*(*uint64)(unsafe.Add(s.counters(), i*8)) += w
}

// hist returns the explicit histogram counters (an edge's client buckets,
// then its server buckets); nil without an explicit histogram.
func (s *series) hist() []uint64 {
	w := s.words()
	if s.family == familyEdge {
		return w[:len(w)-1]
	}
	return w
}

// edgeSum2 is an edge's sum of server latencies (0 for other families),
// kept in its last counter word: only edges have it, so the other series
// do not carry the field.
func (s *series) edgeSum2() float64 {
	if s.family != familyEdge {
		return 0
	}
	return math.Float64frombits(s.words()[s.nctr-1])
}

// addEdgeSum2 adds v to an edge's sum of server latencies.
func (s *series) addEdgeSum2(v float64) {
	w := &s.words()[s.nctr-1]
	*w = math.Float64bits(math.Float64frombits(*w) + v)
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
	r := s.exemplars
	if r == nil {
		r = &exRing{ex: make([]exemplar, 0, max)}
		s.exemplars = r
	}
	if len(r.ex) < max {
		r.ex = append(r.ex, e)
		return
	}
	r.ex[r.next] = e
	r.next = (r.next + 1) % int32(max)
}

// exemplarList returns the exemplars kept since the last clearExemplars.
func (s *series) exemplarList() []exemplar {
	if s.exemplars == nil {
		return nil
	}
	return s.exemplars.ex
}

// endInterval clears what belongs to one flush interval once it has been
// reported (or, for a lane entry, merged): the exemplars, the dirty mark
// and, when the counts are deltas, the counts.
func (s *series) endInterval(delta bool) {
	if delta {
		s.resetDelta()
	}
	s.dirty = false
	s.clearExemplars()
}

func (s *series) clearExemplars() {
	if r := s.exemplars; r != nil {
		r.ex = r.ex[:0]
		r.next = 0
	}
}

// resetDelta zeroes what a delta flush reported, keeping the allocations so
// the next interval's updates do not allocate.
func (s *series) resetDelta() {
	s.count = 0
	s.sum = 0
	clear(s.words()) // an edge's server latency sum too
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

// newSeries makes a series; an empty key makes the family's overflow
// series. The key is copied, so it may be a view of a scratch buffer
// (unsafeString).
func (c *connectorImp) newSeries(res *resource, family uint8, key string, now stamp) *series {
	s := &series{res: res, family: family, start: now.wall, lastSeen: now.mono}
	var nctr int
	switch {
	case family == familySpan && !c.histDisabled:
		if c.expo {
			s.expo = newExpoHist()
		} else {
			nctr = len(c.bounds) + 1
		}
	case family == familyEdge:
		// Client latency buckets, server latency buckets, server latency sum.
		nctr = 2*c.sg.nb + 1
	}
	if n := keyWords(len(key)) + nctr; n > 0 {
		// One pointer-free allocation: the GC never scans it.
		w := make([]uint64, n)
		copy(unsafe.Slice((*byte)(unsafe.Pointer(&w[0])), len(key)), key)
		s.data = unsafe.Pointer(&w[0])
	}
	s.nctr, s.klen = uint32(nctr), uint32(len(key))
	return s
}

// update adds one span (standing for w spans) to s. Caller holds s's lock.
func (c *connectorImp) update(s *series, w uint64, dur float64, ex bool, span ptrace.Span, now stamp) {
	s.lastSeen = now.mono
	s.dirty = true
	s.count += w
	if s.family == familySpan {
		s.sum += dur * float64(w)
		if s.nctr != 0 {
			s.addBucket(bucketIndex(c.bounds, dur), w)
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
	if s.family == familyEdge {
		s.addEdgeSum2(o.edgeSum2())
	}
	hist := s.hist()
	for i, n := range o.hist() {
		hist[i] += n
	}
	if o.expo != nil {
		s.expo.merge(o.expo, expoMax)
	}
	if r := o.exemplars; r != nil {
		// Oldest first, so the ring keeps the most recent ones.
		for i := range r.ex {
			s.addExemplar(maxEx, r.ex[(int(r.next)+i)%len(r.ex)])
		}
	}
}
