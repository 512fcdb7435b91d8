package sequence

import (
	"encoding/binary"
	"math"
	"testing"
	"time"
)

// FuzzTracker drives a tracker with arbitrary arrivals (keys, numbers of
// any size, end times, clock steps) and checks its bounds after every step:
// at most MaxStreams streams, every stream's gaps sorted, disjoint, inside
// its window and at most maxGaps, its bitmap of the configured size.
func FuzzTracker(f *testing.F) {
	f.Add([]byte{0, 1, 0, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0, 3})
	f.Add([]byte("\x01\xff\xff\xff\xff\xff\xff\xff\x7f\x02\x00\x00\x00\x00\x00\x00\x00\x01"))
	f.Fuzz(func(t *testing.T, data []byte) {
		const window, streams = 128, 4
		tr := NewTracker[int](Config{Window: window, LossAfter: time.Second, MaxStreams: streams})
		now := time.Unix(0, 0)
		for len(data) >= 10 {
			op, k := data[0], data[1]
			v := int64(binary.LittleEndian.Uint64(data[2:10]))
			data = data[10:]
			switch op % 4 {
			case 0: // small number
				v = v%300 + 1
			case 1: // any number
			case 2:
				now = now.Add(time.Duration(uint64(v) % uint64(3*time.Second)))
				tr.Sweep(now)
				tr.TakeLosses()
				continue
			case 3: // a restart-looking end time
			}
			if v < 1 {
				v = v&math.MaxInt64 | 1
			}
			end := int64(op) * int64(k)
			key := string(rune('a' + k%8))
			o := tr.Observe(key, v, end, now, func() int { return 0 })
			if o.Stream == nil {
				t.Fatal("no stream")
			}
			for _, l := range tr.TakeLosses() {
				if l.Lo > l.Hi || l.Lo < 1 {
					t.Fatalf("bad loss range %d-%d", l.Lo, l.Hi)
				}
			}
			if tr.Len() > streams || len(tr.pending) > streams {
				t.Fatalf("%d streams, %d pending, bound %d", tr.Len(), len(tr.pending), streams)
			}
			for _, s := range tr.streams.Values() {
				if len(s.seen) != window/64 || len(s.gaps) > maxGaps {
					t.Fatalf("stream holds %d words, %d gaps", len(s.seen), len(s.gaps))
				}
				prev := int64(math.MinInt64)
				for _, g := range s.gaps {
					if g.lo > g.hi || g.lo <= prev || g.lo <= s.high-window || g.hi >= s.high {
						t.Fatalf("gap %d-%d (previous ends %d) in a stream at %d", g.lo, g.hi, prev, s.high)
					}
					prev = g.hi
				}
				if s.pending != (len(s.gaps) > 0) {
					t.Fatalf("pending %v with %d gaps", s.pending, len(s.gaps))
				}
			}
		}
	})
}

// FuzzAccounting: one stream, no restarts, numbers that never leave the
// window: once every gap has expired, every number from the first seen to
// the highest is either received or lost (then maybe late), exactly once,
// and a duplicate is always a number received before.
func FuzzAccounting(f *testing.F) {
	f.Add([]byte{5, 1, 3, 3, 2, 200, 9, 4, 4})
	f.Add([]byte{1, 2, 3, 4, 0, 10, 0, 7})
	f.Fuzz(func(t *testing.T, data []byte) {
		tr := NewTracker[int](Config{Window: 1024, LossAfter: 10 * time.Second, MaxStreams: 1})
		now := time.Unix(0, 0)
		received := map[int64]bool{}
		var first, high, lost, late int64
		for i, b := range data {
			if b == 0 { // time passes
				now = now.Add(time.Duration(i%20) * time.Second)
				tr.Sweep(now)
			} else {
				seq := int64(b)
				o := tr.Observe("a", seq, 0, now, func() int { return 0 })
				if o.Created {
					first = seq
				}
				high = max(high, seq)
				switch o.Outcome {
				case Duplicate:
					if !received[seq] {
						t.Fatalf("%d: duplicate of a number never received", seq)
					}
				case Late:
					late++
				}
				if o.Outcome != Duplicate {
					if received[seq] {
						t.Fatalf("%d received twice", seq)
					}
					received[seq] = true
				}
			}
			for _, l := range tr.TakeLosses() {
				lost += l.Count()
			}
		}
		if first == 0 {
			return
		}
		tr.Sweep(now.Add(time.Hour))
		for _, l := range tr.TakeLosses() {
			lost += l.Count()
		}
		var got int64
		for s := range received {
			if s >= first {
				got++
			}
		}
		if got+lost-late != high-first+1 {
			t.Fatalf("numbers %d..%d: %d received, %d lost, %d late: %d, want %d", first, high, got, lost, late, got+lost-late, high-first+1)
		}
	})
}
