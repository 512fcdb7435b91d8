package fanoutexporter

import (
	"fmt"
	"math/rand/v2"
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

// routeKeys routes n random trace IDs and returns the owner of each.
func routeKeys(r *ring, n int) []int {
	rng := rand.New(rand.NewPCG(1, 2))
	owners := make([]int, n)
	var id [16]byte
	for k := range owners {
		for b := range id {
			id[b] = byte(rng.Uint32())
		}
		owners[k] = r.owner(r.slot(hashID(id)))
	}
	return owners
}

func TestRingBalance(t *testing.T) {
	const keys = 1_000_000
	r := newRing(endpoints(10))
	load := make([]int, 10)
	for _, o := range routeKeys(r, keys) {
		load[o]++
	}
	maxLoad := 0
	for _, l := range load {
		maxLoad = max(maxLoad, l)
	}
	ratio := float64(maxLoad) / (keys / 10.0)
	t.Logf("load %v, max/mean %.4f", load, ratio)
	assert.LessOrEqual(t, ratio, 1.05)
}

func TestRingWeights(t *testing.T) {
	specs := endpoints(3)
	specs[2].weight = 2 // should take half the keys
	r := newRing(specs)
	load := make([]int, 3)
	const keys = 400_000
	for _, o := range routeKeys(r, keys) {
		load[o]++
	}
	assert.InDelta(t, 0.5, float64(load[2])/keys, 0.02, "load %v", load)
	assert.InDelta(t, 0.25, float64(load[0])/keys, 0.02, "load %v", load)
}

func TestRingAddMovesAtMostItsShare(t *testing.T) {
	const keys = 1_000_000
	for _, n := range []int{2, 5, 10, 16, 30} {
		before := routeKeys(newRing(endpoints(n)), keys)
		after := routeKeys(newRing(endpoints(n+1)), keys)
		moved := 0
		for k := range before {
			if before[k] != after[k] {
				moved++
				require.Equal(t, n, after[k], "a key moved between old backends")
			}
		}
		share := float64(moved) / keys
		t.Logf("%d -> %d backends: %.4f of keys moved", n, n+1, share)
		assert.LessOrEqual(t, share, 1.0/float64(n)+0.01)
	}
}

func TestRingRemoveMovesOnlyItsKeys(t *testing.T) {
	const keys = 500_000
	specs := endpoints(10)
	before := routeKeys(newRing(specs), keys)
	removed := 3
	rest := append(append([]backendSpec{}, specs[:removed]...), specs[removed+1:]...)
	after := routeKeys(newRing(rest), keys)
	for k := range before {
		old := specs[before[k]].endpoint
		now := rest[after[k]].endpoint
		if before[k] != removed {
			require.Equal(t, old, now, "key %d moved though its backend stayed", k)
		} else {
			require.NotEqual(t, specs[removed].endpoint, now)
		}
	}
}

// Instances that learn the same backends in a different order route alike.
func TestRingDeterministicAcrossInstances(t *testing.T) {
	specs := endpoints(7)
	shuffled := append([]backendSpec{}, specs...)
	rand.New(rand.NewPCG(3, 4)).Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	a, b := newRing(specs), newRing(shuffled)
	for s := uint32(0); s < uint32(len(a.table)); s += 97 {
		require.Equal(t, a.endpoints[a.owner(s)], b.endpoints[b.owner(s)])
		pa, pb := a.preference(s), b.preference(s)
		for i := range pa {
			require.Equal(t, a.endpoints[pa[i]], b.endpoints[pb[i]])
		}
	}
}

func TestRingPickWalksPreferenceOrder(t *testing.T) {
	r := newRing(endpoints(5))
	for s := uint32(0); s < 1000; s++ {
		order := r.preference(s)
		require.Equal(t, order[0], r.owner(s))
		tried := map[int]bool{}
		for _, want := range order {
			got := r.pick(s, func(i int) bool { return !tried[i] })
			require.Equal(t, want, got)
			tried[got] = true
		}
		require.Equal(t, -1, r.pick(s, func(i int) bool { return !tried[i] }))
	}
}

func TestRingEmpty(t *testing.T) {
	r := newRing(nil)
	assert.Equal(t, 0, r.size())
	assert.Equal(t, -1, r.owner(r.slot(12345)))
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
