package redmetricsconnector // import "github.com/otelcsp/otelcsp/connector/redmetricsconnector"

import (
	"encoding/binary"
	"hash/maphash"
	"math"
	"math/bits"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/otelcsp/otelcsp/internal/spanname"
)

// slotKind says where a dimension's value comes from.
type slotKind uint8

const (
	slotService slotKind = iota
	slotSpanName
	slotSpanKind
	slotStatus
	slotScopeName
	slotScopeVersion
	slotAttr // span attribute, then (for events) event attribute, then resource attribute, then default
)

// slot is one dimension of a series, in emission order.
type slot struct {
	kind   slotKind
	name   string
	hasDef bool
	def    string
}

// valType records how a dimension value is held. vAbsent is part of the key:
// a series whose dimension is missing never equals one whose dimension holds
// an empty string.
type valType uint8

const (
	vAbsent valType = iota
	vStr
	vInt
	vDouble
	vBool
	vKind   // ptrace.SpanKind, emitted as contrib's SPAN_KIND_* string
	vStatus // ptrace.StatusCode, emitted as contrib's STATUS_CODE_* string
)

// dimVal is one dimension value of a series. Strings are referenced while a
// span is being matched and cloned only when a series is created, so the
// lookup never allocates.
type dimVal struct {
	s string
	n uint64
	t valType
}

func (a dimVal) equal(b dimVal) bool { return a.t == b.t && a.n == b.n && a.s == b.s }

// plan is the ordered list of dimensions of one metric family.
type plan struct {
	slots []slot
	scope bool // any slot reads the instrumentation scope
	// instAt is where collector.instance.id goes among the emitted
	// attributes (after the default dimensions, as contrib places it), or
	// -1 when it is excluded. It is not a slot: it is the same for every
	// series of a connector, so it is written at flush and never read,
	// hashed or compared per span.
	instAt int
}

// newSpanPlan builds the dimensions of calls/duration: the four defaults (less
// exclusions), the scope dimensions when include_instrumentation_scope is set,
// then the configured dimensions.
func newSpanPlan(cfg *Config) *plan {
	return buildPlan(cfg, nil)
}

// newEventPlan is the span plan followed by the events' own dimensions.
func newEventPlan(cfg *Config) *plan {
	return buildPlan(cfg, cfg.Events.Dimensions)
}

func buildPlan(cfg *Config, extra []Dimension) *plan {
	excluded := map[string]bool{}
	for _, e := range cfg.ExcludeDimensions {
		excluded[e] = true
	}
	p := &plan{instAt: -1}
	add := func(s slot) {
		if !excluded[s.name] {
			p.slots = append(p.slots, s)
		}
	}
	add(slot{kind: slotService, name: serviceNameKey})
	add(slot{kind: slotSpanName, name: spanNameKey})
	add(slot{kind: slotSpanKind, name: spanKindKey})
	add(slot{kind: slotStatus, name: statusCodeKey})
	if !excluded[collectorInstanceKey] {
		p.instAt = len(p.slots)
	}
	if len(cfg.IncludeInstrumentationScope) > 0 {
		p.scope = true
		p.slots = append(p.slots, slot{kind: slotScopeName, name: scopeNameKey}, slot{kind: slotScopeVersion, name: scopeVersionKey})
	}
	for _, d := range cfg.Dimensions {
		s := slot{kind: slotAttr, name: d.Name}
		if d.Default != nil {
			s.hasDef, s.def = true, *d.Default
		}
		add(s)
	}
	for _, d := range extra {
		s := slot{kind: slotAttr, name: d.Name}
		if d.Default != nil {
			s.hasDef, s.def = true, *d.Default
		}
		p.slots = append(p.slots, s)
	}
	return p
}

// spanCtx is what a plan reads a span's dimensions from.
type spanCtx struct {
	service    string
	svcHash    uint64 // maphash of service, set when the service graph is on
	sideH      uint64 // sideHash of the service with no dimensions, likewise
	span       ptrace.Span
	resAttrs   pcommon.Map
	eventAttrs pcommon.Map
	hasEvent   bool
	scopeOK    bool // the span's scope is listed in include_instrumentation_scope
	scopeName  string
	scopeVer   string
	// The resource's database name attribute, looked up on first need (a
	// client span without one of its own): resDB is 0 until then, 1 when
	// the resource has none, 2 when dbName holds it.
	resDB  uint8
	dbName string
	// The last database node of this resource's spans and its side hash:
	// a service's database calls usually name the same database.
	lastDB  string
	lastDBH uint64
}

// fill writes the span's dimension values into out (len(out) == len(slots)).
func (p *plan) fill(c *spanCtx, out []dimVal) {
	for i := range p.slots {
		out[i] = p.slots[i].value(c)
	}
}

