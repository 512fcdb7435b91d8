package fanoutexporter

import (
	"cmp"
	"math"
	mathbits "math/bits"
	"slices"
)

// ring places routing keys on backends. Keys hash into a fixed table of
// 2^20 slots; the data path does one shift and one load per item. The table
// is weighted rendezvous hashing with bounded loads, built by a race:
//
//   - Every backend ranks all slots with its own pseudo-random permutation
//     of the slot numbers, keyed by the hash of its endpoint (rank 0 is the
//     slot it likes best). That rank is a rendezvous score, so every slot
//     has a full, deterministic preference order, the same in every
//     instance whatever order the backends are learnt in. Because the score
//     is a permutation, a backend can also list its slots best first, which
//     a hash score cannot.
//   - The table is filled in rounds: in each, every backend claims the slot
//     of its next rank (a backend of weight w claims in w/wmax of the rounds,
//     at least 1/16; within a round, heaviest first, then by endpoint hash),
//     and the first claim of a slot wins it. Without quotas this is exactly
//     each slot's rendezvous first choice. With quotas a backend stops once
//     it holds its share, ⌊2^20·w/W⌋ slots (the remainder to the largest
//     fractions), and the slots it would have won after that go to the next
//     claimant with room. So every backend owns its share to the slot, and
//     the binomial noise of a plain rendezvous table is gone (≈ 1,000 slots
//     a backend at 1,000 backends, σ ≈ 3%: max/mean 1.106 over 10M trace IDs
//     before, 1.031 now, which is the keys' own noise).
//   - The race takes O(2^20·log 2^20) claims (one inverse permutation and a
//     bitmap test each) whatever the number of backends, and its last slots
//     are settled slot by slot (tail): 22–38 ms of CPU at 10 to 1,000
//     backends, where a per-slot argmax takes 2^20·N scores (9.4 s at 1,000).
//     Weights and quotas are integers, so every platform builds the same
//     table.
//
// What the quotas cost: a set change moves some keys between backends that
// stayed (a backend at its quota gives up or takes back its last claims when
// its share changes). Adding one of N backends moves its share to it plus
// 0.05% (N = 10) to 0.09% (N = 1,000) of the keys between the others;
// removing one moves its keys plus as many. With weights 1 and 2 mixed: up
// to 0.13% from 300 backends on, 0.4% at 10. ring_test.go bounds these at
// 0.2% (0.5% with weights under 100 backends). docs/benchmarks.md has the
// figures, and the README the alternatives we measured.
//
// Failover walks the preference order: the slot's owner, then the other
// backends in the order they would have claimed the slot (round of their
// rank of it, then the race's order). It is computed in O(N) for the rare
// item whose owner is excluded, and is the same in every instance.
type ring struct {
	endpoints []string
	seeds     []uint64
	perms     []slotPerm
	// stride paces backend i's claims: rank r comes in round
	// r*stride[i]>>16. nil when every weight is equal (every stride 1<<16).
	stride []uint64
	table  []uint16 // slot -> index of its owner
}

const (
	// slotBits fixes the table at 2^20 slots (2 MiB). It must not depend on
	// the number of backends: a slot's preference order is computed from its
	// number, so resizing the table would move keys between backends that
	// stayed. With quotas each backend owns its share to the slot (1,048 or
	// 1,049 slots at 1,000 backends), so the table adds ≈ 0.1% to the
	// imbalance of the keys themselves.
	slotBits    = 20
	numSlots    = 1 << slotBits
	slotMask    = numSlots - 1
	halfBits    = slotBits / 2
	maxBackends = math.MaxUint16 // table entries are uint16

	// weightScale turns weights (at most 1e6) into integers, so that quotas
	// and strides are computed exactly and identically on every platform.
	weightScale = 1 << 20
	// maxStride bounds how much slower than the heaviest backend a light one
	// claims (16×): it bounds the build's idle work; quotas still give every
	// backend its exact share.
	maxStride = 16 << 16
)

type backendSpec struct {
	endpoint string
	weight   float64
}

// slotPerm is a keyed bijection on [0, 2^20): xorshift and odd
// multiplications modulo 2^20 (splitmix64's finalizer cut to 20 bits),
// between two key xors. inv is its inverse.
type slotPerm struct{ k1, k2, m1, m2, i1, i2 uint32 }

func newSlotPerm(seed uint64) slotPerm {
	a, b := mix64(seed^0x5f3759df8a1e3c21), mix64(seed^0xc2b2ae3d27d4eb4f)
	p := slotPerm{
		k1: uint32(a) & slotMask, k2: uint32(a>>32) & slotMask,
		m1: uint32(b)&slotMask | 1, m2: uint32(b>>32)&slotMask | 1,
	}
	p.i1, p.i2 = inverseOdd(p.m1), inverseOdd(p.m2)
	return p
}

// inverseOdd is m's multiplicative inverse modulo 2^20 (Newton's iteration;
// each step doubles the correct low bits).
func inverseOdd(m uint32) uint32 {
	x := m
	for range 5 {
		x *= 2 - m*x
	}
	return x & slotMask
}

