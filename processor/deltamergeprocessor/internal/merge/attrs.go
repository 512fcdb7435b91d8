package merge // import "github.com/otelcsp/otelcsp/processor/deltamergeprocessor/internal/merge"

import (
	"hash/maphash"
	"math"

	"go.opentelemetry.io/collector/pdata/pcommon"
)

// Attribute sets are found by a 64-bit hash and confirmed by comparing the
// values: a hash collision chains a second entry, it never merges two
// attribute sets. The hash of a map is order-independent (a sum over its
// pairs), because two writers may put the same attributes in a different
// order; the comparison is order-independent too, with a positional fast
// path for the usual case of the same order.

// Type tags keep absent, "", 0, "0", false and an empty map apart.
const (
	tagEmpty uint64 = iota + 0x51ed27f3a1c2b4d5
	tagStr
	tagInt
	tagDouble
	tagBool
	tagBytes
	tagSlice
	tagMap
)

// mix is the splitmix64 finalizer: a cheap bijective scrambler.
func mix(h uint64) uint64 {
	h ^= h >> 30
	h *= 0xbf58476d1ce4e5b9
	h ^= h >> 27
	h *= 0x94d049bb133111eb
	h ^= h >> 31
	return h
}

// combine folds b into the ordered hash a.
func combine(a, b uint64) uint64 {
	return mix(a*0x9e3779b97f4a7c15 + b)
}

type hasher struct {
	seed maphash.Seed
	h    maphash.Hash // for byte attributes only (rare)
}

func newHasher() *hasher {
	hs := &hasher{seed: maphash.MakeSeed()}
	hs.h.SetSeed(hs.seed)
	return hs
}

func (hs *hasher) str(s string) uint64 { return maphash.String(hs.seed, s) }

func (hs *hasher) value(v pcommon.Value) uint64 {
	switch v.Type() {
	case pcommon.ValueTypeStr:
		return hs.str(v.Str()) ^ tagStr
	case pcommon.ValueTypeInt:
		return mix(uint64(v.Int()) ^ tagInt)
	case pcommon.ValueTypeDouble:
		return mix(math.Float64bits(v.Double()) ^ tagDouble)
	case pcommon.ValueTypeBool:
		if v.Bool() {
			return mix(tagBool + 1)
		}
		return mix(tagBool)
	case pcommon.ValueTypeBytes:
		b := v.Bytes()
		hs.h.Reset()
		for i := 0; i < b.Len(); i++ {
			_ = hs.h.WriteByte(b.At(i))
		}
		return hs.h.Sum64() ^ tagBytes
	case pcommon.ValueTypeSlice:
		s := v.Slice()
		h := tagSlice
		for i := 0; i < s.Len(); i++ {
			h = combine(h, hs.value(s.At(i)))
		}
		return mix(h)
	case pcommon.ValueTypeMap:
		h, _ := hs.attrs(v.Map(), "")
		return mix(h ^ tagMap)
	default:
		return tagEmpty
	}
}

// pair hashes one key/value pair.
func (hs *hasher) pair(k string, v pcommon.Value) uint64 {
	return combine(hs.str(k), hs.value(v))
}

// attrs hashes m without the entries whose key is skip ("" skips
// nothing) and returns how many entries it hashed.
func (hs *hasher) attrs(m pcommon.Map, skip string) (h uint64, n int) {
	for k, v := range m.All() {
		if skip != "" && k == skip {
			continue
		}
		h += hs.pair(k, v)
		n++
	}
	return mix(h ^ uint64(n)), n
}

// attrsAndWriter is attrs that also returns the value under skip, so that
// a point's attributes are walked once for both.
func (hs *hasher) attrsAndWriter(m pcommon.Map, skip string) (h uint64, w pcommon.Value, found bool) {
	n := 0
	for k, v := range m.All() {
		if k == skip {
			if !found {
				w, found = v, true
			}
			continue
		}
		h += hs.pair(k, v)
		n++
	}
	return mix(h ^ uint64(n)), w, found
}

// kv indexes a stored attribute map for positional comparison; v refers
// into the stored map, which is never modified after it is indexed.
type kv struct {
	k string
	v pcommon.Value
}

// ownAttrs copies m without the skip key into a new map the table owns,
// and indexes it. Duplicate keys (possible in decoded OTLP) are kept, so
// that the same input compares equal to its copy.
func ownAttrs(m pcommon.Map, skip string) (pcommon.Map, []kv) {
	own := pcommon.NewMap()
	m.CopyTo(own)
	if skip != "" {
		own.RemoveIf(func(k string, _ pcommon.Value) bool { return k == skip })
	}
	idx := make([]kv, 0, own.Len())
	for k, v := range own.All() {
		idx = append(idx, kv{k, v})
	}
	return own, idx
}

// equalAttrs reports whether m without the skip key has exactly the
// entries of stored, in any order.
func equalAttrs(stored []kv, m pcommon.Map, skip string) bool {
	j := 0
	for k, v := range m.All() {
		if skip != "" && k == skip {
			continue
		}
		if j < len(stored) && stored[j].k == k {
			if !equalValue(stored[j].v, v) {
				return false
			}
		} else if !containsPair(stored, k, v) {
			return false
		}
		j++
	}
	return j == len(stored)
}

func containsPair(stored []kv, k string, v pcommon.Value) bool {
	for i := range stored {
		if stored[i].k == k {
			return equalValue(stored[i].v, v)
		}
	}
	return false
}

// equalValue is pcommon.Value.Equal except that doubles compare by bits,
// so that a NaN attribute finds its own stream again.
func equalValue(a, b pcommon.Value) bool {
	if a.Type() != b.Type() {
		return false
	}
	switch a.Type() {
	case pcommon.ValueTypeStr:
		return a.Str() == b.Str()
	case pcommon.ValueTypeInt:
		return a.Int() == b.Int()
	case pcommon.ValueTypeDouble:
		return math.Float64bits(a.Double()) == math.Float64bits(b.Double())
	case pcommon.ValueTypeBool:
		return a.Bool() == b.Bool()
	case pcommon.ValueTypeBytes:
		x, y := a.Bytes(), b.Bytes()
		if x.Len() != y.Len() {
			return false
		}
		for i := 0; i < x.Len(); i++ {
			if x.At(i) != y.At(i) {
				return false
			}
		}
		return true
	case pcommon.ValueTypeSlice:
		x, y := a.Slice(), b.Slice()
		if x.Len() != y.Len() {
			return false
		}
		for i := 0; i < x.Len(); i++ {
			if !equalValue(x.At(i), y.At(i)) {
				return false
			}
		}
		return true
	case pcommon.ValueTypeMap:
		x, y := a.Map(), b.Map()
		if x.Len() != y.Len() {
			return false
		}
		for k, v := range x.All() {
			w, ok := y.Get(k)
			if !ok || !equalValue(v, w) {
				return false
			}
		}
		return true
	default:
		return true
	}
}
