package sequence

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

// The engine starts no goroutines; this keeps it that way.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// harness drives a tracker on a manual clock and tallies what it reports.
type harness struct {
	t   *testing.T
	tr  *Tracker[string]
	now time.Time
	// end is the generator's clock: each number's root span ends at
	// t0 + seq ms, unless a test says otherwise.
	counts  map[Outcome]int
	lost    int64
	ranges  []string
	created int
	restart int
}

func newHarness(t *testing.T, window int, lossAfter time.Duration, maxStreams int) *harness {
	t.Helper()
	return &harness{t: t, tr: NewTracker[string](Config{Window: window, LossAfter: lossAfter, MaxStreams: maxStreams}), now: t0, counts: map[Outcome]int{}}
}

func (h *harness) take() {
	for _, l := range h.tr.TakeLosses() {
		h.lost += l.Count()
		h.ranges = append(h.ranges, fmt.Sprintf("%s:%d-%d:%s", l.Stream.Tag, l.Lo, l.Hi, l.Reason))
	}
}

// see makes numbers of stream key arrive, each from a trace generated at
// t0+seq ms (so their order of generation is their order of numbering).
func (h *harness) see(key string, seqs ...int64) []Outcome {
	h.t.Helper()
	out := make([]Outcome, 0, len(seqs))
	for _, s := range seqs {
		out = append(out, h.seeAt(key, s, t0.Add(time.Duration(s)*time.Millisecond).UnixNano()))
	}
	return out
}

func (h *harness) seeAt(key string, seq, rootEnd int64) Outcome {
	o := h.tr.Observe(key, seq, rootEnd, h.now, func() string { return key })
	require.Equal(h.t, key, o.Stream.Tag)
	h.counts[o.Outcome]++
	if o.Created {
		h.created++
	}
	if o.Restart {
		h.restart++
	}
	h.take()
	return o.Outcome
}

func (h *harness) advance(d time.Duration) {
	h.now = h.now.Add(d)
	h.tr.Sweep(h.now)
	h.take()
}

func seq(from, to int64) []int64 {
	var s []int64
	for i := from; i <= to; i++ {
		s = append(s, i)
	}
	return s
}

func TestInOrder(t *testing.T) {
	h := newHarness(t, 100, 30*time.Second, 10)
	h.see("a", seq(1, 1000)...)
	h.advance(time.Hour)
	assert.Equal(t, 1000, h.counts[New])
	assert.Len(t, h.counts, 1)
	assert.Zero(t, h.lost)
	assert.Equal(t, int64(1000), h.tr.streams.Values()[0].High())
	assert.Empty(t, h.tr.pending)
}

func TestGapsDeclaredAfterLossAfter(t *testing.T) {
	h := newHarness(t, 1000, 30*time.Second, 10)
	h.see("a", 1, 2, 3, 7, 8)     // 4-6 missing at t0
	h.advance(10 * time.Second)   // t0+10s
	h.see("a", 9, 12)             // 10-11 missing at t0+10s
	h.advance(20*time.Second - 1) // just before 30s
	assert.Zero(t, h.lost, "nothing is lost before loss_after")
	assert.Equal(t, int64(5), h.tr.streams.Values()[0].Missing())
	h.advance(1)
	assert.Equal(t, []string{"a:4-6:loss_after"}, h.ranges)
	h.advance(10 * time.Second)
	assert.Equal(t, []string{"a:4-6:loss_after", "a:10-11:loss_after"}, h.ranges)
	assert.Equal(t, int64(5), h.lost)
	assert.Empty(t, h.tr.pending)
	// Once lost, an arrival is late (and received), a second copy a duplicate.
	assert.Equal(t, []Outcome{Late, Duplicate}, h.see("a", 5, 5))
}

func TestReorderWithinLossAfter(t *testing.T) {
	h := newHarness(t, 1000, 30*time.Second, 10)
	h.see("a", 1, 5, 3, 2)
	h.advance(29 * time.Second)
	assert.Equal(t, []Outcome{Reordered}, h.see("a", 4))
	h.advance(time.Hour)
	assert.Zero(t, h.lost)
	assert.Equal(t, 2, h.counts[New])
	assert.Equal(t, 3, h.counts[Reordered])
	assert.Empty(t, h.tr.pending)
	assert.Empty(t, h.tr.streams.Values()[0].gaps)
}

func TestReorderBeyondLossAfter(t *testing.T) {
	h := newHarness(t, 1000, 30*time.Second, 10)
	h.see("a", 1, 4)
	h.advance(30 * time.Second)
	assert.Equal(t, []string{"a:2-3:loss_after"}, h.ranges)
	assert.Equal(t, []Outcome{Late, Late, Duplicate}, h.see("a", 3, 2, 2))
	assert.Equal(t, int64(2), h.lost, "lost stays counted; late says they came after all")
}

