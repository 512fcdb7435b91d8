package fanoutexporter

import (
	"math"
	"slices"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// resourceHash hashes what identifies a resource: all its attributes, in
// key order so that the same attributes in another order hash alike.
func resourceHash(res pcommon.Resource) uint64 {
	return hashMap(newHasher(), res.Attributes()).sum()
}

// serviceHash hashes the resource's service.name.
func serviceHash(res pcommon.Resource) uint64 {
	h := newHasher()
	if v, ok := res.Attributes().Get("service.name"); ok {
		h = hashValue(h, v)
	}
	return h.sum()
}

// attributesHash hashes the values of names, each looked up in attrs first
// and then in the resource's attributes. A missing attribute hashes
// differently from any value, so {a: "x"} and {b: "x"} differ.
func attributesHash(names []string, attrs, resAttrs pcommon.Map) uint64 {
	h := newHasher()
	for _, name := range names {
		v, ok := attrs.Get(name)
		if !ok {
			v, ok = resAttrs.Get(name)
		}
		if !ok {
			h = h.u64(0x6d697373696e67) // "missing"
			continue
		}
		h = hashValue(h.u64(1), v)
	}
	return h.sum()
}

func traceIDHash(id pcommon.TraceID) uint64 { return hashID(id) }

// onePerResource wraps a routing key that depends on an item's resource
// only (service, resource), so that the items of one resource are hashed
// once, not one by one. The wrapper holds the last resource: make one per
// batch, for one goroutine.
func onePerResource[R comparable, I any](key func(R, I) uint64) func(R, I) uint64 {
	var last R
	var h uint64
	have := false
	return func(r R, item I) uint64 {
		if !have || r != last {
			last, h, have = r, key(r, item), true
		}
		return h
	}
}

// hashMap hashes a map independent of its order: maps are small, so the
// sum of per-entry hashes is cheaper than sorting keys and still collides
// only by chance.
func hashMap(h hasher, m pcommon.Map) hasher { return hashMapExcept(h, m, nil) }

// hashMapExcept is hashMap of the entries whose key is not in except.
func hashMapExcept(h hasher, m pcommon.Map, except []string) hasher {
	var acc uint64
	n := 0
	for k, v := range m.All() {
		if len(except) > 0 && slices.Contains(except, k) {
			continue
		}
		acc += hashValue(newHasher().str(k), v).sum()
		n++
	}
	return h.u64(acc).u64(uint64(n))
}

func hashValue(h hasher, v pcommon.Value) hasher {
	h = h.u64(uint64(v.Type()))
	switch v.Type() {
	case pcommon.ValueTypeStr:
		return h.str(v.Str())
	case pcommon.ValueTypeInt:
		return h.u64(uint64(v.Int()))
	case pcommon.ValueTypeDouble:
		return h.u64(math.Float64bits(v.Double()))
	case pcommon.ValueTypeBool:
		if v.Bool() {
			return h.u64(1)
		}
		return h.u64(0)
	case pcommon.ValueTypeBytes:
		return h.bytes(v.Bytes().AsRaw())
	case pcommon.ValueTypeMap:
		return hashMap(h, v.Map())
	case pcommon.ValueTypeSlice:
		s := v.Slice()
		for i := 0; i < s.Len(); i++ {
			h = hashValue(h, s.At(i))
		}
		return h.u64(uint64(s.Len()))
	}
	return h
}

// spanKeyFunc returns the hash of a span's routing key.
func spanKeyFunc(key string, attrs []string) func(ptrace.ResourceSpans, ptrace.Span) uint64 {
	switch key {
	case keyService:
		return func(rs ptrace.ResourceSpans, _ ptrace.Span) uint64 { return serviceHash(rs.Resource()) }
	case keyAttributes:
		return func(rs ptrace.ResourceSpans, s ptrace.Span) uint64 {
			return attributesHash(attrs, s.Attributes(), rs.Resource().Attributes())
		}
	default:
		return func(_ ptrace.ResourceSpans, s ptrace.Span) uint64 { return traceIDHash(s.TraceID()) }
	}
}
