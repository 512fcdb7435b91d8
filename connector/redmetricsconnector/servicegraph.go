package redmetricsconnector // import "github.com/otelcsp/otelcsp/connector/redmetricsconnector"

import (
	"encoding/binary"
	"hash/maphash"
	"math"
	"math/bits"
	"runtime"
	"sync"
	"sync/atomic"
	"unsafe"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// Service graph families: an edge series (calls, failures, client and
// server latency of one client → server pair), and the counters of
// spans that expired unpaired or were dropped because the store was full.
const (
	familyEdge uint8 = iota + familyEvent + 1
	familyUnpaired
	familyDropped
	numFamilies
)

// connection_type values, as contrib servicegraph writes them.
const (
	connUnset       = ""
	connMessaging   = "messaging_system"
	connDatabase    = "database"
	connVirtualNode = "virtual_node"
)

// Node names contrib uses: the client of a root server span, and the
// server of an unpaired client span with no peer attribute.
const (
	userNode    = "user"
	unknownNode = "unknown"
)

const (
	sideClient uint8 = iota
	sideServer
)

// Layout of an edge series' values.
const (
	edgeClient = iota
	edgeServer
	edgeConn
	edgeFailed
	edgeDims // client dimensions, then server dimensions
)

// Layout of a half node's values (one side of an edge, waiting in the store).
const (
	halfService = iota
	halfPeer
	halfDims
)

// serviceGraph is the resolved service_graph config and its pairing store.
type serviceGraph struct {
	dims     *plan // slotAttr slots only
	nd       int
	peers    attrKeys
	dbAttrs  attrKeys
	virtual  bool
	bounds   []float64 // seconds
	nb       int       // buckets per side: len(bounds)+1
	ttl      int64     // ns of monotonic time
	names    []string  // emitted attribute names of an edge, in order
	stores   []pairShard
	storeSh  uint // shard = key hash >> storeSh
	keySeed  uint64
	userH    uint64 // side hashes of the virtual nodes named by constants
	unknownH uint64
}

// pairKey identifies a call: the client side's span ID, which the server
// side carries as its parent span ID, in its trace. Held as three words,
// not the ID arrays: copying those through the stack costs a failed store
// forwarding (two overlapping 16-byte moves) on every span of an edge.
type pairKey struct {
	t0, t1 uint64 // trace ID, little endian halves
	span   uint64
}

func newPairKey(trace pcommon.TraceID, span pcommon.SpanID) pairKey {
	return pairKey{
		t0:   binary.LittleEndian.Uint64(trace[:8]),
		t1:   binary.LittleEndian.Uint64(trace[8:]),
		span: binary.LittleEndian.Uint64(span[:]),
	}
}

// connection_type codes, and the values they are emitted as.
const (
	cUnset uint8 = iota
	cMessaging
	cDatabase
	cVirtual
)

var connNames = [...]string{cUnset: connUnset, cMessaging: connMessaging, cDatabase: connDatabase, cVirtual: connVirtualNode}

// pending is one span waiting for its other side. It references its
// side's values through an interned halfNode, so storing a span whose
// service and dimensions were seen before allocates nothing.
type pending struct {
	key        pairKey
	h          uint64 // key hash: home slot in the index
	node       *halfNode
	expireAt   int64 // monotonic ns
	dur        float64
	w          uint64
	prev, next int32 // FIFO by insertion (= expiry) order, or the free list
	side       uint8
	conn       uint8
	failed     bool
}

// halfNode is one side's identity: service, peer and dimension values,
// copied out of the request (cloneVals), and the hash of its service and
// dimensions (the part of an edge's identity it contributes).
type halfNode struct {
	vals  []dimVal
	sideH uint64
	h     uint64 // sideH with the peer: the node's key in the cache
	next  *halfNode
}

// pairShard is one slice of the store, chosen by the call's key hash: both
// sides of a call land in the same shard. It never holds more than max
// spans. The index is an open-addressing table of slab positions, sized
// at least twice max and allocated once, so lookups and removals
// allocate nothing and hash nothing but the key's 24 bytes, once.
type pairShard struct {
	mu     sync.Mutex
	oldest atomic.Int64 // expireAt of the oldest span (head), MaxInt64 if none
	tab    []int32      // slab index + 1; 0 = empty
	mask   uint64
	slab   []pending
	free   int32 // first free slab slot, -1 if none
	head   int32 // oldest pending span, -1 if none
	tail   int32
	n      int
	max    int
	front  []*halfNode          // the last node of each hash slot: intern's first try
	nodes  map[uint64]*halfNode // the interned half nodes, by hash (chained by next)
	nNode  int                  // nodes in the map
	_      [48]byte             // 192 bytes: shards share no cache line with their neighbours' locks
}

func newServiceGraph(cfg *Config, seed maphash.Seed) *serviceGraph {
	sc := &cfg.ServiceGraph
	g := &serviceGraph{
		dims:    &plan{instAt: -1},
		nd:      len(sc.Dimensions),
		peers:   newAttrKeys(sc.VirtualNodePeerAttributes),
		dbAttrs: newAttrKeys(sc.DatabaseNameAttributes),
		virtual: len(sc.VirtualNodePeerAttributes) > 0,
		bounds:  sc.latencyBounds(),
		ttl:     int64(sc.Store.TTL),
		keySeed: maphash.Comparable(seed, 0x5eed),
	}
	g.nb = len(g.bounds) + 1
	for _, d := range sc.Dimensions {
		s := slot{kind: slotAttr, name: d.Name}
		if d.Default != nil {
			s.hasDef, s.def = true, *d.Default
		}
		g.dims.slots = append(g.dims.slots, s)
	}
	g.names = []string{"client", "server", "connection_type", "failed"}
	for _, d := range sc.Dimensions {
		g.names = append(g.names, "client_"+d.Name)
	}
	for _, d := range sc.Dimensions {
		g.names = append(g.names, "server_"+d.Name)
	}
	g.userH = g.virtualHash(seed, userNode)
	g.unknownH = g.virtualHash(seed, unknownNode)

	// A few shards so concurrent batches rarely meet, but none smaller
	// than 256 spans: the shards' bounds add up to max_items exactly.
	max := sc.Store.MaxItems
	n := 1
	for n*2 <= 4*runtime.GOMAXPROCS(0) && max/(n*2) >= 256 {
		n *= 2
	}
	g.stores = make([]pairShard, n)
	g.storeSh = uint(64 - bits.Len(uint(n-1)))
	for i := range g.stores {
		st := &g.stores[i]
		st.max = max / n
		if i < max%n {
			st.max++
		}
		size := 16
		for size < 2*st.max {
			size *= 2
		}
		st.tab = make([]int32, size)
		st.mask = uint64(size - 1)
		st.slab = make([]pending, 0, min(st.max, 1024))
		st.free, st.head, st.tail = -1, -1, -1
		st.oldest.Store(math.MaxInt64)
		st.front = make([]*halfNode, nodeFront)
		st.nodes = make(map[uint64]*halfNode, min(st.max, 256))
	}
	return g
}

// nodeFront is the number of slots of a shard's direct-mapped front of
// its node cache: a few services' sides each, with their peers and
// dimension values.
const nodeFront = 256

// keyHash mixes the key with the connector's seed (murmur3's finalizer),
// so crafted IDs cannot pile up in one probe run.
func (g *serviceGraph) keyHash(k *pairKey) uint64 {
	x := k.t0 ^ g.keySeed
	x = mix(x, k.t1)
	x = mix(x, k.span)
	x ^= x >> 33
	x *= 0xff51afd7ed558ccd
	x ^= x >> 33
	return x
}

func (g *serviceGraph) shardIndex(h uint64) int {
	if g.storeSh == 64 {
		return 0
	}
	return int(h >> g.storeSh)
}

// sideHash is the hash of one side of an edge: its service (hashed once
// per ResourceSpans by the caller) and dimension values. An edge's hash
// is made of its two sides', so completing a call hashes no string again.
func sideHash(seed maphash.Seed, svcHash uint64, dims []dimVal) uint64 {
	h := mix(svcHash, 0x51de)
	for i := range dims {
		h = mix(h, valHash(seed, &dims[i]))
	}
	return h
}

// virtualHash is the side hash of a virtual node: a name, no dimensions.
func (g *serviceGraph) virtualHash(seed maphash.Seed, name string) uint64 {
	h := mix(maphash.String(seed, name), 0x51de)
	absent := dimVal{}
	for range g.nd {
		h = mix(h, valHash(seed, &absent))
	}
	return h
}

func edgeHash(client, server uint64, conn uint8, failed bool) uint64 {
	h := mix(mix(uint64(familyEdge)+1, client), server)
	x := uint64(conn) << 1
	if failed {
		x |= 1
	}
	return mix(h, x)
}

// len is the number of pending spans in the whole store.
func (g *serviceGraph) len() int {
	n := 0
	for i := range g.stores {
		st := &g.stores[i]
		st.mu.Lock()
		n += st.n
		st.mu.Unlock()
	}
	return n
}

// sgScratch holds one ConsumeTraces call's buffers, and the edges it
// completed so far: a batch holds a few distinct edges called many times,
// so they are summed here and merged into their series once per batch
// (one lock, hash lookup and update per distinct edge, not per call). The
// values reference the request's strings, which live until the batch ends.
type sgScratch struct {
	cnt   []dimVal // client, server, connection_type
	local []localEdge
	nl    int
	lidx  [2 * localEdges]uint8 // index of local by edge hash: position + 1, 0 = empty
	// The batch's own pairing table: up to batchPairs spans of the
	// batch, referencing its memory; emptied at the end of every batch.
	// lp has one entry more, where a span past the table is written on
	// its way to the shared store.
	ltab  []int32 // open addressing, position + 1
	lp    []batchSpan
	nlp   int
	hvals []dimVal // the backing array of the entries' vals, in order
	// The kept spans of lp, in one FIFO list per shard of the shared
	// store (positions, -1 = none), for pairLeftovers.
	shardHead, shardTail []int16
	// The half node of the last stored span that had only its service
	// (no peer, no dimensions), and that service as the request holds it.
	plain    *halfNode
	plainSvc string
	last     [2]lastEdge // recordEdge's last two edges, the latest first
	memoOK   bool        // no graph dimensions: an edge is its names
	key      []byte      // appendKey of the series being looked up
}

// plainNode is intern for a side that is its service alone, remembered
// for the batch: most stored spans of a batch are such sides of one
// service, whose name is then the very same string of the request (same
// address and length, so the same bytes), and a hit compares two words
// instead of hashing and comparing values. clearPlain forgets it at the
// end of every batch, whose memory the remembered string is.
func (sc *sgScratch) plainNode(sh *pairShard, seed maphash.Seed, sv []dimVal, sideH uint64) *halfNode {
	svc := sv[halfService].s
	if n := sc.plain; n != nil && n.sideH == sideH && sameString(svc, sc.plainSvc) {
		return n
	}
	n := sh.intern(seed, sv, sideH)
	sc.plain, sc.plainSvc = n, svc
	return n
}

func (sc *sgScratch) clearPlain() { sc.plain, sc.plainSvc = nil, "" }

// lastEdge is the edge of the batch's previous call and its two names as
// recordEdge was given them (references to the request and to half
// nodes: mergeLocal, at the end of every batch, forgets it).
type lastEdge struct {
	l      *localEdge
	cs, ss string
	conn   uint8
	failed bool
}

// lastIs is recordEdge's first try, for its callers to make without
// the call: the batch's latest edge if it is the edge of these names.
func (sc *sgScratch) lastIs(cs, ss string, conn uint8, failed bool) *localEdge {
	if m := &sc.last[0]; sc.memoOK && m.is(cs, ss, conn, failed) {
		return m.l
	}
	return nil
}

// is reports whether m is the edge of these names (by address) and kind.
func (m *lastEdge) is(cs, ss string, conn uint8, failed bool) bool {
	return m.l != nil && m.conn == conn && m.failed == failed && sameString(m.cs, cs) && sameString(m.ss, ss)
}

// sameString reports whether a and b are the same bytes at the same
// address: equal without comparing them.
func sameString(a, b string) bool {
	return len(a) == len(b) && unsafe.StringData(a) == unsafe.StringData(b)
}

// batchPairs is how many spans a batch pairs in its own table; past it,
// spans go straight to the shared store.
const batchPairs = 1024

type batchSpan struct {
	key          pairKey
	h            uint64
	sideH        uint64
	vals         []dimVal // halfService, halfPeer (unset), dims
	span         ptrace.Span
	next         int16 // the next kept span of its shard, -1 if none
	w            uint64
	dur          float64
	side         uint8
	conn         uint8
	failed, done bool
}

type localEdge struct {
	h         uint64
	vals      []dimVal
	conn      uint8 // vals[edgeConn] and vals[edgeFailed], as recordEdge's arguments
	failed    bool
	calls     int64 // spans, for otelcol_redmetrics_spans_overflowed
	count     uint64
	sum, sum2 float64
	buckets   []uint64
	bCl, bSv  int // bucket of the last client and server latency: bucketNear's hints
}

// localEdges is how many distinct edges a batch sums before merging.
const localEdges = 32

func (g *serviceGraph) newScratch() sgScratch {
	sc := sgScratch{
		cnt:    make([]dimVal, 3),
		local:  make([]localEdge, localEdges),
		memoOK: g.nd == 0,
	}
	// Each table's values in one backing array: a scratch is a few
	// allocations, not one per entry (expire makes one at every flush).
	ne := edgeDims + 2*g.nd
	evals, bucks := make([]dimVal, localEdges*ne), make([]uint64, localEdges*2*g.nb)
	for i := range sc.local {
		sc.local[i].vals = evals[i*ne : (i+1)*ne : (i+1)*ne]
		sc.local[i].buckets = bucks[i*2*g.nb : (i+1)*2*g.nb : (i+1)*2*g.nb]
	}
	sc.ltab = make([]int32, 2*batchPairs)
	sc.lp = make([]batchSpan, batchPairs+1)
	sc.shardHead = make([]int16, len(g.stores))
	sc.shardTail = make([]int16, len(g.stores))
	for i := range g.stores {
		sc.shardHead[i], sc.shardTail[i] = -1, -1
	}
	nh := halfDims + g.nd
	sc.hvals = make([]dimVal, (batchPairs+1)*nh)
	for i := range sc.lp {
		sc.lp[i].vals = sc.hvals[i*nh : (i+1)*nh : (i+1)*nh]
	}
	return sc
}

// mergeLocal adds the batch's summed edges to their series.
func (c *connectorImp) mergeLocal(sc *sgScratch, now stamp, st *sgStats) {
	for i := 0; i < sc.nl; i++ {
		l := &sc.local[i]
		s, mu, o, cr := c.lockGlobalHashed(sc, l.h, familyEdge, l.vals, now)
		st.overflowed += o * l.calls
		st.created += cr
		s.lastSeen = now.mono
		s.dirty = true
		s.count += l.count
		s.sum += l.sum
		s.addEdgeSum2(l.sum2)
		hist := s.hist()
		for j, n := range l.buckets {
			hist[j] += n
		}
		mu.Unlock()
		l.calls, l.count, l.sum, l.sum2 = 0, 0, 0, 0
		clear(l.buckets)
		clear(l.vals) // drop the references to the request
	}
	sc.nl = 0
	clear(sc.lidx[:])
	sc.last = [2]lastEdge{}
}

// sgStats are a batch's own-metric counts.
type sgStats struct {
	overflowed, created int64
}

// attrKeys is an ordered list of attribute names of which the first
// present is wanted (the peer attributes, the database name attributes),
// with the set of their lengths: most of a span's attributes are none of
// them, and the length test refuses those without comparing strings.
type attrKeys struct {
	keys []string
	lens uint64 // bit min(len(key), 63) of every key
}

func newAttrKeys(keys []string) attrKeys {
	a := attrKeys{keys: keys}
	for _, k := range keys {
		a.lens |= 1 << min(len(k), 63)
	}
	return a
}

// first returns the first of a's keys present in m, as a string. With
// several keys it makes one pass over m instead of one lookup per key,
// which each scan m.
func (a *attrKeys) first(m pcommon.Map) (string, bool) {
	var v pcommon.Value
	found := false
	keys := a.keys
	if len(keys) == 1 {
		v, found = m.Get(keys[0])
	} else {
		best := len(keys)
		for k, x := range m.All() {
			if a.lens&(1<<min(len(k), 63)) == 0 {
				continue
			}
			for i := 0; i < best; i++ {
				if keys[i] == k {
					best, v, found = i, x, true
					break
				}
			}
			if best == 0 {
				break
			}
		}
	}
	return valueStr(v, found)
}

// valueStr is v as a string, if found.
func valueStr(v pcommon.Value, found bool) (string, bool) {
	if !found {
		return "", false
	}
	if v.Type() == pcommon.ValueTypeStr {
		return v.Str(), true
	}
	return v.AsString(), true
}

// kindRoles is the side and connection type of each kind of span that is
// one side of a call.
var kindRoles = [...]struct{ side, conn uint8 }{
	ptrace.SpanKindServer:   {sideServer, cUnset},
	ptrace.SpanKindClient:   {sideClient, cUnset},
	ptrace.SpanKindProducer: {sideClient, cMessaging},
	ptrace.SpanKindConsumer: {sideServer, cMessaging},
}

// onSpan pairs one span of kind client, server, producer or consumer. The
// caller has checked the kind.
func (c *connectorImp) onSpan(g *serviceGraph, sc *sgScratch, sctx *spanCtx, span ptrace.Span, w uint64, now stamp, st *sgStats) {
	// The span is written straight into the next entry of the batch's
	// table, which it keeps only if it waits there (nlp++); past the
	// table's end it goes to the shared store from the spare last entry.
	e := &sc.lp[sc.nlp]
	role := kindRoles[span.Kind()] // a load, where a switch is a chain of branches
	e.side, e.conn = role.side, role.conn
	e.dur = 0
	if s, t := span.StartTimestamp(), span.EndTimestamp(); t > s {
		e.dur = float64(t-s) / 1e9
	}
	e.failed = span.Status().Code() == ptrace.StatusCodeError
	e.w, e.span, e.done = w, span, false

	// This span's side: service and dimensions (the peer only if stored).
	sv := e.vals
	sv[halfService] = dimVal{t: vStr, s: sctx.service}
	e.sideH = sctx.sideH
	if g.nd > 0 {
		g.dims.fill(sctx, sv[halfDims:])
		e.sideH = sideHash(c.seed, sctx.svcHash, sv[halfDims:])
	}

	if e.side == sideClient {
		// A database call has no server span: it is an edge by itself.
		db, ok := g.dbAttrs.first(span.Attributes())
		if !ok {
			if sctx.resDB == 0 {
				sctx.resDB = 1
				if n, found := g.dbAttrs.first(sctx.resAttrs); found {
					sctx.resDB, sctx.dbName = 2, n
				}
			}
			db, ok = sctx.dbName, sctx.resDB == 2
		}
		if ok {
			if db != sctx.lastDB || sctx.lastDBH == 0 {
				sctx.lastDB, sctx.lastDBH = db, g.virtualHash(c.seed, db)
			}
			// The resource's last database name is passed, not this span's
			// copy of it: equal, and at one address for recordEdge's memo.
			// recordEdge's first try made here, without its call.
			if l := sc.lastIs(sv[halfService].s, sctx.lastDB, cDatabase, e.failed); l != nil {
				l.add(g, w, e.dur, e.dur, true, true)
			} else {
				c.recordEdge(g, sc, sv, nil, e.sideH, sctx.lastDBH, sctx.lastDB, cDatabase, e.failed, w, e.dur, e.dur, true, true, now, st)
			}
			return
		}
		e.key = newPairKey(span.TraceID(), span.SpanID())
	} else {
		parent := span.ParentSpanID()
		if parent.IsEmpty() {
			// A root server span was called by no instrumented service.
			if g.virtual {
				c.recordEdge(g, sc, nil, sv, g.userH, e.sideH, userNode, cVirtual, e.failed, w, 0, e.dur, false, true, now, st)
			}
			return
		}
		e.key = newPairKey(span.TraceID(), parent)
	}

	e.h = g.keyHash(&e.key)
	// Most calls complete within one batch (a trace-ID-routed tier sends
	// whole traces): pair them in the call's own table, without locks or
	// copies; only what is still unpaired at the end of the batch goes to
	// the shared store (pairLeftovers).
	slot, i := sc.llookup(e.h, &e.key)
	// A completed entry stays in the table (no removals within a batch):
	// a later span with its key goes to the shared store.
	if i >= 0 && !sc.lp[i].done {
		p := &sc.lp[i]
		if p.side != e.side {
			p.done = true
			ec := max(p.conn, e.conn)
			w = max(w, p.w)
			if e.side == sideClient {
				c.recordEdge(g, sc, sv, p.vals, e.sideH, p.sideH, "", ec, e.failed || p.failed, w, e.dur, p.dur, true, true, now, st)
			} else {
				c.recordEdge(g, sc, p.vals, sv, p.sideH, e.sideH, "", ec, e.failed || p.failed, w, p.dur, e.dur, true, true, now, st)
			}
			return
		}
		// The same side twice (a duplicated span): keep the first.
		c.countSide(g, sc, familyDropped, e.side, sctx.service, e.conn, w, now, st)
		return
	}
	if i < 0 && sc.nlp < batchPairs {
		// Kept: in the table, and at the end of its shard's list.
		n := int16(sc.nlp)
		sc.ltab[slot] = int32(n) + 1
		sc.nlp++
		s := g.shardIndex(e.h)
		e.next = -1
		if t := sc.shardTail[s]; t >= 0 {
			sc.lp[t].next = n
		} else {
			sc.shardHead[s] = n
		}
		sc.shardTail[s] = n
		return
	}
	c.pairShared(g, sc, e, now, st)
}

// dropRefs clears what the batch's table references of the request, in
// the entries used (those kept and the one the last span was written
// into): a pooled scratch must not keep the request's memory alive. The
// entries' values are one array, cleared in one piece.
func (sc *sgScratch) dropRefs() {
	n := min(sc.nlp+1, len(sc.lp))
	for i := range sc.lp[:n] {
		sc.lp[i].span = ptrace.Span{}
	}
	clear(sc.hvals[:n*len(sc.lp[0].vals)])
}

// pairLeftovers hands the batch's spans that found no other side in the
// batch to the shared store, and empties the batch's table. The spans are
// taken shard by shard, each shard's in batch order (onSpan keeps a list
// per shard), so each shard is locked once a batch rather than once a span.
func (c *connectorImp) pairLeftovers(g *serviceGraph, sc *sgScratch, now stamp, st *sgStats) {
	if sc.nlp == 0 {
		sc.dropRefs()
		sc.clearPlain()
		return
	}
	for s, head := range sc.shardHead {
		if head < 0 {
			continue
		}
		sh := &g.stores[s]
		sh.mu.Lock()
		for i := head; i >= 0; i = sc.lp[i].next {
			if e := &sc.lp[i]; !e.done {
				c.pairLocked(g, sc, sh, e, now, st)
			}
		}
		sh.publishOldest()
		sh.mu.Unlock()
		sc.shardHead[s], sc.shardTail[s] = -1, -1
	}
	sc.dropRefs()
	clear(sc.ltab)
	sc.nlp = 0
	sc.clearPlain()
}

// pairShared is pairLocked for one span, taking its shard's lock.
func (c *connectorImp) pairShared(g *serviceGraph, sc *sgScratch, e *batchSpan, now stamp, st *sgStats) {
	sh := &g.stores[g.shardIndex(e.h)]
	sh.mu.Lock()
	c.pairLocked(g, sc, sh, e, now, st)
	sh.publishOldest()
	sh.mu.Unlock()
}

// pairLocked pairs one span with the shared store: completes the call if
// its other side waits there, else stores the span, or drops it (counted)
// when its shard is full of spans younger than the TTL. Caller holds the
// lock of sh, the key's shard, and publishes its oldest span after. The
// span's peer is written into e.vals.
func (c *connectorImp) pairLocked(g *serviceGraph, sc *sgScratch, sh *pairShard, b *batchSpan, now stamp, st *sgStats) {
	sv, side := b.vals, b.side
	slot, i := sh.lookup(b.h, &b.key)
	if i >= 0 {
		e := &sh.slab[i]
		if e.side != side {
			// The other side is waiting: the call is complete.
			other, otherH := e.node.vals, e.node.sideH
			ew, edur, ec, ef := e.w, e.dur, e.conn, e.failed
			sh.removeAt(slot, i)
			ec = max(ec, b.conn)
			w := max(b.w, ew)
			client, server, ch, shh, cl, sd := sv, other, b.sideH, otherH, b.dur, edur
			if side == sideServer {
				client, server, ch, shh, cl, sd = other, sv, otherH, b.sideH, edur, b.dur
			}
			// recordEdge's first try made here, without its call: the
			// completions of a batch's shard are mostly of one edge.
			if l := sc.lastIs(client[halfService].s, server[halfService].s, ec, b.failed || ef); l != nil {
				l.add(g, w, cl, sd, true, true)
			} else {
				c.recordEdge(g, sc, client, server, ch, shh, "", ec, b.failed || ef, w, cl, sd, true, true, now, st)
			}
			return
		}
		// The same side twice (a duplicated span): keep the first.
		c.countSide(g, sc, familyDropped, side, sv[halfService].s, b.conn, b.w, now, st)
		return
	}
	if sh.n >= sh.max {
		if c.expireShard(g, sc, sh, now, false, st) {
			slot, _ = sh.lookup(b.h, &b.key) // removals moved the table's runs
		}
	}
	if sh.n >= sh.max {
		// Full of spans younger than the TTL: drop this one. Nothing
		// allocates here (the dropped counter exists after the first).
		c.countSide(g, sc, familyDropped, side, sv[halfService].s, b.conn, b.w, now, st)
		return
	}
	sv[halfPeer] = dimVal{}
	if p, ok := g.peers.first(b.span.Attributes()); ok {
		sv[halfPeer] = dimVal{t: vStr, s: p}
	}
	var node *halfNode
	if g.nd == 0 && sv[halfPeer].t == vAbsent {
		node = sc.plainNode(sh, c.seed, sv, b.sideH)
	} else {
		node = sh.intern(c.seed, sv, b.sideH)
	}
	p := sh.insertAt(slot)
	p.key, p.h, p.node, p.expireAt = b.key, b.h, node, now.mono+g.ttl
	p.dur, p.w, p.side, p.conn, p.failed = b.dur, b.w, side, b.conn, b.failed
}

// expireDue records the spans that waited past the TTL, in every shard
// whose oldest span is due: a lock only where there is work, since a
// batch of one service's spans is small and the shards are many.
func (c *connectorImp) expireDue(g *serviceGraph, sc *sgScratch, now stamp, st *sgStats) {
	for i := range g.stores {
		sh := &g.stores[i]
		if sh.oldest.Load() > now.mono {
			continue
		}
		sh.mu.Lock()
		if sh.head >= 0 && sh.slab[sh.head].expireAt <= now.mono {
			c.expireShard(g, sc, sh, now, false, st)
		}
		sh.publishOldest()
		sh.mu.Unlock()
	}
}

// publishOldest makes the expiry of the shard's oldest span readable
// without its lock (expireDue). Caller holds mu.
func (sh *pairShard) publishOldest() {
	o := int64(math.MaxInt64)
	if sh.head >= 0 {
		o = sh.slab[sh.head].expireAt
	}
	if sh.oldest.Load() != o {
		sh.oldest.Store(o)
	}
}

// llookup finds key in the batch's table: its slot (or the empty slot
// where it would go) and its position, -1 if absent. Entries are never
// removed (a completed one is marked done), the table is cleared per batch.
func (sc *sgScratch) llookup(h uint64, k *pairKey) (uint64, int32) {
	m := uint64(len(sc.ltab) - 1)
	for i := h & m; ; i = (i + 1) & m {
		v := sc.ltab[i]
		if v == 0 {
			return i, -1
		}
		if sc.lp[v-1].key == *k {
			return i, v - 1
		}
	}
}

// lookup returns the index slot of key (or the empty slot where it would
// go) and its slab position, -1 if absent. Caller holds mu.
func (sh *pairShard) lookup(h uint64, k *pairKey) (uint64, int32) {
	for i := h & sh.mask; ; i = (i + 1) & sh.mask {
		v := sh.tab[i]
		if v == 0 {
			return i, -1
		}
		if sh.slab[v-1].key == *k {
			return i, v - 1
		}
	}
}

// intern returns the cached half node of vals, creating it if needed. The
// cache is a shortcut, not an owner: pending spans hold their node, so the
// map is simply cleared when it reaches twice the shard's bound; nodes in
// memory are then at most that, plus the front's slots, plus one per
// pending span. The direct-mapped front answers most lookups with one
// slot's comparison; the map behind it keeps two sides whose hashes share
// a slot from allocating a node at every stored span.
func (sh *pairShard) intern(seed maphash.Seed, vals []dimVal, sideH uint64) *halfNode {
	h := sideH
	if vals[halfPeer].t != vAbsent {
		h = mix(sideH, valHash(seed, &vals[halfPeer]))
	}
	slot := &sh.front[h&uint64(len(sh.front)-1)]
	if n := *slot; n != nil && n.h == h && valsEqual(n.vals, vals) {
		return n
	}
	for n := sh.nodes[h]; n != nil; n = n.next {
		if valsEqual(n.vals, vals) {
			*slot = n
			return n
		}
	}
	if sh.nNode >= 2*sh.max+64 {
		clear(sh.nodes)
		sh.nNode = 0
	}
	n := &halfNode{vals: cloneVals(vals), sideH: sideH, h: h, next: sh.nodes[h]}
	sh.nodes[h] = n
	sh.nNode++
	*slot = n
	return n
}

// insertAt takes a slab entry for the empty index slot found by lookup,
// appends it to the FIFO and returns it, for the caller to fill in place
// (a pending value passed by copy goes through the stack). Caller checked
// n < max.
func (sh *pairShard) insertAt(slot uint64) *pending {
	var i int32
	if sh.free >= 0 {
		i = sh.free
		sh.free = sh.slab[i].next
	} else {
		i = int32(len(sh.slab))
		sh.slab = append(sh.slab, pending{})
	}
	p := &sh.slab[i]
	p.prev, p.next = sh.tail, -1
	if sh.tail >= 0 {
		sh.slab[sh.tail].next = i
	} else {
		sh.head = i
	}
	sh.tail = i
	sh.tab[slot] = i + 1
	sh.n++
	return p
}

// removeAt removes slab entry i, found at index slot, from the index
// (backward-shift deletion: no tombstones), the FIFO, and puts it on the
// free list.
func (sh *pairShard) removeAt(slot uint64, i int32) {
	// Close the gap: move back every later entry of the run whose home
	// slot is not in (slot, j].
	hole := slot
	for j := (slot + 1) & sh.mask; ; j = (j + 1) & sh.mask {
		v := sh.tab[j]
		if v == 0 {
			break
		}
		home := sh.slab[v-1].h & sh.mask
		if (j-home)&sh.mask >= (j-hole)&sh.mask {
			sh.tab[hole] = v
			hole = j
		}
	}
	sh.tab[hole] = 0

	e := &sh.slab[i]
	if e.prev >= 0 {
		sh.slab[e.prev].next = e.next
	} else {
		sh.head = e.next
	}
	if e.next >= 0 {
		sh.slab[e.next].prev = e.prev
	} else {
		sh.tail = e.prev
	}
	*e = pending{next: sh.free}
	sh.free = i
	sh.n--
}

// expire records every span of every shard that waited past the TTL (all
// of them when all is set, at shutdown).
func (c *connectorImp) expire(g *serviceGraph, now stamp, all bool) sgStats {
	var st sgStats
	sc := g.newScratch()
	for i := range g.stores {
		sh := &g.stores[i]
		sh.mu.Lock()
		c.expireShard(g, &sc, sh, now, all, &st)
		sh.publishOldest()
		sh.mu.Unlock()
	}
	c.mergeLocal(&sc, now, &st)
	return st
}

// expireShard records the shard's expired spans: each is counted as
// unpaired, and becomes an edge to (or from) a virtual node when contrib
// would make one. It reports whether it removed any. Caller holds sh.mu.
func (c *connectorImp) expireShard(g *serviceGraph, sc *sgScratch, sh *pairShard, now stamp, all bool, st *sgStats) bool {
	removed := false
	for sh.head >= 0 {
		e := &sh.slab[sh.head]
		if !all && e.expireAt > now.mono {
			break
		}
		node := e.node
		side, conn, w, dur, failed := e.side, e.conn, e.w, e.dur, e.failed
		slot, _ := sh.lookup(e.h, &e.key)
		sh.removeAt(slot, sh.head)
		removed = true
		vals := node.vals
		c.countSide(g, sc, familyUnpaired, side, vals[halfService].s, conn, w, now, st)
		if !g.virtual {
			continue
		}
		peer := vals[halfPeer]
		if side == sideClient {
			name, h := unknownNode, g.unknownH
			if peer.t == vStr {
				name, h = peer.s, g.virtualHash(c.seed, peer.s)
			}
			c.recordEdge(g, sc, vals, nil, node.sideH, h, name, cVirtual, failed, w, dur, 0, true, false, now, st)
		} else if peer.t == vStr {
			c.recordEdge(g, sc, nil, vals, g.virtualHash(c.seed, peer.s), node.sideH, peer.s, cVirtual, failed, w, 0, dur, false, true, now, st)
		}
	}
	return removed
}

// recordEdge adds one call to its edge series. client and server are half
// node values (halfService, halfPeer, dims) with their side hashes; a nil
// side is a virtual node named virt, with no dimensions.
func (c *connectorImp) recordEdge(g *serviceGraph, sc *sgScratch, client, server []dimVal, ch, shh uint64, virt string, conn uint8, failed bool, w uint64, cl, sv float64, hasCl, hasSv bool, now stamp, st *sgStats) {
	// Calls of one edge come in runs (a service's spans arrive together):
	// without dimensions an edge is its two names, and the previous call's
	// names at the same addresses are the same names.
	cs, ss := virt, virt
	if client != nil {
		cs = client[halfService].s
	}
	if server != nil {
		ss = server[halfService].s
	}
	if g.nd == 0 {
		if m := &sc.last[0]; m.is(cs, ss, conn, failed) {
			m.l.add(g, w, cl, sv, hasCl, hasSv)
			return
		}
		if m := &sc.last[1]; m.is(cs, ss, conn, failed) {
			sc.last[0], sc.last[1] = sc.last[1], sc.last[0]
			sc.last[0].l.add(g, w, cl, sv, hasCl, hasSv)
			return
		}
	}
	h := edgeHash(ch, shh, conn, failed)
	// A batch's edges are few and each is called many times: find it in
	// the batch's index by hash, and check it is the same edge against the
	// sides themselves, so the edge's values are written only once.
	mask := uint64(len(sc.lidx) - 1)
	i := h & mask
	var l *localEdge
	for ; sc.lidx[i] != 0; i = (i + 1) & mask {
		if x := &sc.local[sc.lidx[i]-1]; x.h == h && x.conn == conn && x.failed == failed &&
			sideIs(x.vals[edgeClient], client, virt) && sideIs(x.vals[edgeServer], server, virt) &&
			(g.nd == 0 || x.dimsAre(g.nd, client, server)) {
			l = x
			break
		}
	}
	if l == nil {
		if sc.nl == len(sc.local) {
			c.mergeLocal(sc, now, st) // empties the index too
			i = h & mask
		}
		l = &sc.local[sc.nl]
		sc.nl++
		sc.lidx[i] = uint8(sc.nl)
		l.h, l.conn, l.failed = h, conn, failed
		l.setVals(g.nd, client, server, virt)
	}
	sc.last[1] = sc.last[0]
	sc.last[0] = lastEdge{l: l, cs: cs, ss: ss, conn: conn, failed: failed}
	l.add(g, w, cl, sv, hasCl, hasSv)
}

// add counts one call of the edge.
func (l *localEdge) add(g *serviceGraph, w uint64, cl, sv float64, hasCl, hasSv bool) {
	l.calls++
	l.count += w
	if hasCl {
		l.sum += cl * float64(w)
		l.bCl = bucketNear(g.bounds, cl, l.bCl)
		l.buckets[l.bCl] += w
	}
	if hasSv {
		l.sum2 += sv * float64(w)
		l.bSv = bucketNear(g.bounds, sv, l.bSv)
		l.buckets[g.nb+l.bSv] += w
	}
}

// bucketNear is bucketIndex(bounds, v), tried first at hint: the calls of
// one edge mostly take about as long as its previous one, and two
// comparisons then replace the binary search and its branches.
func bucketNear(bounds []float64, v float64, hint int) int {
	if (hint == 0 || bounds[hint-1] < v) && (hint == len(bounds) || v <= bounds[hint]) {
		return hint
	}
	return bucketIndex(bounds, v)
}

// setVals writes the edge's values (the edge layout): each side's service
// and dimensions, or the virtual node's name with no dimensions for a nil
// side, then connection_type and failed.
func (l *localEdge) setVals(nd int, client, server []dimVal, virt string) {
	ev := l.vals
	if client != nil {
		ev[edgeClient] = client[halfService]
		copy(ev[edgeDims:edgeDims+nd], client[halfDims:])
	} else {
		ev[edgeClient] = dimVal{t: vStr, s: virt}
		clear(ev[edgeDims : edgeDims+nd])
	}
	if server != nil {
		ev[edgeServer] = server[halfService]
		copy(ev[edgeDims+nd:], server[halfDims:])
	} else {
		ev[edgeServer] = dimVal{t: vStr, s: virt}
		clear(ev[edgeDims+nd:])
	}
	ev[edgeConn] = dimVal{t: vStr, s: connNames[l.conn]}
	ev[edgeFailed] = dimVal{t: vBool}
	if l.failed {
		ev[edgeFailed].n = 1
	}
}

// sideIs reports whether setVals writes v as the service of side (a
// virtual node named virt when side is nil). Small enough to inline: the
// lookup runs once per completed call.
func sideIs(v dimVal, side []dimVal, virt string) bool {
	if side == nil {
		return v == dimVal{t: vStr, s: virt}
	}
	return v.equal(side[halfService])
}

// dimsAre reports whether setVals writes l's dimension values for these
// sides (a nil side has none: every value absent).
func (l *localEdge) dimsAre(nd int, client, server []dimVal) bool {
	return dimsAre(l.vals[edgeDims:edgeDims+nd], client) && dimsAre(l.vals[edgeDims+nd:], server)
}

func dimsAre(dims, side []dimVal) bool {
	if side == nil {
		for i := range dims {
			if dims[i] != (dimVal{}) {
				return false
			}
		}
		return true
	}
	return valsEqual(dims, side[halfDims:])
}

// countSide counts one span of one side in the unpaired or dropped series.
func (c *connectorImp) countSide(_ *serviceGraph, sc *sgScratch, family uint8, side uint8, service string, conn uint8, w uint64, now stamp, st *sgStats) {
	v := sc.cnt
	v[0], v[1] = dimVal{t: vStr}, dimVal{t: vStr}
	v[side] = dimVal{t: vStr, s: service} // sideClient = 0 = client, sideServer = 1 = server
	v[2] = dimVal{t: vStr, s: connNames[conn]}
	s, mu, o, cr := c.lockGlobal(sc, family, v, now)
	st.overflowed += o
	st.created += cr
	s.lastSeen = now.mono
	s.dirty = true
	s.count += w
	mu.Unlock()
}

// lockGlobal finds or creates the series of a family that belongs to no
// resource (the service graph's, emitted under an empty resource as
// contrib does) and returns it with its lock held: the shard's, or the
// overflow lock when cardinality_limit is reached. It returns 1 when the
// series is the overflow one, and 1 when it was created.
func (c *connectorImp) lockGlobal(sc *sgScratch, family uint8, vals []dimVal, now stamp) (*series, *sync.Mutex, int64, int64) {
	sc.key = appendKey(sc.key[:0], family, vals)
	return c.lockGlobalKeyed(keyHash(c.seed, 0, sc.key), family, vals, sc.key, now)
}

// lockGlobalHashed is lockGlobal with the series hash computed by the
// caller (a function of vals alone: equal values, equal hash).
func (c *connectorImp) lockGlobalHashed(sc *sgScratch, h uint64, family uint8, vals []dimVal, now stamp) (*series, *sync.Mutex, int64, int64) {
	sc.key = appendKey(sc.key[:0], family, vals)
	return c.lockGlobalKeyed(h, family, vals, sc.key, now)
}

func (c *connectorImp) lockGlobalKeyed(h uint64, family uint8, vals []dimVal, key []byte, now stamp) (*series, *sync.Mutex, int64, int64) {
	if c.testHash != nil {
		h = c.testHash(0, key)
	}
	sh := &c.shards[h>>c.shift]
	sh.mu.Lock()
	if s := sh.t.find(h, nil, unsafeString(key)); s != nil {
		return s, &sh.mu, 0, 0
	}
	if c.reserve() {
		s := c.newSeries(nil, family, unsafeString(key), now)
		sh.t.insert(h, s)
		return s, &sh.mu, 0, 1
	}
	sh.mu.Unlock()
	c.overflowMu.Lock()
	o := c.overflow[family]
	if o == nil {
		o = c.newSeries(nil, family, "", now)
		c.overflow[family] = o
	}
	return o, &c.overflowMu, 1, 0
}
