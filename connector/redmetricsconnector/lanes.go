package redmetricsconnector // import "github.com/otelcsp/otelcsp/connector/redmetricsconnector"

import (
	"runtime"
	"sync"

	"go.opentelemetry.io/collector/pdata/ptrace"
)

// Concurrent ConsumeTraces calls mostly update the same series: the same
// services send the same operations through every receiver goroutine. Two
// cores writing one series' counters (and its shard's lock) move that cache
// line back and forth on every span; measured on two idle cores, two
// callers spent 2.2× the CPU per span of one, so running in parallel was
// slower than running in turn.
//
// So one call at a time (the one holding primary) updates the shards'
// series directly, as a lone caller always does; a call that finds
// primary taken aggregates its spans in a lane instead: a private table of
// delta series that only its holder touches, drained into the shards at
// every flush. Nothing is shared while the spans are counted; a lane entry
// meets the shards only when it is created (where the series is found or
// created, so cardinality_limit and overflow are decided exactly as for a
// direct update) and when it is drained.
type lane struct {
	mu sync.Mutex
	t  seriesTable
	// main is the shard series each entry drains into, with its hash
	// (which picks the shard). Entries are few (the series a lane's
	// callers touched in one interval), and it is read only at drain.
	main map[*series]laneTarget
	_    [40]byte // keep neighbouring lanes' locks on separate cache lines
}

type laneTarget struct {
	s *series
	h uint64
}

// newLanes makes one lane per extra core: with GOMAXPROCS callers running
// at once, one holds primary and the others a lane each. One lane at least,
// since a caller can be preempted while it holds primary.
func newLanes() []lane {
	ls := make([]lane, max(1, runtime.GOMAXPROCS(0)-1))
	for i := range ls {
		ls[i].main = map[*series]laneTarget{}
	}
	return ls
}

// acquireLane returns nil when the caller holds primary (update the shards
// directly), or the lane it holds. Callers beyond the lanes wait for one.
func (c *connectorImp) acquireLane() *lane {
	if c.primary.TryLock() {
		return nil
	}
	for i := range c.lanes {
		if c.lanes[i].mu.TryLock() {
			return &c.lanes[i]
		}
	}
	ln := &c.lanes[int(c.laneTurn.Add(1))%len(c.lanes)]
	ln.mu.Lock()
	return ln
}

func (c *connectorImp) releaseLane(ln *lane) {
	if ln == nil {
		c.primary.Unlock()
		return
	}
	ln.mu.Unlock()
}

// recordLane is record for a caller holding lane ln.
func (c *connectorImp) recordLane(ln *lane, res *resource, family uint8, key []byte, w uint64, dur float64, ex bool, span ptrace.Span, now stamp) (*resource, int64, int64) {
	if res == nil {
		c.recordOverflow(family, w, dur, ex, span, now)
		return nil, 1, 0
	}
	h := c.hash(res, key)
	s := ln.t.find(h, res, unsafeString(key))
	var created int64
	if s == nil {
		if c.limit > 0 && int64(ln.t.n) >= c.limit {
			// A lane holds at most cardinality_limit entries, like the
			// shards; past that its spans go to the shards directly.
			return c.record(res, family, key, w, dur, ex, span, now)
		}
		sh := &c.shards[h>>c.shift]
		sh.mu.Lock()
		m, cr := c.findOrCreate(sh, h, res, family, key, now)
		if m != nil {
			// Touched so that this flush's expiry, which may run before
			// the entry is first drained, does not drop the series the
			// entry drains into.
			m.lastSeen = max(m.lastSeen, now.mono)
		}
		sh.mu.Unlock()
		if m == nil {
			c.recordOverflow(family, w, dur, ex, span, now)
			return res, 1, 0
		}
		// The entry shares the series' resource; its key is copied with
		// its counters, in the one allocation newSeries makes for both.
		s = c.newSeries(m.res, family, m.key(), now)
		ln.t.insert(h, s)
		ln.main[s] = laneTarget{s: m, h: h}
		res, created = m.res, cr
	}
	c.update(s, w, dur, ex, span, now)
	return res, 0, created
}

// drainLanes adds every lane's counts to the series they stand for, before
// a flush takes its snapshot. Entries not updated since the last drain are
// dropped (a lane keeps only what its callers still touch), and so are
// entries whose series this flush is about to expire: a kept entry's series
// was refreshed by the merge, and one created after the drain refreshed
// its series when it was made, so no entry ever outlives its series.
func (c *connectorImp) drainLanes(now stamp) {
	for i := range c.lanes {
		ln := &c.lanes[i]
		ln.mu.Lock()
		ln.t.retain(func(s *series) bool {
			if !s.dirty {
				delete(ln.main, s)
				return false
			}
			m := ln.main[s]
			sh := &c.shards[m.h>>c.shift]
			sh.mu.Lock()
			m.s.merge(s, c.maxEx, c.expoMax)
			sh.mu.Unlock()
			if c.expiration > 0 && now.mono-s.lastSeen >= c.expiration {
				delete(ln.main, s)
				return false
			}
			s.endInterval(true) // a lane entry always holds deltas
			return true
		})
		ln.mu.Unlock()
	}
}