// The stream's own expired gaps are declared before an arrival is
// classified, even without a sweep.
func TestExpiryOnArrival(t *testing.T) {
	h := newHarness(t, 1000, 30*time.Second, 10)
	h.see("a", 1, 3)
	h.now = h.now.Add(31 * time.Second)
	assert.Equal(t, []Outcome{Late}, h.see("a", 2))
	assert.Equal(t, []string{"a:2-2:loss_after"}, h.ranges)
}

func TestDuplicates(t *testing.T) {
	h := newHarness(t, 100, 30*time.Second, 10)
	out := h.see("a", 1, 1, 2, 3, 2, 3, 3)
	assert.Equal(t, []Outcome{New, Duplicate, New, New, Duplicate, Duplicate, Duplicate}, out)
	// Far below the window nothing is known: counted as a duplicate.
	h.see("a", seq(4, 500)...)
	assert.Equal(t, []Outcome{Duplicate}, h.see("a", 10))
	h.advance(time.Hour)
	assert.Zero(t, h.lost)
}

func TestSplitGaps(t *testing.T) {
	h := newHarness(t, 1000, 30*time.Second, 10)
	h.see("a", 1, 20)         // gap 2-19
	h.see("a", 10, 2, 19, 15) // split, trim both ends, split again
	s := h.tr.streams.Values()[0]
	assert.Equal(t, []gap{{3, 9, t0}, {11, 14, t0}, {16, 18, t0}}, s.gaps)
	h.advance(30 * time.Second)
	assert.Equal(t, []string{"a:3-9:loss_after", "a:11-14:loss_after", "a:16-18:loss_after"}, h.ranges)
	assert.Equal(t, int64(14), h.lost)
}

func TestWindow(t *testing.T) {
	h := newHarness(t, 64, time.Hour, 10)
	h.see("a", 1, 3) // gap 2
	// 3 + 64 pushes 2..3 out of the window: 2 is lost at once.
	h.see("a", 67)
	assert.Equal(t, []string{"a:2-2:window"}, h.ranges)
	assert.Equal(t, int64(63), h.tr.streams.Values()[0].Missing(), "4..66")
	h.ranges = nil
	// A jump of more than the window: what falls below it is lost now,
	// the rest is a gap.
	h.see("a", 1000)
	assert.Equal(t, []string{"a:4-66:window", "a:68-936:window"}, h.ranges)
	assert.Equal(t, int64(63), h.tr.streams.Values()[0].Missing(), "937..999")
	assert.Equal(t, Reordered, h.see("a", 937)[0])
	assert.Equal(t, Duplicate, h.see("a", 936)[0], "below the window: nothing known")
}

func TestWindowLossesAreExact(t *testing.T) {
	// Every other number missing, the window far smaller than the run:
	// every missing number is declared lost exactly once.
	h := newHarness(t, 100, time.Hour, 10)
	for i := int64(1); i <= 10001; i += 2 {
		h.see("a", i)
	}
	h.advance(2 * time.Hour)
	assert.Equal(t, int64(5000), h.lost)
	assert.Empty(t, h.tr.pending)
}

func TestRestart(t *testing.T) {
	h := newHarness(t, 1000, 30*time.Second, 10)
	h.see("a", 1, 2, 3, 5) // 4 missing
	// The generator restarts with the same ID: 1 again, generated later.
	later := t0.Add(time.Hour).UnixNano()
	assert.Equal(t, New, h.seeAt("a", 1, later))
	assert.Equal(t, 1, h.restart)
	assert.Equal(t, []string{"a:4-4:restart"}, h.ranges)
	// The new run goes on: 3 opens a gap of 2, which then arrives.
	assert.Equal(t, New, h.seeAt("a", 3, later+2))
	assert.Equal(t, Reordered, h.seeAt("a", 2, later+1))
	// Restarting at 3 with 1-2 unseen: those are a gap of the new run.
	assert.Equal(t, New, h.seeAt("a", 3, later+int64(time.Hour)))
	assert.Equal(t, 2, h.restart)
	h.advance(30 * time.Second)
	assert.Equal(t, []string{"a:4-4:restart", "a:1-2:loss_after"}, h.ranges)
	assert.Equal(t, 1, h.created)
}

func TestRestartNeedsBothEndTimes(t *testing.T) {
	h := newHarness(t, 1000, 30*time.Second, 10)
	h.seeAt("a", 5, 0)
	assert.Equal(t, Reordered, h.seeAt("a", 1, t0.UnixNano()), "no end time on the highest: not a restart")
	assert.Zero(t, h.restart)
}

func TestGeneratorsInterleaved(t *testing.T) {
	h := newHarness(t, 1000, 30*time.Second, 10)
	for i := int64(1); i <= 100; i++ {
		for _, k := range []string{"a", "b", "c"} {
			switch {
			case k == "b" && i%10 == 0: // b loses every tenth
			case k == "c" && i%2 == 0 && i < 100: // c's even ones come late, within loss_after
			default:
				h.see(k, i)
			}
		}
		if i%2 == 1 && i > 1 {
			h.see("c", i-1)
		}
	}
	h.advance(time.Minute)
	assert.Equal(t, 3, h.tr.Len())
	assert.Equal(t, 3, h.created)
	assert.Equal(t, int64(9), h.lost, "b: 10, 20, ..., 90 (100 is its last; no higher number came)")
	for _, r := range h.ranges {
		assert.Contains(t, r, "b:")
	}
	assert.Equal(t, 49, h.counts[Reordered], "c's even numbers 2..98")
}

