package fanoutexporter

import (
	"math"
	"slices"
)

// ring places routing keys on backends with weighted rendezvous hashing
// (highest random weight). Rendezvous was chosen over a virtual-node ring and
// Maglev because it gives every key a full, deterministic preference order
// (first choice, second, ...) for failover at no extra cost, moves only
// 1/(N+1) of keys when a backend joins and only the leaving backend's keys
// when one leaves, and needs no tuning of virtual-node counts to balance.
//
// Its cost, O(N) per lookup, is paid once per slot instead of once per item:
// keys hash into a fixed table of slots, and the first choice of every slot
// is precomputed when the backend set changes. The data path does one shift
// and one load per item.
type ring struct {
	endpoints []string
	seeds     []uint64
	weights   []float64 // nil when every weight is equal (the fast path)
	table     []uint16  // slot -> index of its first-choice backend
}

const (
	// slotBits fixes the table at 2^20 slots (2 MiB). It must not depend on
	// the number of backends: a slot's preference order is computed from its
	// number, so resizing the table would move keys between backends that
	// stayed. 2^20 slots keep the table's own imbalance (binomial noise on
	// slot counts) around 1% up to a thousand backends.
	slotBits    = 20
	maxBackends = math.MaxUint16
)

type backendSpec struct {
	endpoint string
	weight   float64
}

func newRing(specs []backendSpec) *ring {
	r := &ring{}
	if len(specs) == 0 {
		return r
	}
	uniform := true
	for _, s := range specs {
		r.endpoints = append(r.endpoints, s.endpoint)
		r.seeds = append(r.seeds, newHasher().str(s.endpoint).sum())
		if s.weight != specs[0].weight {
			uniform = false
		}
	}
	if !uniform {
		for _, s := range specs {
			r.weights = append(r.weights, s.weight)
		}
	}
	r.table = make([]uint16, 1<<slotBits)
	for s := range r.table {
		r.table[s] = uint16(r.pick(uint32(s), nil))
	}
	return r
}

func (r *ring) size() int { return len(r.endpoints) }

// slot maps a key hash to its slot.
func (r *ring) slot(h uint64) uint32 { return uint32(h >> (64 - slotBits)) }

// owner is the first-choice backend of a slot, or -1 when there is none.
func (r *ring) owner(slot uint32) int {
	if len(r.table) == 0 {
		return -1
	}
	return int(r.table[slot])
}

// pick returns the highest-scoring backend of slot that allowed accepts (all
// when allowed is nil), or -1. Calling it with the backends already tried
// excluded walks the slot's preference order.
func (r *ring) pick(slot uint32, allowed func(int) bool) int {
	best, bestScore := -1, math.Inf(-1)
	for i := range r.seeds {
		if allowed != nil && !allowed(i) {
			continue
		}
		if s := r.score(slot, i); best < 0 || s > bestScore {
			best, bestScore = i, s
		}
	}
	return best
}

func (r *ring) score(slot uint32, i int) float64 {
	u := mix64(uint64(slot)*0x9e3779b97f4a7c15 ^ r.seeds[i])
	if r.weights == nil {
		return float64(u)
	}
	// Weighted rendezvous: -w/ln(x) for x uniform in (0,1) makes backend i
	// win a share of slots proportional to its weight.
	x := (float64(u>>11) + 0.5) / (1 << 53)
	return r.weights[i] / -math.Log(x)
}

// preference lists every backend of slot, best first.
func (r *ring) preference(slot uint32) []int {
	order := make([]int, len(r.seeds))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int {
		sa, sb := r.score(slot, a), r.score(slot, b)
		switch {
		case sa > sb:
			return -1
		case sa < sb:
			return 1
		}
		return 0
	})
	return order
}
