package redmetricsconnector // import "github.com/otelcsp/otelcsp/connector/redmetricsconnector"

import (
	"encoding/binary"
	"hash/maphash"
	"runtime"
	"sync"

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
	peers    []string
	dbAttrs  []string
	virtual  bool
	bounds   []float64 // seconds
	nb       int       // buckets per side: len(bounds)+1
	ttl      int64     // ns of monotonic time
	names    []string  // emitted attribute names of an edge, in order
	stores   []pairShard
	storeMsk uint64
}

// pairKey identifies a call: the client side's span ID, which the server
// side carries as its parent span ID.
type pairKey struct {
	trace pcommon.TraceID
	span  pcommon.SpanID
}

// pending is one span waiting for its other side. It references its
// side's values through an interned halfNode, so storing a span whose
// service and dimensions were seen before allocates nothing.
type pending struct {
	key        pairKey
	node       *halfNode
	expireAt   int64 // monotonic ns
	dur        float64
	w          uint64
	prev, next int32 // FIFO by insertion (= expiry) order, or the free list
	side       uint8
	conn       string
	failed     bool
}

// halfNode is one side's identity: service, peer and dimension values,
// copied out of the request (cloneVals).
type halfNode struct {
	vals []dimVal
	next *halfNode
}

// pairShard is one slice of the store, chosen by trace ID: both sides of
// a call hash to the same shard. It never holds more than max spans.
type pairShard struct {
	mu    sync.Mutex
	idx   map[pairKey]int32
	slab  []pending
	free  int32 // first free slab slot, -1 if none
	head  int32 // oldest pending span, -1 if none
	tail  int32
	n     int
	max   int
	nodes map[uint64]*halfNode // cache of interned half nodes
	nNode int
	_     [40]byte
}

