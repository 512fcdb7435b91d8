package redmetricsconnector // import "github.com/otelcsp/otelcsp/connector/redmetricsconnector"

import (
	"hash/maphash"
	"sync"
	"sync/atomic"

	"go.opentelemetry.io/collector/pdata/pcommon"
)

// resource is one distinct resource the series are grouped under (one
// ResourceMetrics in the output). Its attributes are a private copy of the
// first resource seen with that identity.
type resource struct {
	hash  uint64
	attrs pcommon.Map
	// keys and vals mirror attrs in its order, for sameIdentity's fast path.
	keys []string
	vals []pcommon.Value
	next *resource
	// live counts the series grouped under this resource.
	live atomic.Int64
	// dead is set under the registry's write lock when the resource is removed.
	dead bool
}

// resources interns resources by identity: all resource attributes, or only
// resource_metrics_key_attributes when configured (so attributes that change
// across restarts do not split counters).
//
// With max > 0 the table never holds more than max resources, and its cache
// no more than max entries, at any moment: a resource that finds the table
// full is not interned and get returns nil, which sends its spans to the
// overflow series, as a series past cardinality_limit is. Every resource
// holding a series holds at least one, so a full table means the series
// limit is reached too (resources holding none are only kept from a span's
// lookup to the next sweep, and exist only because their spans overflowed):
// the bound never overflows a span that the series limit would have let in.
type resources struct {
	seed    maphash.Seed
	keyAttr []string
	max     int // most resources (and cache entries); 0 = unbounded
	mu      sync.RWMutex
	m       map[uint64]*resource // by identityHash, chained
	n       int                  // resources in m, chains included
	// fast caches fastHash → resource. It is only a shortcut (a hit is
	// verified with sameIdentity, a miss takes the canonical path), so it
	// needs no chains and can be cleared at any time.
	fast map[uint64]*resource
}

func newResources(seed maphash.Seed, keyAttrs []string, max int) *resources {
	return &resources{seed: seed, keyAttr: keyAttrs, max: max, m: map[uint64]*resource{}, fast: map[uint64]*resource{}}
}

// full reports that no resource may be added. Caller holds mu.
func (r *resources) full() bool { return r.max > 0 && r.n >= r.max }

// fastHash hashes the attribute values in their order (keys contribute
// only their length), several times cheaper than identityHash's hash per
// key and per value. Being order-dependent and blind to key contents it
// cannot be the identity; it keys the cache in front of the canonical table,
// which is enough because an SDK sends its resource's attributes in the same
// order every time, and every hit is verified by sameIdentity.
func (r *resources) fastHash(attrs pcommon.Map) uint64 {
	h := uint64(attrs.Len())
	for k, v := range attrs.All() {
		var x uint64
		if v.Type() == pcommon.ValueTypeStr {
			x = maphash.String(r.seed, v.Str())
		} else {
			x = hashValue(r.seed, v)
		}
		h = mix(h, x^uint64(len(k))<<48)
	}
	return h
}

// identityHash hashes the identifying attributes. Attribute order does not
// matter: each key/value pair is hashed alone and the pair hashes are summed.
func (r *resources) identityHash(attrs pcommon.Map) uint64 {
	var h uint64
	if len(r.keyAttr) > 0 {
		for _, k := range r.keyAttr {
			if v, ok := attrs.Get(k); ok {
				h += mix(maphash.String(r.seed, k), hashValue(r.seed, v))
			}
		}
		return mix(h, 1)
	}
	for k, v := range attrs.All() {
		h += mix(maphash.String(r.seed, k), hashValue(r.seed, v))
	}
	return mix(h, 2)
}

// sameIdentity compares the identifying attributes of an interned resource
// e with incoming attributes b. Resources from one SDK list their attributes
// in the same order every time, so the attributes are first compared
// position by position (linear); a key out of place falls back to a lookup.
func (r *resources) sameIdentity(e *resource, b pcommon.Map) bool {
	if len(r.keyAttr) == 0 {
		if len(e.keys) != b.Len() {
			return false
		}
		i := 0
		for k, v := range b.All() {
			if e.keys[i] == k {
				if !e.vals[i].Equal(v) {
					return false
				}
			} else if w, ok := e.attrs.Get(k); !ok || !w.Equal(v) {
				return false
			}
			i++
		}
		return true
	}
	for _, k := range r.keyAttr {
		va, oka := e.attrs.Get(k)
		vb, okb := b.Get(k)
		if oka != okb || (oka && !va.Equal(vb)) {
			return false
		}
	}
	return true
}