// fwd is the rank of slot s.
func (p *slotPerm) fwd(s uint32) uint32 {
	x := s ^ p.k1
	x ^= x >> halfBits
	x = x * p.m1 & slotMask
	x ^= x >> halfBits
	x = x * p.m2 & slotMask
	x ^= x >> halfBits
	return x ^ p.k2
}

// inv is the slot of rank r.
func (p *slotPerm) inv(r uint32) uint32 {
	x := r ^ p.k2
	x ^= x >> halfBits // x ^ x>>10 is its own inverse on 20 bits
	x = x * p.i2 & slotMask
	x ^= x >> halfBits
	x = x * p.i1 & slotMask
	x ^= x >> halfBits
	return x ^ p.k1
}

// fixedWeight is w in units of 1/weightScale, at least 1.
func fixedWeight(w float64) uint64 {
	switch {
	case !(w > 0):
		return 1
	case w > 1e6:
		w = 1e6
	}
	return max(1, uint64(math.Round(w*weightScale)))
}

func newRing(specs []backendSpec) *ring {
	n := len(specs)
	r := &ring{}
	if n == 0 {
		return r
	}
	if n > maxBackends {
		n = maxBackends // the resolvers refuse more; never index past uint16
		specs = specs[:n]
	}
	r.endpoints = make([]string, n)
	r.seeds = make([]uint64, n)
	r.perms = make([]slotPerm, n)
	fw := make([]uint64, n)
	uniform := true
	for i, s := range specs {
		r.endpoints[i] = s.endpoint
		r.seeds[i] = newHasher().str(s.endpoint).sum()
		r.perms[i] = newSlotPerm(r.seeds[i])
		fw[i] = fixedWeight(s.weight)
		uniform = uniform && fw[i] == fw[0]
	}

	var fmax, total uint64
	for _, f := range fw {
		fmax = max(fmax, f)
		total += f
	}
	if !uniform {
		r.stride = make([]uint64, n)
		for i := range r.stride {
			r.stride[i] = min(maxStride, (fmax<<16+fw[i]-1)/fw[i])
		}
	}
	// The canonical order (heaviest first, then by endpoint hash), whatever
	// order the resolver gave. Everything below follows it, so instances
	// agree.
	order := make([]int, n)
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, r.compareBackends)

	// Quotas: ⌊numSlots·w/W⌋, the remaining slots to the largest remainders.
	quota := make([]int, n)
	rem := make([]uint64, n)
	given := 0
	for _, i := range order {
		hi, lo := mathbits.Mul64(numSlots, fw[i])
		q, m := mathbits.Div64(hi, lo, total)
		quota[i], rem[i] = int(q), m
		given += int(q)
	}
	byRem := slices.Clone(order)
	slices.SortStableFunc(byRem, func(a, b int) int { return cmp.Compare(rem[b], rem[a]) })
	for _, i := range byRem[:numSlots-given] {
		quota[i]++
	}

	r.table = make([]uint16, numSlots)
	r.race(order, quota)
	return r
}

// compareBackends orders backends by stride (heaviest first), endpoint
// hash, then endpoint: the order in which they claim in a round, so the
// tie-break of the race and of failover. (Grouping equal strides keeps the
// race's inner loop predictable.)
func (r *ring) compareBackends(a, b int) int {
	if r.stride != nil {
		if c := cmp.Compare(r.stride[a], r.stride[b]); c != 0 {
			return c
		}
	}
	if c := cmp.Compare(r.seeds[a], r.seeds[b]); c != 0 {
		return c
	}
	return cmp.Compare(r.endpoints[a], r.endpoints[b])
}

// racer is one backend in the race.
type racer struct {
	perm   slotPerm
	left   int    // slots still to claim
	next   uint32 // next rank
	due    uint64 // round of next
	stride uint64
	index  uint16
}

// round is the round in which rc claims the slot of rank.
func (rc *racer) round(rank uint32) uint64 { return uint64(rank) * rc.stride >> 16 }

// tailWork: once (free slots × backends still claiming) is this small, the
// race's last slots are found slot by slot (see tail), which is cheaper than
// claims that mostly hit taken slots.
const tailWork = numSlots / 8

