package redmetricsconnector

import (
	"hash/maphash"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

// The store's open-addressing index against a map: random inserts,
// lookups and removals (in and out of FIFO order), on a small table so
// probe runs wrap around its end and collide. Hashes are forced into few
// values to make runs long.
func TestPairShardIndexMatchesMap(t *testing.T) {
	cfg := sgConfig()
	cfg.ServiceGraph.Store.MaxItems = 40
	seed := maphash.MakeSeed()
	g := newServiceGraph(cfg, seed)
	require.Len(t, g.stores, 1)
	sh := &g.stores[0]
	rng := rand.New(rand.NewPCG(1, 2))
	ref := map[pairKey]bool{}
	node := &halfNode{vals: []dimVal{{t: vStr, s: "svc"}, {}}}
	key := func() pairKey {
		var k pairKey
		k.t0 = uint64(rng.IntN(64))
		k.span = uint64(rng.IntN(4))
		return k
	}
	hash := func(k *pairKey) uint64 { return k.t0 % 5 * 7 } // few, clustered home slots
	for step := 0; step < 200_000; step++ {
		k := key()
		h := hash(&k)
		slot, i := sh.lookup(h, &k)
		require.Equal(t, ref[k], i >= 0, "step %d", step)
		switch {
		case i >= 0 && rng.IntN(2) == 0:
			sh.removeAt(slot, i)
			delete(ref, k)
		case i < 0 && sh.n < sh.max:
			p := sh.insertAt(slot)
			p.key, p.h, p.node = k, h, node
			ref[k] = true
		case sh.head >= 0 && rng.IntN(3) == 0:
			// Remove the oldest, as expiry does.
			e := &sh.slab[sh.head]
			hk := e.key
			s, j := sh.lookup(e.h, &hk)
			require.Equal(t, sh.head, j)
			sh.removeAt(s, j)
			delete(ref, hk)
		}
		require.Equal(t, len(ref), sh.n)
	}
	// Every key still present is found; the FIFO holds exactly them.
	n := 0
	for i := sh.head; i >= 0; i = sh.slab[i].next {
		k := sh.slab[i].key
		require.True(t, ref[k])
		_, j := sh.lookup(hash(&k), &k)
		require.Equal(t, i, j)
		n++
	}
	require.Equal(t, len(ref), n)
}
