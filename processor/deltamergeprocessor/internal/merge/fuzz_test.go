package merge

import (
	"fmt"
	"math"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pmetric"
)

// FuzzMerge drives the table with random delta traffic from several
// writers into a few streams of every kind — interleaved, restarted,
// out of order, retried — and checks after every flush that each stream's
// cumulative equals the sum of its unique deltas: every delta counted
// exactly once, whatever the order.
//
// Each op is 3 bytes: writer and stream, action, value. Actions: send the
// writer's next window; send a window after a gap (a restart); hold the
// next window back to deliver it later (out of order); deliver a held
// window; re-send one of the writer's last DedupWindows merged windows (a
// retry, which must be dropped); flush.
func FuzzMerge(f *testing.F) {
	f.Add([]byte{0x00, 0, 5, 0x10, 0, 7, 0x00, 4, 0, 0x00, 0, 1})
	f.Add([]byte{0x01, 2, 3, 0x11, 2, 3, 0x01, 3, 0, 0x01, 4, 0, 0x21, 1, 9, 0x01, 5, 0})
	f.Add([]byte{0x02, 0, 1, 0x12, 1, 2, 0x22, 0, 200, 0x32, 2, 0, 0x02, 4, 1, 0x12, 3, 0, 0x02, 5, 0})
	f.Add([]byte{0x03, 0, 1, 0x13, 0, 2, 0x23, 2, 3, 0x03, 3, 0, 0x33, 4, 9, 0x13, 5, 0, 0x03, 4, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		const writers, streams = 4, 4
		type key struct{ w, s int }
		type win struct {
			start, end int
			v          int64
			scale      int32
		}
		cfg := testConfig()
		cfg.Expiration = 0 // time jumps at random; expiry would restart streams
		tb := New(cfg)
		next := map[key]int{}      // next window start, per writer and stream
		merged := map[key][]win{}  // windows merged, in arrival order
		held := map[key][]win{}    // windows held back
		want := map[int]int64{}    // expected total per stream (count, for histograms)
		wantSum := map[int]int64{} // expected sum per stream
		now := t0
		send := func(k key, w win) {
			md := build(point(k.w, k.s, w.start, w.end, w.v, w.scale))
			r := tb.Consume(md, now)
			if r.Merged != 1 {
				t.Fatalf("writer %d stream %d window (%d, %d]: %+v, want it merged", k.w, k.s, w.start, w.end, r)
			}
			merged[k] = append(merged[k], w)
			want[k.s] += w.v
			wantSum[k.s] += w.v * int64(k.s+1)
		}
		check := func() {
			md, _ := tb.Flush(now)
			got, gotSum := totals(t, md)
			for s := range streams {
				if got[s] != want[s] {
					t.Fatalf("stream %d: cumulative %d, want %d (sum of unique deltas)", s, got[s], want[s])
				}
				if s >= 2 && gotSum[s] != float64(wantSum[s]) {
					t.Fatalf("stream %d: histogram sum %g, want %d", s, gotSum[s], wantSum[s])
				}
			}
		}
		for i := 0; i+2 < len(data); i += 3 {
			k := key{int(data[i]>>4) % writers, int(data[i]&0x0f) % streams}
			v := int64(data[i+2])
			length := 1 + int(data[i+2]%7)
			scale := int32(k.w) - 1 // writers at different exponential scales
			switch data[i+1] % 6 {
			case 0: // next window
				w := win{next[k], next[k] + length, v, scale}
				next[k] = w.end
				send(k, w)
			case 1: // restart: a new epoch after a gap
				w := win{next[k] + 1000, next[k] + 1000 + length, v, scale}
				next[k] = w.end
				send(k, w)
			case 2: // hold the next window back
				w := win{next[k], next[k] + length, v, scale}
				next[k] = w.end
				held[k] = append(held[k], w)
			case 3: // deliver the oldest held window, now out of order
				if h := held[k]; len(h) > 0 {
					held[k] = h[1:]
					send(k, h[0])
				}
			case 4: // retry one of the last DedupWindows merged windows
				m := merged[k]
				if len(m) == 0 {
					continue
				}
				n := min(len(m), DedupWindows)
				w := m[len(m)-1-int(v)%n]
				r := tb.Consume(build(point(k.w, k.s, w.start, w.end, w.v, w.scale)), now)
				if r.Duplicates != 1 || r.Merged != 0 {
					t.Fatalf("retry of writer %d stream %d window (%d, %d]: %+v, want a duplicate", k.w, k.s, w.start, w.end, r)
				}
			case 5:
				now = now.Add(time.Duration(v) * time.Second)
				check()
			}
		}
		check()
	})
}

// point is writer w's delta for stream s: streams 0 and 1 are sums (1 an
// int sum, 0 a double sum of whole numbers), 2 an explicit histogram, 3
// an exponential histogram whose scale depends on the writer.
func point(w, s, start, end int, v int64, scale int32) pt {
	p := pt{writer: fmt.Sprint("gw-", w), attrs: map[string]any{"s": int64(s)}, start: start, end: end}
	switch s {
	case 0:
		p.f = float64(v)
		if v == 0 {
			p.v = 0
		}
	case 1:
		p.v = v
	case 2:
		p.kind = "hist"
		p.bounds = []float64{1, 10, 100}
		p.counts = []uint64{uint64(v) / 2, 0, uint64(v) - uint64(v)/2, 0}
		p.sum = float64(v * int64(s+1))
		p.noMinMax = true
	case 3:
		p.kind = "expo"
		p.scale = scale
		// v values around 2^(v%40): far apart values force downscaling.
		idx := int32(v%40) << max(scale, 0)
		p.posOff = idx
		p.pos = []uint64{uint64(v) / 3, uint64(v) - uint64(v)/3}
		p.sum = float64(v * int64(s+1))
	}
	return p
}

// totals reads the cumulative of each test stream: the value for sums,
// the count for histograms (checked against their buckets), and the
// histograms' sums.
func totals(t *testing.T, md pmetric.Metrics) (map[int]int64, map[int]float64) {
	t.Helper()
	got, sums := map[int]int64{}, map[int]float64{}
	for _, o := range points(t, md) {
		var s int
		if _, err := fmt.Sscanf(o.attrs, "s=%d;", &s); err != nil {
			t.Fatalf("attributes %q: %v", o.attrs, err)
		}
		switch s {
		case 0:
			if o.isDouble {
				got[s] = int64(math.Round(o.dblV))
			} else {
				got[s] = o.intV
			}
		case 1:
			got[s] = o.intV
		case 2:
			var n uint64
			for _, c := range o.hist.BucketCounts().All() {
				n += c
			}
			if n != o.hist.Count() {
				t.Fatalf("histogram buckets hold %d, count is %d", n, o.hist.Count())
			}
			got[s] = int64(n)
			sums[s] = o.hist.Sum()
		case 3:
			e := o.expo
			n := e.ZeroCount()
			for _, c := range e.Positive().BucketCounts().All() {
				n += c
			}
			for _, c := range e.Negative().BucketCounts().All() {
				n += c
			}
			if n != e.Count() {
				t.Fatalf("exponential buckets hold %d, count is %d", n, e.Count())
			}
			if e.Positive().BucketCounts().Len() > DefaultMaxExpoBuckets {
				t.Fatalf("%d buckets, more than %d", e.Positive().BucketCounts().Len(), DefaultMaxExpoBuckets)
			}
			got[s] = int64(n)
			sums[s] = e.Sum()
		}
	}
	return got, sums
}