func newServiceGraph(cfg *Config) *serviceGraph {
	sc := &cfg.ServiceGraph
	g := &serviceGraph{
		dims:    &plan{instAt: -1},
		nd:      len(sc.Dimensions),
		peers:   sc.VirtualNodePeerAttributes,
		dbAttrs: sc.DatabaseNameAttributes,
		virtual: len(sc.VirtualNodePeerAttributes) > 0,
		bounds:  sc.latencyBounds(),
		ttl:     int64(sc.Store.TTL),
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

	// A few shards so concurrent batches rarely meet, but none smaller
	// than 256 spans: the shards' bounds add up to max_items exactly.
	max := sc.Store.MaxItems
	n := 1
	for n*2 <= 4*runtime.GOMAXPROCS(0) && max/(n*2) >= 256 {
		n *= 2
	}
	g.stores = make([]pairShard, n)
	g.storeMsk = uint64(n - 1)
	for i := range g.stores {
		st := &g.stores[i]
		st.max = max / n
		if i < max%n {
			st.max++
		}
		hint := min(st.max, 1024)
		st.idx = make(map[pairKey]int32, hint)
		st.slab = make([]pending, 0, hint)
		st.free, st.head, st.tail = -1, -1, -1
		st.nodes = make(map[uint64]*halfNode, min(st.max, 256))
	}
	return g
}

func (g *serviceGraph) shardOf(t pcommon.TraceID) *pairShard {
	return &g.stores[binary.LittleEndian.Uint64(t[8:])&g.storeMsk]
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

// sgScratch holds one ConsumeTraces call's buffers.
type sgScratch struct {
	side []dimVal // halfService, halfPeer, dims
	edge []dimVal // edge layout
	cnt  []dimVal // client, server, connection_type
}

func (g *serviceGraph) newScratch() sgScratch {
	return sgScratch{
		side: make([]dimVal, halfDims+g.nd),
		edge: make([]dimVal, edgeDims+2*g.nd),
		cnt:  make([]dimVal, 3),
	}
}

// sgStats are a batch's own-metric counts.
type sgStats struct {
	overflowed, created int64
}

// firstStr returns the first of keys present in m, as a string.
func firstStr(keys []string, m pcommon.Map) (string, bool) {
	for _, k := range keys {
		if v, ok := m.Get(k); ok {
			if v.Type() == pcommon.ValueTypeStr {
				return v.Str(), true
			}
			return v.AsString(), true
		}
	}
	return "", false
}

// onSpan pairs one span of kind client, server, producer or consumer. The
// caller has checked the kind.
func (c *connectorImp) onSpan(g *serviceGraph, sc *sgScratch, sctx *spanCtx, span ptrace.Span, w uint64, now stamp, st *sgStats) {
	kind := span.Kind()
	side := sideClient
	conn := connUnset
	switch kind {
	case ptrace.SpanKindProducer:
		conn = connMessaging
	case ptrace.SpanKindServer:
		side = sideServer
	case ptrace.SpanKindConsumer:
		side, conn = sideServer, connMessaging
	}
	dur := 0.0
	if s, e := span.StartTimestamp(), span.EndTimestamp(); e > s {
		dur = float64(e-s) / 1e9
	}
	failed := span.Status().Code() == ptrace.StatusCodeError
	attrs := span.Attributes()

	// This span's side: service, peer, dimensions.
	sv := sc.side
	sv[halfService] = dimVal{t: vStr, s: sctx.service}
	if p, ok := firstStr(g.peers, attrs); ok {
		sv[halfPeer] = dimVal{t: vStr, s: p}
	} else {
		sv[halfPeer] = dimVal{}
	}
	g.dims.fill(sctx, sv[halfDims:])

	var key pairKey
	if side == sideClient {
		// A database call has no server span: it is an edge by itself.
		db, ok := firstStr(g.dbAttrs, attrs)
		if !ok {
			db, ok = firstStr(g.dbAttrs, sctx.resAttrs)
		}
		if ok {
			c.recordEdge(g, sc, sv, nil, db, connDatabase, failed, w, dur, dur, true, true, now, st)
			return
		}
		key = pairKey{trace: span.TraceID(), span: span.SpanID()}
	} else {
		parent := span.ParentSpanID()
		if parent.IsEmpty() {
			// A root server span was called by no instrumented service.
			if g.virtual {
				c.recordEdge(g, sc, nil, sv, userNode, connVirtualNode, failed, w, 0, dur, false, true, now, st)
			}
			return
		}
		key = pairKey{trace: span.TraceID(), span: parent}
	}

	sh := g.shardOf(key.trace)
	sh.mu.Lock()
	if i, ok := sh.idx[key]; ok {
		e := &sh.slab[i]
		if e.side != side {
			// The other side is waiting: the call is complete.
			other := e.node.vals
			ew, edur, ec, ef := e.w, e.dur, e.conn, e.failed
			sh.remove(i)
			if ec == connUnset {
				ec = conn
			}
			w = max(w, ew)
			if side == sideClient {
				c.recordEdge(g, sc, sv, other, "", ec, failed || ef, w, dur, edur, true, true, now, st)
			} else {
				c.recordEdge(g, sc, other, sv, "", ec, failed || ef, w, edur, dur, true, true, now, st)
			}
			sh.mu.Unlock()
			return
		}
		// The same side twice (a duplicated span): keep the first.
		sh.mu.Unlock()
		c.countSide(g, sc, familyDropped, side, sv[halfService].s, conn, w, now, st)
		return
	}
	if sh.n >= sh.max {
		c.expireShard(g, sc, sh, now, false, st)
	}
	if sh.n >= sh.max {
		// Full of spans younger than the TTL: drop this one. Nothing
		// allocates here (the dropped counter exists after the first).
		sh.mu.Unlock()
		c.countSide(g, sc, familyDropped, side, sv[halfService].s, conn, w, now, st)
		return
	}
	node := sh.intern(c.seed, sv)
	sh.push(pending{key: key, node: node, expireAt: now.mono + g.ttl, dur: dur, w: w, side: side, conn: conn, failed: failed})
	sh.mu.Unlock()
}

// intern returns the cached half node of vals, creating it if needed. The
// cache is a shortcut, not an owner: pending spans hold their node, so the
// cache is simply cleared when it reaches twice the shard's bound. Nodes
// in memory are then at most that plus one per pending span.
func (sh *pairShard) intern(seed maphash.Seed, vals []dimVal) *halfNode {
	h := hashVals(seed, 0, familyEdge, vals)
	for n := sh.nodes[h]; n != nil; n = n.next {
		if valsEqual(n.vals, vals) {
			return n
		}
	}
	if sh.nNode >= 2*sh.max+64 {
		clear(sh.nodes)
		sh.nNode = 0
	}
	n := &halfNode{vals: cloneVals(vals), next: sh.nodes[h]}
	sh.nodes[h] = n
	sh.nNode++
	return n
}

// push appends p at the tail of the FIFO. Caller checked n < max.
func (sh *pairShard) push(p pending) {
	var i int32
	if sh.free >= 0 {
		i = sh.free
		sh.free = sh.slab[i].next
	} else {
		i = int32(len(sh.slab))
		sh.slab = append(sh.slab, pending{})
	}
	p.prev, p.next = sh.tail, -1
	sh.slab[i] = p
	if sh.tail >= 0 {
		sh.slab[sh.tail].next = i
	} else {
		sh.head = i
	}
	sh.tail = i
	sh.idx[p.key] = i
	sh.n++
}

// remove unlinks slot i and puts it on the free list.
func (sh *pairShard) remove(i int32) {
	e := &sh.slab[i]
	delete(sh.idx, e.key)
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
		sh.mu.Unlock()
	}
	return st
}

// expireShard records the shard's expired spans: each is counted as
// unpaired, and becomes an edge to (or from) a virtual node when contrib
// would make one. Caller holds sh.mu.
func (c *connectorImp) expireShard(g *serviceGraph, sc *sgScratch, sh *pairShard, now stamp, all bool, st *sgStats) {
	for sh.head >= 0 {
		e := &sh.slab[sh.head]
		if !all && e.expireAt > now.mono {
			return
		}
		vals := e.node.vals
		side, conn, w, dur, failed := e.side, e.conn, e.w, e.dur, e.failed
		sh.remove(sh.head)
		c.countSide(g, sc, familyUnpaired, side, vals[halfService].s, conn, w, now, st)
		if !g.virtual {
			continue
		}
		peer := vals[halfPeer]
		if side == sideClient {
			name := unknownNode
			if peer.t == vStr {
				name = peer.s
			}
			c.recordEdge(g, sc, vals, nil, name, connVirtualNode, failed, w, dur, 0, true, false, now, st)
		} else if peer.t == vStr {
			c.recordEdge(g, sc, nil, vals, peer.s, connVirtualNode, failed, w, 0, dur, false, true, now, st)
		}
	}
}

// recordEdge adds one call to its edge series. client and server are half
// node values (halfService, halfPeer, dims); a nil side is a virtual node
// named virt, with no dimensions.
func (c *connectorImp) recordEdge(g *serviceGraph, sc *sgScratch, client, server []dimVal, virt, conn string, failed bool, w uint64, cl, sv float64, hasCl, hasSv bool, now stamp, st *sgStats) {
	ev := sc.edge
	if client != nil {
		ev[edgeClient] = client[halfService]
		copy(ev[edgeDims:edgeDims+g.nd], client[halfDims:])
	} else {
		ev[edgeClient] = dimVal{t: vStr, s: virt}
		clear(ev[edgeDims : edgeDims+g.nd])
	}
	if server != nil {
		ev[edgeServer] = server[halfService]
		copy(ev[edgeDims+g.nd:], server[halfDims:])
	} else {
		ev[edgeServer] = dimVal{t: vStr, s: virt}
		clear(ev[edgeDims+g.nd:])
	}
	ev[edgeConn] = dimVal{t: vStr, s: conn}
	ev[edgeFailed] = dimVal{t: vBool}
	if failed {
		ev[edgeFailed].n = 1
	}
	s, mu, o, cr := c.lockGlobal(familyEdge, ev, now)
	st.overflowed += o
	st.created += cr
	s.lastSeen = now.mono
	s.dirty = true
	s.count += w
	if hasCl {
		s.sum += cl * float64(w)
		s.buckets[bucketIndex(g.bounds, cl)] += w
	}
	if hasSv {
		s.sum2 += sv * float64(w)
		s.buckets[g.nb+bucketIndex(g.bounds, sv)] += w
	}
	mu.Unlock()
}

// countSide counts one span of one side in the unpaired or dropped series.
func (c *connectorImp) countSide(g *serviceGraph, sc *sgScratch, family uint8, side uint8, service, conn string, w uint64, now stamp, st *sgStats) {
	v := sc.cnt
	v[0], v[1] = dimVal{t: vStr}, dimVal{t: vStr}
	v[side] = dimVal{t: vStr, s: service} // sideClient = 0 = client, sideServer = 1 = server
	v[2] = dimVal{t: vStr, s: conn}
	s, mu, o, cr := c.lockGlobal(family, v, now)
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
func (c *connectorImp) lockGlobal(family uint8, vals []dimVal, now stamp) (*series, *sync.Mutex, int64, int64) {
	h := hashVals(c.seed, 0, family, vals)
	if c.testHash != nil {
		h = c.testHash(0, family, vals)
	}
	sh := &c.shards[h>>c.shift]
	sh.mu.Lock()
	if s := sh.find(h, nil, family, vals); s != nil {
		return s, &sh.mu, 0, 0
	}
	if c.reserve() {
		s := c.newSeries(nil, family, cloneVals(vals), now)
		sh.insert(h, s)
		return s, &sh.mu, 0, 1
	}
	sh.mu.Unlock()
	c.overflowMu.Lock()
	o := c.overflow[family]
	if o == nil {
		o = c.newSeries(nil, family, nil, now)
		c.overflow[family] = o
	}
	return o, &c.overflowMu, 1, 0
}