// race fills the table: round after round, every backend still under its
// quota claims the slot of its next rank if no one holds it yet.
//
// race and tail touch only memory that newRing allocated and that no other
// goroutine sees before newRing returns (the ring is then published through
// an atomic pointer), so the race detector has nothing to check in them:
// the norace directive spares -race builds its instrumentation of their
// ≈ 10 million accesses, which made a rebuild under -race ten times slower.
//
//go:norace
func (r *ring) race(order, quota []int) {
	taken := new([numSlots / 64]uint64) // one bit a slot
	table := (*[numSlots]uint16)(r.table)
	active := make([]racer, 0, len(order))
	for _, i := range order {
		if quota[i] > 0 {
			rc := racer{perm: r.perms[i], left: quota[i], stride: 1 << 16, index: uint16(i)}
			if r.stride != nil {
				rc.stride = r.stride[i]
			}
			active = append(active, rc)
		}
	}
	free := numSlots
	for round := uint64(0); len(active) > 0; {
		if free*len(active) <= tailWork {
			tail(active, taken, table)
			return
		}
		k, soonest := 0, uint64(math.MaxUint64)
		for j := range active {
			rc := &active[j]
			if rc.due == round {
				// Claim the slot of rank next if it is free.
				s := rc.perm.inv(rc.next) & slotMask
				rc.next++
				rc.due = rc.round(rc.next)
				if w, bit := s>>6, uint64(1)<<(s&63); taken[w]&bit == 0 {
					taken[w] |= bit
					table[s] = rc.index
					free--
					if rc.left--; rc.left == 0 {
						continue // at its quota: out of the race
					}
				}
			}
			soonest = min(soonest, rc.due)
			if k != j {
				active[k] = *rc
			}
			k++
		}
		active = active[:k]
		round = soonest
	}
}

// tail finishes the race slot by slot, with the same outcome: every free
// slot waits in a heap keyed by its next claim (round, then position in the
// claiming order); the earliest is given to its claimant, or, if that one
// filled its quota meanwhile, re-keyed by the next claimant.
//
//go:norace
func tail(active []racer, taken *[numSlots / 64]uint64, table *[numSlots]uint16) {
	type pending struct {
		key  uint64 // round<<16 | position in active
		slot uint32
	}
	next := func(s uint32) uint64 {
		best := uint64(math.MaxUint64)
		for j := range active {
			if rc := &active[j]; rc.left > 0 {
				best = min(best, rc.round(rc.perm.fwd(s))<<16|uint64(j))
			}
		}
		return best
	}
	var h []pending
	for w, bits := range taken {
		for free := ^bits; free != 0; free &= free - 1 {
			s := uint32(w*64 + mathbits.TrailingZeros64(free))
			h = append(h, pending{next(s), s})
		}
	}
	less := func(a, b int) bool { return h[a].key < h[b].key }
	down := func(i int) {
		for {
			c := 2*i + 1
			if c >= len(h) {
				return
			}
			if c+1 < len(h) && less(c+1, c) {
				c++
			}
			if !less(c, i) {
				return
			}
			h[i], h[c] = h[c], h[i]
			i = c
		}
	}
	for i := len(h)/2 - 1; i >= 0; i-- {
		down(i)
	}
	for len(h) > 0 {
		p := h[0]
		if rc := &active[p.key&0xffff]; rc.left > 0 {
			table[p.slot] = rc.index
			rc.left--
			h[0] = h[len(h)-1]
			h = h[:len(h)-1]
		} else {
			h[0].key = next(p.slot) // later than p.key: rc was the first
		}
		down(0)
	}
}

func (r *ring) size() int { return len(r.endpoints) }

// slot maps a key hash to its slot.
func (r *ring) slot(h uint64) uint32 { return uint32(h >> (64 - slotBits)) }

// owner is the backend of a slot, or -1 when there is none.
func (r *ring) owner(slot uint32) int {
	if len(r.table) == 0 {
		return -1
	}
	return int(r.table[slot])
}

// claimRound is the round in which backend i claims slot in the race: the
// failover order's key.
func (r *ring) claimRound(slot uint32, i int) uint64 {
	rank := uint64(r.perms[i].fwd(slot))
	if r.stride == nil {
		return rank
	}
	return rank * r.stride[i] >> 16
}

// before reports whether backend a comes before b in slot's failover order
// (owner aside).
func (r *ring) before(slot uint32, a, b int) bool {
	ra, rb := r.claimRound(slot, a), r.claimRound(slot, b)
	if ra != rb {
		return ra < rb
	}
	return r.compareBackends(a, b) < 0
}

// pick returns the first backend of slot's preference order that allowed
// accepts (all when allowed is nil), or -1. Calling it with the backends
// already tried excluded walks the slot's preference order.
func (r *ring) pick(slot uint32, allowed func(int) bool) int {
	o := r.owner(slot)
	if o < 0 || allowed == nil || allowed(o) {
		return o
	}
	best, bestRound := -1, uint64(0)
	for i := range r.endpoints {
		if i == o || !allowed(i) {
			continue
		}
		rd := r.claimRound(slot, i)
		if best < 0 || rd < bestRound || rd == bestRound && r.compareBackends(i, best) < 0 {
			best, bestRound = i, rd
		}
	}
	return best
}

// preference lists every backend of slot, best first: its owner, then the
// others in the order they would have claimed it.
func (r *ring) preference(slot uint32) []int {
	o := r.owner(slot)
	if o < 0 {
		return nil
	}
	order := []int{o}
	for i := range r.endpoints {
		if i != o {
			order = append(order, i)
		}
	}
	rest := order[1:]
	slices.SortFunc(rest, func(a, b int) int {
		if r.before(slot, a, b) {
			return -1
		}
		if r.before(slot, b, a) {
			return 1
		}
		return 0
	})
	return order
}
