package merge // import "github.com/otelcsp/otelcsp/processor/deltamergeprocessor/internal/merge"

import (
	"strings"

	"go.opentelemetry.io/collector/pdata/pcommon"
)

// DedupWindows is how many of a writer's most recently merged windows
// (start, end) a stream remembers to recognise a re-sent point. With a
// writer that flushes every 60s, a retry that arrives within about eight
// minutes of the original is recognised; one that arrives later is counted
// again.
const DedupWindows = 8

// window is the (start, end] interval a delta point covers.
type window struct {
	start, end pcommon.Timestamp
}

// writerRef interns a writer identity (the writer attribute's value) for
// the whole table, so that per-stream records hold a pointer rather than a
// string and compare by pointer. refs counts the stream records that hold
// it; it is forgotten when none does.
type writerRef struct {
	id   string
	refs int
}

// writerRec is what one stream remembers about one writer.
type writerRec struct {
	ref      *writerRef
	lastSeen int64             // unix ns of the last point merged from this writer
	maxEnd   pcommon.Timestamp // latest end time merged: older ones are out of order
	n, head  uint8
	ring     [DedupWindows]window
}

func (w *writerRec) seen(win window) bool {
	for i := range w.ring[:w.n] {
		if w.ring[i] == win {
			return true
		}
	}
	return false
}

func (w *writerRec) remember(win window, now int64) {
	w.ring[w.head] = win
	w.head = (w.head + 1) % DedupWindows
	if w.n < DedupWindows {
		w.n++
	}
	if win.end > w.maxEnd {
		w.maxEnd = win.end
	}
	w.lastSeen = now
}

// writerID returns the interned identity of the writer attribute value v
// (absent: the anonymous writer, id "").
func (t *Table) writerID(v pcommon.Value, ok bool) *writerRef {
	var id string
	if ok {
		if v.Type() == pcommon.ValueTypeStr {
			id = v.Str()
		} else {
			// Typed values are told apart from strings that look alike.
			id = "\x00" + v.Type().String() + ":" + v.AsString()
		}
	}
	if r := t.lastWriter; r != nil && r.id == id {
		return r
	}
	r, found := t.writers[id]
	if !found {
		r = &writerRef{id: strings.Clone(id)}
		t.writers[r.id] = r
	}
	t.lastWriter = r
	return r
}

func (t *Table) releaseWriter(r *writerRef) {
	r.refs--
	if r.refs <= 0 {
		delete(t.writers, r.id)
		if t.lastWriter == r {
			t.lastWriter = nil
		}
	}
}

// writer returns s's record for ref, creating it (and evicting the least
// recently seen writer when max_writers_per_stream are already recorded).
func (t *Table) writer(s *stream, ref *writerRef, r *Result) *writerRec {
	for i := range s.writers {
		if s.writers[i].ref == ref {
			return &s.writers[i]
		}
	}
	if len(s.writers) < t.cfg.MaxWritersPerStream {
		ref.refs++
		s.writers = append(s.writers, writerRec{ref: ref})
		return &s.writers[len(s.writers)-1]
	}
	oldest := 0
	for i := range s.writers {
		if s.writers[i].lastSeen < s.writers[oldest].lastSeen {
			oldest = i
		}
	}
	t.releaseWriter(s.writers[oldest].ref)
	r.WritersEvicted++
	ref.refs++
	s.writers[oldest] = writerRec{ref: ref}
	return &s.writers[oldest]
}

// expireWriters forgets the writers of s idle since before cutoff.
func (t *Table) expireWriters(s *stream, cutoff int64) {
	k := 0
	for i := range s.writers {
		if s.writers[i].lastSeen < cutoff {
			t.releaseWriter(s.writers[i].ref)
			continue
		}
		s.writers[k] = s.writers[i]
		k++
	}
	clear(s.writers[k:])
	s.writers = s.writers[:k]
}
