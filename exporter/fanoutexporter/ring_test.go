package fanoutexporter

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func endpoints(n int) []backendSpec {
	specs := make([]backendSpec, n)
	for i := range specs {
		specs[i] = backendSpec{endpoint: fmt.Sprintf("backend-%d.example:4317", i), weight: 1}
	}
	return specs
}

// forEachTraceID calls f with the slot of n random trace IDs, hashed the way
// the traces path hashes them.
func forEachTraceID(n int, f func(slot uint32)) {
	rng := rand.New(rand.NewPCG(1, 2))
	var id [16]byte
	for range n {
		binary.LittleEndian.PutUint64(id[:8], rng.Uint64())
		binary.LittleEndian.PutUint64(id[8:], rng.Uint64())
		f(uint32(hashID(id) >> (64 - slotBits)))
	}
}

// loads routes n random trace IDs and counts each backend's.
func loads(r *ring, n int) []int {
	load := make([]int, r.size())
	forEachTraceID(n, func(s uint32) { load[r.owner(s)]++ })
	return load
}

// slotCounts is how many slots each backend owns.
func slotCounts(r *ring) []int {
	c := make([]int, r.size())
	for _, o := range r.table {
		c[o]++
	}
	return c
}

// balanceKeys is the number of trace IDs of the balance and weight tests:
// 10M, so that the keys' own noise (1% per backend at 1,000 backends) leaves
// room under 1.05. Under -race it is 2M and the bounds below are widened by
// the keys' extra noise.
var balanceKeys = map[bool]int{false: 10_000_000, true: 2_000_000}[raceEnabled]

// maxOverMean allows for the keys' own noise: 1.05 at 10M keys; under -race
// (fewer keys) the same margin over 4.5 standard deviations.
func maxOverMean(n, keys int) float64 {
	if keys >= 10_000_000 {
		return 1.05
	}
	return 1.005 + 4.5/math.Sqrt(float64(keys)/float64(n))
}

func TestRingBalance(t *testing.T) {
	for _, n := range []int{10, 300, 1000} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			r := newRing(endpoints(n))
			// The table gives every backend its share to the slot.
			c := slotCounts(r)
			assert.LessOrEqual(t, slices.Max(c)-slices.Min(c), 1, "slot counts")
			load := loads(r, balanceKeys)
			mean := float64(balanceKeys) / float64(n)
			ratio := float64(slices.Max(load)) / mean
			t.Logf("%d backends, %d trace IDs: max/mean %.4f, min/mean %.4f", n, balanceKeys, ratio, float64(slices.Min(load))/mean)
			assert.LessOrEqual(t, ratio, maxOverMean(n, balanceKeys))
		})
	}
}

func TestRingWeights(t *testing.T) {
	t.Run("3", func(t *testing.T) {
		specs := endpoints(3)
		specs[2].weight = 2 // should take half the keys
		r := newRing(specs)
		load := loads(r, 400_000)
		assert.InDelta(t, 0.5, float64(load[2])/400_000, 0.02, "load %v", load)
		assert.InDelta(t, 0.25, float64(load[0])/400_000, 0.02, "load %v", load)
	})
	for _, n := range []int{300, 1000} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			specs := halfWeighted(endpoints(n))
			r := newRing(specs)
			// Slots: exactly proportional (to the slot).
			c := slotCounts(r)
			for i, s := range specs {
				want := float64(numSlots) * s.weight / (1.5 * float64(n))
				require.InDelta(t, want, c[i], 1, "backend %d slots", i)
			}
			// Keys: the weight-2 backends carry twice the keys of the others
			// (within 2%), and no backend more than its share allows.
			load := loads(r, balanceKeys)
			var sum [3]float64
			worst := 0.0
			for i, s := range specs {
				sum[int(s.weight)] += float64(load[i])
				worst = max(worst, float64(load[i])/(float64(balanceKeys)*s.weight/(1.5*float64(n))))
			}
			ratio := sum[2] / sum[1] // as many backends of each weight
			t.Logf("%d backends: weight-2/weight-1 load %.4f, worst load/share %.4f", n, ratio, worst)
			assert.InEpsilon(t, 2, ratio, 0.02)
			assert.LessOrEqual(t, worst, maxOverMean(n, balanceKeys))
		})
	}
}

