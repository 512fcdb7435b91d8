// Package sequence is the canary processor's engine: it follows numbered
// streams (one per canary generator) and classifies every number that
// arrives (new, reordered, late, duplicate, a restart of the generator) and
// declares the numbers that never came lost once they have been missing for
// LossAfter. Memory is bounded: a window of Window numbers per stream, at
// most maxGaps open gaps per stream, at most MaxStreams streams (least
// recently seen evicted). It knows nothing of the collector: no pdata, no
// telemetry; the caller serialises calls.
package sequence // import "github.com/otelcsp/otelcsp/processor/canaryprocessor/internal/sequence"

import (
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"
)

// maxGaps bounds the open gaps of one stream. A stream with more missing
// ranges than that inside loss_after is in trouble anyway; its oldest gap
// is declared lost early (it can still arrive, and is then counted late).
// It keeps a stream's memory at its bitmap plus about 10 KiB whatever the
// pattern of arrivals.
const maxGaps = 256

// Config bounds the tracker.
type Config struct {
	// Window is how many sequence numbers below the highest one a stream
	// remembers (received or not).
	Window int
	// LossAfter is how long a number may be missing (since a higher one
	// arrived) before it is declared lost.
	LossAfter time.Duration
	// MaxStreams bounds the streams followed; the least recently seen is
	// evicted past it.
	MaxStreams int
}

// Outcome classifies one arrival.
type Outcome uint8

const (
	// New is the first copy of a number that arrived in order: above
	// every number seen so far, or the first of its stream.
	New Outcome = iota
	// Reordered is the first copy of a number that arrived after a
	// higher one, within LossAfter (it was not declared lost).
	Reordered
	// Late is the first copy of a number that had been declared lost.
	Late
	// Duplicate is another copy of a number already received, or a
	// number so far below the window that nothing is known about it.
	Duplicate
)

func (o Outcome) String() string {
	switch o {
	case New:
		return "new"
	case Reordered:
		return "reordered"
	case Late:
		return "late"
	default:
		return "duplicate"
	}
}

// Reason says why a range was declared lost.
type Reason uint8

const (
	// LossTimeout: missing for LossAfter.
	LossTimeout Reason = iota
	// LeftWindow: Window higher numbers arrived before LossAfter passed.
	LeftWindow
	// TooManyGaps: the stream had maxGaps open gaps and a new one opened.
	TooManyGaps
	// Restarted: the generator started numbering again while the range
	// was still open.
	Restarted
)

func (r Reason) String() string {
	switch r {
	case LossTimeout:
		return "loss_after"
	case LeftWindow:
		return "window"
	case TooManyGaps:
		return "too_many_gaps"
	default:
		return "restart"
	}
}

// Loss is a range of consecutive numbers of one stream declared lost.
type Loss[T any] struct {
	Stream *Stream[T]
	Lo, Hi int64
	Reason Reason
}

// Count is the number of sequence numbers in the range.
func (l Loss[T]) Count() int64 { return l.Hi - l.Lo + 1 }

// Stream is one generator's numbering as seen here.
type Stream[T any] struct {
	// Tag is what the caller attached when the stream was created (its
	// metric attributes, its log fields).
	Tag T

	key string
	// high is the highest number received in the current run, highEnd
	// the end time (generator's clock, Unix ns) of the root span that
	// carried it: a lower number generated later is a restart.
	high, highEnd int64
	// first is the lowest number that can be missing in this run: the
	// first number seen of a stream seen mid-run, 1 after a restart.
	first int64
	// seen holds one bit per number of (high-Window, high], at index
	// seq mod len(seen)*64.
	seen []uint64
	// gaps are the open missing ranges, ascending and disjoint, every
	// one inside the window; their opening times ascend too.
	gaps    []gap
	pending bool // in the tracker's pending set
}

type gap struct {
	lo, hi int64
	opened time.Time
}

// High is the highest number received in the stream's current run.
func (s *Stream[T]) High() int64 { return s.high }

// Missing is the count of numbers currently missing, not yet declared lost.
func (s *Stream[T]) Missing() int64 {
	var n int64
	for _, g := range s.gaps {
		n += g.hi - g.lo + 1
	}
	return n
}

// Tracker follows streams. Not safe for concurrent use.
type Tracker[T any] struct {
	cfg     Config
	streams *simplelru.LRU[string, *Stream[T]]
	pending map[*Stream[T]]struct{} // streams with open gaps
	losses  []Loss[T]
	evicted int64
}

