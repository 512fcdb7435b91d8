package spanlogsconnector // import "github.com/otelcsp/otelcsp/connector/spanlogsconnector"

import (
	"sync"
)

// limiter is a token bucket per fingerprint with bounded state. Entries live
// in one slice that grows up to max and is then recycled, linked into an LRU
// list by index, so a flood of unique fingerprints reuses the same memory
// instead of growing it, and the GC sees no per-fingerprint pointers.
type limiter struct {
	mu      sync.Mutex
	max     int
	index   map[uint64]int32
	entries []fpEntry
	head    int32 // most recently used, -1 when empty
	tail    int32 // least recently used, -1 when empty
}

type fpEntry struct {
	fp         uint64
	tokens     float64
	last       int64 // monotonic nanoseconds of the last refill
	suppressed int64 // records dropped since the last emitted one
	prev, next int32
}

// decision is the limiter's answer for one record.
type decision struct {
	allow bool
	// suppressed is how many records of this fingerprint were dropped since
	// the last one emitted; set only when allow is true.
	suppressed int64
	// evicted reports that a least recently used fingerprint was forgotten
	// to make room.
	evicted bool
}

func newLimiter(maxFingerprints int) *limiter {
	initial := maxFingerprints
	if initial > 1024 {
		// grow on demand: most deployments never see max fingerprints.
		initial = 1024
	}
	return &limiter{
		max:     maxFingerprints,
		index:   make(map[uint64]int32, initial),
		entries: make([]fpEntry, 0, initial),
		head:    -1,
		tail:    -1,
	}
}

// allow consumes a token of fp's bucket (rate tokens a second, at most
// burst) at time now, in nanoseconds of the monotonic clock (a wall-clock
// step back would otherwise stop every refill until the clock caught up).
func (l *limiter) allow(fp uint64, rate float64, burst int, now int64) decision {
	l.mu.Lock()
	defer l.mu.Unlock()

	if i, ok := l.index[fp]; ok {
		e := &l.entries[i]
		l.touch(i)
		if now > e.last {
			e.tokens += float64(now-e.last) / 1e9 * rate
			if e.tokens > float64(burst) {
				e.tokens = float64(burst)
			}
			e.last = now
		}
		if e.tokens >= 1 {
			e.tokens--
			s := e.suppressed
			e.suppressed = 0
			return decision{allow: true, suppressed: s}
		}
		e.suppressed++
		return decision{}
	}

	var d decision
	var i int32
	if len(l.entries) < l.max {
		i = int32(len(l.entries))
		l.entries = append(l.entries, fpEntry{})
	} else {
		// Forget the least recently used fingerprint. Its pending suppressed
		// count is lost from records but was already counted in the metric.
		i = l.tail
		l.unlink(i)
		delete(l.index, l.entries[i].fp)
		d.evicted = true
	}
	l.entries[i] = fpEntry{fp: fp, tokens: float64(burst) - 1, last: now, prev: -1, next: -1}
	l.pushFront(i)
	l.index[fp] = i
	d.allow = true
	return d
}

func (l *limiter) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.index)
}

func (l *limiter) touch(i int32) {
	if l.head == i {
		return
	}
	l.unlink(i)
	l.pushFront(i)
}

func (l *limiter) unlink(i int32) {
	e := &l.entries[i]
	if e.prev >= 0 {
		l.entries[e.prev].next = e.next
	} else {
		l.head = e.next
	}
	if e.next >= 0 {
		l.entries[e.next].prev = e.prev
	} else {
		l.tail = e.prev
	}
	e.prev, e.next = -1, -1
}

func (l *limiter) pushFront(i int32) {
	e := &l.entries[i]
	e.prev, e.next = -1, l.head
	if l.head >= 0 {
		l.entries[l.head].prev = i
	}
	l.head = i
	if l.tail < 0 {
		l.tail = i
	}
}