// moves compares the owners of every slot (every slot is 1/2^20 of the key
// space) in two rings by endpoint: the share that moved, and the share that
// moved between backends present in both.
func moves(a, b *ring) (moved, between float64) {
	inB := map[string]bool{}
	for _, e := range b.endpoints {
		inB[e] = true
	}
	inA := map[string]bool{}
	for _, e := range a.endpoints {
		inA[e] = true
	}
	m, bt := 0, 0
	for s := range a.table {
		ea, eb := a.endpoints[a.table[s]], b.endpoints[b.table[s]]
		if ea != eb {
			m++
			if inB[ea] && inA[eb] {
				bt++
			}
		}
	}
	return float64(m) / numSlots, float64(bt) / numSlots
}

// maxBetween is the share of keys allowed to move between backends that
// stayed on a set change: the cost of the quotas (measured ≤ 0.1% with
// equal weights; with weights 1 and 2, ≤ 0.13% from 300 backends on and
// ≈ 0.35% at 10).
func maxBetween(n int, weighted bool) float64 {
	if weighted && n < 100 {
		return 0.005
	}
	return 0.002
}

// halfWeighted gives every other backend weight 2.
func halfWeighted(specs []backendSpec) []backendSpec {
	for i := 1; i < len(specs); i += 2 {
		specs[i].weight = 2
	}
	return specs
}

func TestRingAddMovesItsShare(t *testing.T) {
	for _, n := range []int{2, 10, 30, 300, 1000} {
		for _, weighted := range []bool{false, true} {
			if weighted && n < 10 {
				continue
			}
			specs := endpoints(n + 1)
			if weighted {
				halfWeighted(specs[:n]) // the newcomer has weight 1
			}
			before, after := newRing(specs[:n]), newRing(specs)
			share := 1 / float64(n+1)
			if weighted {
				share = 1 / (1.5*float64(n) + 1)
			}
			moved, between := moves(before, after)
			t.Logf("%d -> %d backends (weighted %v): %.5f of keys moved (its share %.5f), %.5f between old backends", n, n+1, weighted, moved, share, between)
			// The new backend gets exactly its share...
			assert.InDelta(t, share*numSlots, slotCounts(after)[n], 1)
			// ...and little else moves.
			assert.LessOrEqual(t, between, maxBetween(n, weighted))
			assert.LessOrEqual(t, moved, share+maxBetween(n, weighted))
		}
	}
}

func TestRingRemoveMovesItsKeys(t *testing.T) {
	for _, n := range []int{10, 300, 1000} {
		for _, weighted := range []bool{false, true} {
			specs := endpoints(n)
			if weighted {
				halfWeighted(specs)
			}
			removed := 3
			rest := slices.Delete(slices.Clone(specs), removed, removed+1)
			before, after := newRing(specs), newRing(rest)
			moved, between := moves(before, after)
			t.Logf("%d -> %d backends (weighted %v): %.5f of keys moved, %.5f between backends that stayed", n, n-1, weighted, moved, between)
			assert.LessOrEqual(t, between, maxBetween(n, weighted))
			for s := range before.table {
				if before.table[s] == uint16(removed) {
					require.NotEqual(t, specs[removed].endpoint, after.endpoints[after.table[s]])
				}
			}
		}
	}
}

