package fanoutexporter

import (
	"sync/atomic"
	"time"
)

// Handover keeps traces whole across a change of the backend set. A key
// that was already flowing before the change keeps going to its previous
// owner for `handover` (tail sampling's decision_wait is the natural
// value), even when that owner left the set, as long as it still takes
// data; keys first seen after the change go to their new owner at once.
// So a trace that straddles the change ends where it started, and no
// trace is split by the change unless it outlives the handover.
//
// "Already flowing" is remembered in a fixed table of recent keys, one
// 64-bit word a slot (high bits of the key's hash, and when it was last
// routed), written on every routed item while handover is on: bounded at
// every moment, no allocation, and lossy by design — a key whose slot was
// taken by another key since is treated as new.

const (
	recentBits = 18 // 2^18 slots: 2 MiB
	// A slot holds the key's hash above timeBits and the time it was last
	// routed, in units of timeUnit, below: 2^timeBits units is over 30 days,
	// far more than any handover, so wrap-around cannot be mistaken.
	timeBits = 28
	timeUnit = 10 * time.Millisecond
	timeMask = 1<<timeBits - 1
)

// recentKeys remembers when keys were last routed, in a two-way
// set-associative table: a key lives in one of the two slots of its
// bucket, so two keys that land in the same bucket do not evict each other
// (a third evicts the one routed longest ago).
type recentKeys struct {
	slots []atomic.Uint64
}

func newRecentKeys() *recentKeys {
	return &recentKeys{slots: make([]atomic.Uint64, 1<<recentBits)}
}

func timeUnits(d time.Duration) uint64 { return uint64(d/timeUnit) & timeMask }

// bucket returns the two slots of h's bucket, the one holding h first if
// either does (found).
func (r *recentKeys) bucket(h uint64) (a, b *atomic.Uint64, found bool) {
	i := h & (1<<recentBits - 1) &^ 1
	a, b = &r.slots[i], &r.slots[i+1]
	switch {
	case a.Load()>>timeBits == h>>timeBits:
		return a, b, true
	case b.Load()>>timeBits == h>>timeBits:
		return b, a, true
	}
	return a, b, false
}

// seenBefore says whether h was routed before the instant at (in time
// units; the unit of the change itself counts as before), within the last
// window units; otherwise it records h as routed now. Keys seen before at
// keep their old record, so that they stay "old" for the whole handover.
func (r *recentKeys) seenBefore(h, at, now, window uint64) bool {
	if s, _, found := r.bucket(h); found {
		if age := (at - s.Load()&timeMask) & timeMask; age <= window {
			return true
		}
	}
	r.record(h, now)
	return false
}

// record notes h as routed now: in its own slot if it has one, else in the
// slot routed longest ago.
func (r *recentKeys) record(h, now uint64) {
	s, other, found := r.bucket(h)
	if !found && (now-other.Load()&timeMask)&timeMask > (now-s.Load()&timeMask)&timeMask {
		s = other
	}
	s.Store(h&^timeMask | now)
}

// handoverState is what a routing state keeps of the set before it.
type handoverState struct {
	prev      *ring
	prevIndex []int  // prev's backend index -> index in the new state's backends
	at        uint64 // the change, in time units
	until     time.Duration
}

// handoverRouter is one push's view of the handover: it returns a key's
// previous owner while the handover lasts, or -1.
type handoverRouter struct {
	recent      *recentKeys
	ho          *handoverState // nil outside a handover
	now, window uint64
}

func (f *fanout[T]) handoverRouter(st *routingState[T]) handoverRouter {
	if f.recent == nil {
		return handoverRouter{}
	}
	t := now()
	hr := handoverRouter{recent: f.recent, now: timeUnits(t), window: timeUnits(f.cfg.Handover)}
	if ho := st.handover; ho != nil && t < ho.until {
		hr.ho = ho
	}
	return hr
}

// previousOwner is the backend index to send h to, or -1 for the new
// ring's choice. It also records h as routed.
func (hr *handoverRouter) previousOwner(h uint64) int {
	switch {
	case hr.recent == nil:
		return -1
	case hr.ho == nil:
		hr.recent.record(h, hr.now)
		return -1
	case !hr.recent.seenBefore(h, hr.ho.at, hr.now, hr.window):
		return -1
	}
	return hr.ho.prevIndex[hr.ho.prev.owner(hr.ho.prev.slot(h))]
}