// appendKey appends the key of the span's series in family: what the
// package-level appendKey makes of fill's values, without storing them.
func (p *plan) appendKey(c *spanCtx, family uint8, buf []byte) []byte {
	buf = append(buf, family)
	for i := range p.slots {
		sl := &p.slots[i]
		// The span's own fields, every plan's first dimensions, are
		// written straight from the span (value's result is 4 words
		// passed on to appendVal, a third of the cost of a key).
		switch sl.kind {
		case slotService:
			buf = appendStr(buf, c.service)
		case slotSpanName:
			buf = appendStr(buf, c.span.Name())
		case slotSpanKind:
			buf = appendNum(buf, vKind, uint64(c.span.Kind()))
		case slotStatus:
			buf = appendNum(buf, vStatus, uint64(c.span.Status().Code()))
		case slotAttr:
			if v, ok := c.span.Attributes().Get(sl.name); ok {
				buf = appendValue(buf, v)
			} else {
				buf = appendVal(buf, sl.inherited(c))
			}
		default:
			buf = appendVal(buf, sl.value(c))
		}
	}
	return buf
}

// value is the span's value of the dimension.
func (sl *slot) value(c *spanCtx) dimVal {
	switch sl.kind {
	case slotService:
		return dimVal{t: vStr, s: c.service}
	case slotSpanName:
		return dimVal{t: vStr, s: c.span.Name()}
	case slotSpanKind:
		return dimVal{t: vKind, n: uint64(c.span.Kind())}
	case slotStatus:
		return dimVal{t: vStatus, n: uint64(c.span.Status().Code())}
	case slotScopeName:
		if c.scopeOK {
			return dimVal{t: vStr, s: c.scopeName}
		}
	case slotScopeVersion:
		if c.scopeOK && c.scopeVer != "" {
			return dimVal{t: vStr, s: c.scopeVer}
		}
	case slotAttr:
		// The most specific source wins: span, then event, then resource.
		if v, ok := c.span.Attributes().Get(sl.name); ok {
			return fromValue(v)
		}
		return sl.inherited(c)
	}
	return dimVal{}
}

// inherited is the value of an attribute dimension the span does not
// carry: the event's, else the resource's, else the default.
func (sl *slot) inherited(c *spanCtx) dimVal {
	if c.hasEvent {
		if v, ok := c.eventAttrs.Get(sl.name); ok {
			return fromValue(v)
		}
	}
	if v, ok := c.resAttrs.Get(sl.name); ok {
		return fromValue(v)
	}
	if sl.hasDef {
		return dimVal{t: vStr, s: sl.def}
	}
	return dimVal{}
}

// fromValue maps a pcommon.Value to a dimVal without allocating for the
// scalar types; bytes, maps and slices (rare as dimensions) fall back to
// their string form, as contrib's key does.
func fromValue(v pcommon.Value) dimVal {
	switch v.Type() {
	case pcommon.ValueTypeStr:
		return dimVal{t: vStr, s: v.Str()}
	case pcommon.ValueTypeInt:
		return dimVal{t: vInt, n: uint64(v.Int())}
	case pcommon.ValueTypeDouble:
		return dimVal{t: vDouble, n: math.Float64bits(v.Double())}
	case pcommon.ValueTypeBool:
		if v.Bool() {
			return dimVal{t: vBool, n: 1}
		}
		return dimVal{t: vBool}
	case pcommon.ValueTypeEmpty:
		return dimVal{t: vStr}
	default:
		return dimVal{t: vStr, s: v.AsString()}
	}
}

const mulK = 0x9E3779B97F4A7C15

// mix folds x into h; the multiply makes the position of each value matter.
func mix(h, x uint64) uint64 {
	h ^= x
	h *= mulK
	return h ^ (h >> 29)
}

// appendKey appends a series' key to buf: its family, then for each
// dimension the value's type tag (so absent, "" and 0 differ) and its
// content, strings length-prefixed. The encoding is self-delimiting, so
// equal keys mean equal families and values: a series is found by
// hashing its key once and comparing it in one piece, where hashing and
// comparing value by value cost a string hash and a string comparison per
// dimension. decodeKey reverses it.
func appendKey(buf []byte, family uint8, vals []dimVal) []byte {
	buf = append(buf, family)
	for i := range vals {
		buf = appendVal(buf, vals[i])
	}
	return buf
}

// appendVal appends one value of a key: its type tag, then a uvarint (a
// string's length, followed by its bytes, or the number), with the
// one-byte case of short strings and small numbers written directly.
func appendVal(buf []byte, v dimVal) []byte {
	switch v.t {
	case vAbsent:
		return append(buf, byte(vAbsent))
	case vStr:
		return appendStr(buf, v.s)
	default:
		return appendNum(buf, v.t, v.n)
	}
}