// get returns the interned resource for attrs, creating it on first sight,
// or nil when it is new and the table is full.
func (r *resources) get(attrs pcommon.Map) *resource {
	if len(r.keyAttr) > 0 {
		// Few identifying attributes: the canonical path is already cheap.
		return r.getCanonical(attrs)
	}
	fh := r.fastHash(attrs)
	r.mu.RLock()
	if e := r.fast[fh]; e != nil && r.sameIdentity(e, attrs) {
		r.mu.RUnlock()
		return e
	}
	r.mu.RUnlock()
	e := r.getCanonical(attrs)
	if e == nil {
		return nil
	}
	r.mu.Lock()
	if !e.dead {
		// Many orderings of the same attributes are many entries: start
		// afresh rather than grow past the bound (amortized: one clear
		// per max insertions).
		if r.max > 0 && len(r.fast) >= r.max {
			clear(r.fast)
		}
		r.fast[fh] = e
	}
	r.mu.Unlock()
	return e
}

// getCanonical looks attrs up by their order-independent identity hash. It
// returns nil for a new resource when the table is full.
func (r *resources) getCanonical(attrs pcommon.Map) *resource {
	h := r.identityHash(attrs)
	r.mu.RLock()
	for e := r.m[h]; e != nil; e = e.next {
		if r.sameIdentity(e, attrs) {
			r.mu.RUnlock()
			return e
		}
	}
	// Under a flood of new resources past the bound, refuse under the read
	// lock: no write lock per span.
	full := r.full()
	r.mu.RUnlock()
	if full {
		return nil
	}

	r.mu.Lock()
	defer r.mu.Unlock()
	for e := r.m[h]; e != nil; e = e.next {
		if r.sameIdentity(e, attrs) {
			return e
		}
	}
	if r.full() {
		return nil
	}
	r.n++
	e := &resource{hash: h, attrs: pcommon.NewMap()}
	attrs.CopyTo(e.attrs)
	for k, v := range e.attrs.All() {
		e.keys = append(e.keys, k)
		e.vals = append(e.vals, v)
	}
	e.next = r.m[h]
	r.m[h] = e
	return e
}

// acquire counts one more series on e, unless e was removed meanwhile: then
// it returns the live resource of the same identity, counted, or nil if
// that identity no longer fits in the table. Holding the
// read lock while counting orders this against sweep, which removes only
// resources with no series under the write lock, so a resource that holds a
// series is never removed and no identity ever has two live resources.
func (r *resources) acquire(e *resource) *resource {
	for {
		r.mu.RLock()
		if !e.dead {
			e.live.Add(1)
			r.mu.RUnlock()
			return e
		}
		r.mu.RUnlock()
		if e = r.get(e.attrs); e == nil {
			return nil
		}
	}
}

// release is called when a series of e is dropped.
func (r *resources) release(e *resource) { e.live.Add(-1) }

// sweep removes resources that hold no series, so a flood of distinct
// resources whose spans all went to the overflow series stays bounded.
func (r *resources) sweep() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for h, head := range r.m {
		var first, last *resource
		for e := head; e != nil; {
			next := e.next
			e.next = nil
			if e.live.Load() > 0 {
				if last == nil {
					first = e
				} else {
					last.next = e
				}
				last = e
			} else {
				e.dead = true
				r.n--
			}
			e = next
		}
		if first == nil {
			delete(r.m, h)
		} else {
			r.m[h] = first
		}
	}
	// Drop cache entries of removed resources; if many orderings of live
	// resources piled up, start the cache afresh (it refills on demand).
	for fh, e := range r.fast {
		if e.dead {
			delete(r.fast, fh)
		}
	}
	if len(r.fast) > 2*len(r.m)+1024 {
		clear(r.fast)
	}
}

// len counts the interned resources by walking the table (tests check it
// against n).
func (r *resources) len() int {
	r.mu.RLock()
	defer r.mu.RUnlock()
	n := 0
	for _, e := range r.m {
		for ; e != nil; e = e.next {
			n++
		}
	}
	return n
}

// cacheLen is the number of cache entries.
func (r *resources) cacheLen() int {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return len(r.fast)
}
