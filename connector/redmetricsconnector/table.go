package redmetricsconnector // import "github.com/otelcsp/otelcsp/connector/redmetricsconnector"

// seriesTable is one shard's index of series: open addressing with linear
// probing over (hash, series) slots. A lookup is one slot read in the
// common case, where a Go map keyed by the hash cost a map access plus a
// chain walk (a fifth of the time per span); the hash is kept in the slot
// so a probe touches a series only when the full hash matches. Caller
// holds the shard's lock.
type seriesTable struct {
	slots []tableSlot // len is 0 or a power of two
	n     int
}

type tableSlot struct {
	h uint64
	s *series // nil = empty
}

// minTableSlots is a new table's size: small, since most shards of a
// small connector hold a few series.
const minTableSlots = 16

// find returns the series of resource res with that key, or nil. The key is
// compared in full: a hash match alone never merges two dimension sets.
func (t *seriesTable) find(h uint64, res *resource, key string) *series {
	if t.n == 0 {
		return nil
	}
	mask := uint64(len(t.slots) - 1)
	for i := h & mask; ; i = (i + 1) & mask {
		sl := &t.slots[i]
		if sl.s == nil {
			return nil
		}
		if sl.h == h && sl.s.res == res && sl.s.key() == key {
			return sl.s
		}
	}
}

// insert adds s, which the caller found absent. The table grows past 7/8
// load: a hit then probes a few slots on average (four to a cache line),
// and the index costs 18–37 B per series instead of the 21–43 B of a 3/4
// bound (memory per series is what cardinality_limit buys).
func (t *seriesTable) insert(h uint64, s *series) {
	if (t.n+1)*8 > len(t.slots)*7 {
		t.resize(max(minTableSlots, 2*len(t.slots)))
	}
	t.place(h, s)
	t.n++
}

func (t *seriesTable) place(h uint64, s *series) {
	mask := uint64(len(t.slots) - 1)
	i := h & mask
	for t.slots[i].s != nil {
		i = (i + 1) & mask
	}
	t.slots[i] = tableSlot{h: h, s: s}
}

func (t *seriesTable) resize(size int) {
	old := t.slots
	t.slots = make([]tableSlot, size)
	for _, sl := range old {
		if sl.s != nil {
			t.place(sl.h, sl.s)
		}
	}
}

// retain keeps the series for which keep returns true, calling it once per
// series (flush snapshots and expires series from it), and rebuilds the
// index when any was dropped: removal happens once per flush, so a
// rebuild is simpler than deleting slot by slot, and it shrinks a table
// that expiry emptied.
func (t *seriesTable) retain(keep func(*series) bool) {
	dropped := 0
	for i := range t.slots {
		if s := t.slots[i].s; s != nil && !keep(s) {
			t.slots[i].s = nil
			dropped++
		}
	}
	if dropped == 0 {
		return
	}
	t.n -= dropped
	if t.n == 0 {
		t.slots = nil
		return
	}
	// At most half full after the rebuild: room to grow before the next.
	size := minTableSlots
	for t.n*2 > size {
		size *= 2
	}
	t.resize(size)
}

// each calls f for every series (tests).
func (t *seriesTable) each(f func(*series)) {
	for _, sl := range t.slots {
		if sl.s != nil {
			f(sl.s)
		}
	}
}