// Instances that learn the same backends in a different order route alike,
// and fail over alike.
func TestRingDeterministicAcrossInstances(t *testing.T) {
	for _, n := range []int{7, 300} {
		for _, weighted := range []bool{false, true} {
			specs := endpoints(n)
			if weighted {
				for i := 0; i < n; i += 3 {
					specs[i].weight = 2.5
				}
			}
			shuffled := slices.Clone(specs)
			rand.New(rand.NewPCG(3, uint64(n))).Shuffle(n, func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
			a, b := newRing(specs), newRing(shuffled)
			for s := range a.table {
				if ea, eb := a.endpoints[a.table[s]], b.endpoints[b.table[s]]; ea != eb {
					t.Fatalf("n=%d weighted=%v: slot %d owned by %s and %s", n, weighted, s, ea, eb)
				}
			}
			for s := uint32(0); s < numSlots; s += 9973 {
				pa, pb := a.preference(s), b.preference(s)
				for i := range pa {
					require.Equal(t, a.endpoints[pa[i]], b.endpoints[pb[i]])
				}
			}
		}
	}
}

func TestRingPickWalksPreferenceOrder(t *testing.T) {
	for _, specs := range [][]backendSpec{endpoints(5), {{"a:1", 1}, {"b:1", 3}, {"c:1", 0.5}}} {
		r := newRing(specs)
		for s := uint32(0); s < 1000; s++ {
			order := r.preference(s)
			require.Len(t, order, len(specs))
			require.Equal(t, order[0], r.owner(s))
			require.Equal(t, order[0], r.pick(s, nil))
			tried := map[int]bool{}
			for _, want := range order {
				got := r.pick(s, func(i int) bool { return !tried[i] })
				require.Equal(t, want, got)
				tried[got] = true
			}
			require.Equal(t, -1, r.pick(s, func(i int) bool { return !tried[i] }))
		}
	}
}

// A failed backend's keys spread evenly over the others.
func TestRingFailoverSpreads(t *testing.T) {
	const n = 10
	r := newRing(endpoints(n))
	got := make([]int, n)
	total := 0
	for s := range uint32(numSlots) {
		if r.owner(s) == 0 {
			got[r.pick(s, func(i int) bool { return i != 0 })]++
			total++
		}
	}
	assert.Zero(t, got[0])
	for i := 1; i < n; i++ {
		assert.InEpsilon(t, float64(total)/(n-1), got[i], 0.05, "failover targets %v", got)
	}
}

func TestRingEmpty(t *testing.T) {
	r := newRing(nil)
	assert.Equal(t, 0, r.size())
	assert.Equal(t, -1, r.owner(r.slot(12345)))
	assert.Equal(t, -1, r.pick(0, nil))
	assert.Empty(t, r.preference(0))
}

func TestRingOneBackend(t *testing.T) {
	r := newRing(endpoints(1))
	assert.Equal(t, []int{numSlots}, slotCounts(r))
}

// Extreme weights still give every backend its share of slots.
func TestRingExtremeWeights(t *testing.T) {
	specs := endpoints(20)
	specs[0].weight = 1e6
	specs[1].weight = 1e-3
	r := newRing(specs)
	c := slotCounts(r)
	var w float64
	for _, s := range specs {
		w += s.weight
	}
	for i, s := range specs {
		assert.InDelta(t, float64(numSlots)*s.weight/w, c[i], 1, "backend %d", i)
	}
}

func TestSlotPermIsABijection(t *testing.T) {
	for _, seed := range []uint64{0, 1, 0xdeadbeef, 1 << 63} {
		p := newSlotPerm(seed)
		seen := make([]bool, numSlots)
		for s := range uint32(numSlots) {
			rank := p.fwd(s)
			if seen[rank] || p.inv(rank) != s {
				t.Fatalf("seed %#x: slot %d has rank %d, seen %v, inverse %d", seed, s, rank, seen[rank], p.inv(rank))
			}
			seen[rank] = true
		}
	}
}

func BenchmarkRingOwner(b *testing.B) {
	r := newRing(endpoints(10))
	var id [16]byte
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		id[0], id[15] = byte(i), byte(i>>8)
		_ = r.owner(r.slot(hashID(id)))
	}
}

// BenchmarkRingBuild is the cost of a backend set change (off the data
// path: the new ring is built before it is swapped in).
func BenchmarkRingBuild(b *testing.B) {
	for _, n := range []int{10, 300, 1000} {
		for _, weighted := range []bool{false, true} {
			specs := endpoints(n)
			name := fmt.Sprintf("n=%d", n)
			if weighted {
				halfWeighted(specs)
				name += "/weighted"
			}
			b.Run(name, func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					_ = newRing(specs)
				}
			})
		}
	}
}

// BenchmarkRingPick is the failover path: the owner excluded.
func BenchmarkRingPick(b *testing.B) {
	for _, n := range []int{10, 1000} {
		b.Run(fmt.Sprintf("n=%d", n), func(b *testing.B) {
			r := newRing(endpoints(n))
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				s := uint32(i) & slotMask
				o := r.owner(s)
				_ = r.pick(s, func(j int) bool { return j != o })
			}
		})
	}
}