// NewTracker returns a tracker. cfg must be valid (every field > 0).
func NewTracker[T any](cfg Config) *Tracker[T] {
	t := &Tracker[T]{cfg: cfg, pending: map[*Stream[T]]struct{}{}}
	lru, err := simplelru.NewLRU[string, *Stream[T]](cfg.MaxStreams, func(_ string, s *Stream[T]) {
		// Its open gaps are forgotten: they can neither arrive nor be
		// declared lost any more.
		t.evicted++
		if s.pending {
			delete(t.pending, s)
			s.pending = false
		}
	})
	if err != nil {
		panic(err) // MaxStreams <= 0: the caller validates it
	}
	t.streams = lru
	return t
}

// Len is the number of streams followed.
func (t *Tracker[T]) Len() int { return t.streams.Len() }

// Evicted is the number of streams evicted since the tracker was made.
func (t *Tracker[T]) Evicted() int64 { return t.evicted }

// Observation is what Observe learned about one arrival.
type Observation[T any] struct {
	Stream  *Stream[T]
	Outcome Outcome
	// Created: the stream was not followed before this arrival.
	Created bool
	// Restart: the number shows the generator started numbering again;
	// the stream's previous run was closed (its open gaps are in the
	// losses) and this number is the first of the new run.
	Restart bool
}

// Observe records that number seq of the stream key arrived at now, in a
// trace whose root span ended at rootEnd (Unix ns of the generator's
// clock; 0 when unknown). newTag is called when the stream is created.
// Numbers below 1 are the caller's to refuse. The ranges declared lost
// meanwhile (this stream's expired gaps included) are appended to the
// losses, see TakeLosses.
func (t *Tracker[T]) Observe(key string, seq, rootEnd int64, now time.Time, newTag func() T) Observation[T] {
	s, ok := t.streams.Get(key)
	if !ok {
		s = &Stream[T]{Tag: newTag(), key: key, seen: make([]uint64, (t.cfg.Window+63)/64)}
		t.streams.Add(key, s)
		s.high, s.highEnd, s.first = seq, rootEnd, seq
		s.set(seq)
		return Observation[T]{Stream: s, Outcome: New, Created: true}
	}
	t.expire(s, now)
	w := int64(t.cfg.Window)
	if seq <= s.high && rootEnd > 0 && s.highEnd > 0 && rootEnd > s.highEnd {
		// A number not above the highest, in a trace generated after the
		// highest one: the generator numbers from 1 again.
		t.restart(s, seq, rootEnd, now)
		return Observation[T]{Stream: s, Outcome: New, Restart: true}
	}
	switch {
	case seq > s.high:
		t.advance(s, seq, now)
		s.highEnd = rootEnd
		return Observation[T]{Stream: s, Outcome: New}
	case seq <= s.high-w:
		return Observation[T]{Stream: s, Outcome: Duplicate}
	case s.has(seq):
		return Observation[T]{Stream: s, Outcome: Duplicate}
	}
	s.set(seq)
	if t.fill(s, seq) || seq < s.first {
		return Observation[T]{Stream: s, Outcome: Reordered}
	}
	return Observation[T]{Stream: s, Outcome: Late}
}

// Sweep declares lost every gap open for LossAfter at now.
func (t *Tracker[T]) Sweep(now time.Time) {
	for s := range t.pending {
		t.expire(s, now)
	}
}

// TakeLosses returns the ranges declared lost since the last call, oldest
// first. The slice is valid until the next call of any method.
func (t *Tracker[T]) TakeLosses() []Loss[T] {
	l := t.losses
	t.losses = t.losses[:0]
	return l
}

func (s *Stream[T]) bit(seq int64) (int, uint64) {
	n := uint64(len(s.seen)) * 64
	i := uint64(seq) % n
	return int(i / 64), 1 << (i % 64)
}

func (s *Stream[T]) set(seq int64) {
	w, b := s.bit(seq)
	s.seen[w] |= b
}

func (s *Stream[T]) clear(seq int64) {
	w, b := s.bit(seq)
	s.seen[w] &^= b
}

func (s *Stream[T]) has(seq int64) bool {
	w, b := s.bit(seq)
	return s.seen[w]&b != 0
}

func (t *Tracker[T]) lose(s *Stream[T], lo, hi int64, r Reason) {
	if lo <= hi {
		t.losses = append(t.losses, Loss[T]{Stream: s, Lo: lo, Hi: hi, Reason: r})
	}
}