// appendValue is appendVal(buf, fromValue(v)), with strings and ints (the
// usual dimension types) written without the dimVal in between.
func appendValue(buf []byte, v pcommon.Value) []byte {
	switch v.Type() {
	case pcommon.ValueTypeStr:
		return appendStr(buf, v.Str())
	case pcommon.ValueTypeInt:
		return appendNum(buf, vInt, uint64(v.Int()))
	}
	return appendVal(buf, fromValue(v))
}

func appendStr(buf []byte, s string) []byte {
	if len(s) < 0x80 {
		return append(append(buf, byte(vStr), byte(len(s))), s...)
	}
	return append(binary.AppendUvarint(append(buf, byte(vStr)), uint64(len(s))), s...)
}

func appendNum(buf []byte, t valType, n uint64) []byte {
	if n < 0x80 {
		return append(buf, byte(t), byte(n))
	}
	return binary.AppendUvarint(append(buf, byte(t)), n)
}

// decodeKey appends the values of a key made by appendKey to out; their
// strings point into key, which a series never changes.
func decodeKey(key string, out []dimVal) []dimVal {
	b := unsafeBytes(key)
	for i := 1; i < len(b); {
		v := dimVal{t: valType(b[i])}
		i++
		switch v.t {
		case vAbsent:
		case vStr:
			n, w := binary.Uvarint(b[i:])
			i += w
			v.s = key[i : i+int(n)]
			i += int(n)
		default:
			var w int
			v.n, w = binary.Uvarint(b[i:])
			i += w
		}
		out = append(out, v)
	}
	return out
}

// keyHash hashes a series identity: its resource's hash and its key.
// Equality is always checked on a hash match, so the hash only needs to
// spread well, not be collision-free.
func keyHash(seed maphash.Seed, res uint64, key []byte) uint64 {
	return mix(res, maphash.Bytes(seed, key))
}

// valHash hashes one dimension value with its type tag (the service
// graph's side hashes are made of these).
func valHash(seed maphash.Seed, v *dimVal) uint64 {
	x := uint64(v.t) << 56
	if v.t == vStr {
		x ^= maphash.String(seed, v.s)
	} else {
		x ^= bits.RotateLeft64(v.n*mulK, 17) + v.n
	}
	return x
}

// hashValue hashes any pcommon.Value, used for resource identities.
func hashValue(seed maphash.Seed, v pcommon.Value) uint64 {
	switch v.Type() {
	case pcommon.ValueTypeStr:
		return maphash.String(seed, v.Str()) ^ 1
	case pcommon.ValueTypeInt:
		return mix(2, uint64(v.Int()))
	case pcommon.ValueTypeDouble:
		return mix(3, math.Float64bits(v.Double()))
	case pcommon.ValueTypeBool:
		if v.Bool() {
			return mix(4, 1)
		}
		return mix(4, 0)
	default:
		return mix(uint64(v.Type())+5, maphash.String(seed, v.AsString()))
	}
}

// cloneVals copies the values of a new series so it keeps no reference into
// the request's memory.
func cloneVals(vals []dimVal) []dimVal {
	out := make([]dimVal, len(vals))
	n := 0
	for i := range vals {
		n += len(vals[i].s)
	}
	// One backing allocation for every string of the series.
	buf := make([]byte, 0, n)
	for i := range vals {
		out[i] = vals[i]
		if s := vals[i].s; s != "" {
			start := len(buf)
			buf = append(buf, s...)
			out[i].s = unsafeString(buf[start:])
		}
	}
	return out
}

// putValue writes a dimension value into an attribute map.
func putValue(m pcommon.Map, key string, v dimVal) {
	switch v.t {
	case vStr:
		m.PutStr(key, v.s)
	case vInt:
		m.PutInt(key, int64(v.n))
	case vDouble:
		m.PutDouble(key, math.Float64frombits(v.n))
	case vBool:
		m.PutBool(key, v.n == 1)
	case vKind:
		m.PutStr(key, spanKindStr(ptrace.SpanKind(v.n)))
	case vStatus:
		m.PutStr(key, statusCodeStr(ptrace.StatusCode(v.n)))
	}
}

// spanKindStr and statusCodeStr give the values contrib writes: the OTLP
// enum names ("SPAN_KIND_SERVER", "STATUS_CODE_ERROR"), from the module's one
// table of them; "" for a value the enum does not define.
func spanKindStr(k ptrace.SpanKind) string { return spanname.KindProto(k) }

func statusCodeStr(c ptrace.StatusCode) string { return spanname.StatusProto(c) }