func TestMaxStreamsLRU(t *testing.T) {
	h := newHarness(t, 100, 30*time.Second, 3)
	h.see("a", 1, 3) // a has a gap
	h.see("b", 1)
	h.see("c", 1)
	h.see("a", 4) // a is the most recently seen now
	h.see("d", 1) // evicts b
	assert.Equal(t, 3, h.tr.Len())
	assert.Equal(t, int64(1), h.tr.Evicted())
	_, ok := h.tr.streams.Peek("b")
	assert.False(t, ok)
	h.see("e", 1) // evicts c
	h.see("f", 1) // evicts a, whose gap is forgotten, not declared lost
	assert.Empty(t, h.tr.pending)
	h.advance(time.Hour)
	assert.Zero(t, h.lost)
	assert.Equal(t, int64(3), h.tr.Evicted())
	// b comes back: a new stream.
	h.see("b", 2)
	assert.Equal(t, 7, h.created)
}

// A flood of generators and numbers keeps within the bounds.
func TestBoundsUnderFlood(t *testing.T) {
	const window, streams = 256, 50
	h := newHarness(t, window, time.Hour, streams)
	for i := range 200_000 {
		key := fmt.Sprintf("g%d", i%(3*streams))
		// Numbers all over the place: jumps, gaps, repeats.
		s := int64((i*7919)%100_000 + 1)
		h.see(key, s)
		if i%1000 == 0 {
			require.LessOrEqual(t, h.tr.Len(), streams)
			for _, st := range h.tr.streams.Values() {
				require.LessOrEqual(t, len(st.gaps), maxGaps)
				require.Len(t, st.seen, window/64)
				for _, g := range st.gaps {
					require.Greater(t, g.lo, st.high-window, "gaps stay inside the window")
				}
			}
		}
	}
	require.LessOrEqual(t, len(h.tr.pending), streams)
	assert.Positive(t, h.tr.Evicted())
}

func TestTooManyGaps(t *testing.T) {
	h := newHarness(t, 10_000, time.Hour, 1)
	n := 0
	for i := int64(1); i <= 2*(maxGaps+10); i += 2 {
		h.see("a", i)
		n++
	}
	s := h.tr.streams.Values()[0]
	assert.Len(t, s.gaps, maxGaps)
	assert.Equal(t, int64(n-1-maxGaps), h.lost, "one gap between each two numbers, the oldest past maxGaps lost early")
	assert.Equal(t, "a:2-2:too_many_gaps", h.ranges[0])
	h.see("a", 700) // a new gap [532, 699]: the oldest goes
	assert.Len(t, s.gaps, maxGaps)
	// Splitting a gap when full drops the oldest one too.
	oldest := s.gaps[0]
	h.ranges = nil
	h.see("a", 600)
	assert.Equal(t, []string{fmt.Sprintf("a:%d-%d:too_many_gaps", oldest.lo, oldest.hi)}, h.ranges)
	assert.Len(t, s.gaps, maxGaps)
	assert.Equal(t, gap{lo: 532, hi: 599, opened: t0}, s.gaps[maxGaps-2])
	assert.Equal(t, gap{lo: 601, hi: 699, opened: t0}, s.gaps[maxGaps-1])
}

func TestSplitOldestWhenFull(t *testing.T) {
	h := newHarness(t, 10_000, time.Hour, 1)
	h.see("a", 1, 10) // gap 2-9, the oldest
	for i := int64(12); len(h.tr.streams.Values()[0].gaps) < maxGaps; i += 2 {
		h.see("a", i)
	}
	h.see("a", 5) // split of the oldest gap when full: its lower part goes
	assert.Equal(t, []string{"a:2-4:too_many_gaps"}, h.ranges)
	s := h.tr.streams.Values()[0]
	assert.Equal(t, int64(6), s.gaps[0].lo)
	assert.Len(t, s.gaps, maxGaps)
}

func TestExtremeNumbers(t *testing.T) {
	h := newHarness(t, 64, time.Second, 2)
	const maxInt = int64(^uint64(0) >> 1)
	for _, a := range []struct{ seq, end int64 }{{1, 1}, {maxInt, 3}, {maxInt - 1, 2}, {1, 1}, {maxInt, 3}} {
		h.seeAt("a", a.seq, a.end)
	}
	assert.Equal(t, map[Outcome]int{New: 2, Reordered: 1, Duplicate: 2}, h.counts)
	h.advance(time.Hour)
	// 2..maxInt-64 leave the window at once, maxInt-63..maxInt-2 after loss_after.
	assert.Equal(t, maxInt-3, h.lost)
}