// advance moves the stream's highest number to seq (> high): the numbers
// in between are a new gap; what leaves the window unreceived is lost.
func (t *Tracker[T]) advance(s *Stream[T], seq int64, now time.Time) {
	w := int64(t.cfg.Window)
	ring := int64(len(s.seen)) * 64
	// Forget the bits of the numbers the ring slots held before.
	if seq-s.high >= ring {
		clear(s.seen)
	} else {
		// Counted, not compared with seq: seq may be the largest int64.
		for i := range seq - s.high {
			s.clear(s.high + 1 + i)
		}
	}
	bottom := seq - w + 1 // lowest number still in the window
	// Gaps that leave the window are declared lost now.
	k := 0
	for k < len(s.gaps) && s.gaps[k].lo < bottom {
		g := &s.gaps[k]
		if g.hi < bottom {
			t.lose(s, g.lo, g.hi, LeftWindow)
			k++
			continue
		}
		t.lose(s, g.lo, bottom-1, LeftWindow)
		g.lo = bottom
		break
	}
	s.dropGaps(k)
	if lo, hi := s.high+1, seq-1; lo <= hi {
		if lo < bottom {
			t.lose(s, lo, bottom-1, LeftWindow)
			lo = bottom
		}
		if lo <= hi {
			t.openGap(s, lo, hi, now)
		}
	}
	s.high = seq
	s.set(seq)
}

func (t *Tracker[T]) openGap(s *Stream[T], lo, hi int64, now time.Time) {
	if len(s.gaps) >= maxGaps {
		g := s.gaps[0]
		t.lose(s, g.lo, g.hi, TooManyGaps)
		s.dropGaps(1)
	}
	s.gaps = append(s.gaps, gap{lo: lo, hi: hi, opened: now})
	if !s.pending {
		s.pending = true
		t.pending[s] = struct{}{}
	}
}

// dropGaps removes the first k gaps.
func (s *Stream[T]) dropGaps(k int) {
	if k == 0 {
		return
	}
	n := copy(s.gaps, s.gaps[k:])
	s.gaps = s.gaps[:n]
}

// fill removes seq from the gap holding it, if any, and says whether one did.
func (t *Tracker[T]) fill(s *Stream[T], seq int64) bool {
	// Binary search the first gap whose hi >= seq.
	lo, hi := 0, len(s.gaps)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if s.gaps[m].hi < seq {
			lo = m + 1
		} else {
			hi = m
		}
	}
	if lo == len(s.gaps) || s.gaps[lo].lo > seq {
		return false
	}
	g := &s.gaps[lo]
	switch {
	case g.lo == seq && g.hi == seq:
		s.gaps = append(s.gaps[:lo], s.gaps[lo+1:]...)
	case g.lo == seq:
		g.lo++
	case g.hi == seq:
		g.hi--
	default:
		// Split: [g.lo, seq-1] and [seq+1, g.hi], same opening time.
		if len(s.gaps) >= maxGaps {
			if lo == 0 {
				// The gap being split is the oldest: its older part goes.
				t.lose(s, g.lo, seq-1, TooManyGaps)
				g.lo = seq + 1
				break
			}
			old := s.gaps[0]
			t.lose(s, old.lo, old.hi, TooManyGaps)
			s.dropGaps(1)
			lo--
			g = &s.gaps[lo]
		}
		right := gap{lo: seq + 1, hi: g.hi, opened: g.opened}
		g.hi = seq - 1
		s.gaps = append(s.gaps, gap{})
		copy(s.gaps[lo+2:], s.gaps[lo+1:])
		s.gaps[lo+1] = right
	}
	t.unpend(s)
	return true
}

func (t *Tracker[T]) unpend(s *Stream[T]) {
	if len(s.gaps) == 0 && s.pending {
		s.pending = false
		delete(t.pending, s)
	}
}

// expire declares lost the stream's gaps open for LossAfter.
func (t *Tracker[T]) expire(s *Stream[T], now time.Time) {
	k := 0
	for k < len(s.gaps) && now.Sub(s.gaps[k].opened) >= t.cfg.LossAfter {
		t.lose(s, s.gaps[k].lo, s.gaps[k].hi, LossTimeout)
		k++
	}
	s.dropGaps(k)
	t.unpend(s)
}

// restart closes the stream's run (its open gaps are lost) and starts a new
// one at seq, numbered from 1: the numbers below seq are a gap.
func (t *Tracker[T]) restart(s *Stream[T], seq, rootEnd int64, now time.Time) {
	for _, g := range s.gaps {
		t.lose(s, g.lo, g.hi, Restarted)
	}
	s.gaps = s.gaps[:0]
	t.unpend(s)
	clear(s.seen)
	s.high, s.highEnd, s.first = seq, rootEnd, 1
	s.set(seq)
	w := int64(t.cfg.Window)
	lo, hi := int64(1), seq-1
	if bottom := seq - w + 1; lo < bottom {
		t.lose(s, lo, min(hi, bottom-1), LeftWindow)
		lo = bottom
	}
	if lo <= hi {
		t.openGap(s, lo, hi, now)
	}
}
