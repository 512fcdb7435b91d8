// Package merge is the deltamerge engine: a bounded table of streams, each
// the cumulative total of the delta points its writers sent, with per-writer
// memory to recognise re-sent points. It uses no collector types beyond
// pdata and is not safe for concurrent use: the processor serialises calls.
package merge // import "github.com/otelcsp/otelcsp/processor/deltamergeprocessor/internal/merge"

import (
	"strings"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
)

// OverflowAttribute marks the stream that takes the points of new streams
// past MaxStreams, one per metric, as the OpenTelemetry metrics SDK does.
const OverflowAttribute = "otel.metric.overflow"

// DefaultMaxExpoBuckets bounds the buckets of each sign of a merged
// exponential histogram (the SDKs' default max_size): past it the stream is
// downscaled.
const DefaultMaxExpoBuckets = 160

// Config of a Table.
type Config struct {
	// WriterAttribute names the attribute that identifies a writer, looked
	// up on the data point, then the resource; it is not part of the
	// stream identity and is removed from the output.
	WriterAttribute string
	// MaxStreams bounds the streams (overflow streams aside, which are
	// bounded by MaxStreams as well).
	MaxStreams int
	// MaxWritersPerStream bounds the writer records of a stream.
	MaxWritersPerStream int
	// Expiration drops streams, and writers of a stream, that merged no
	// point for that long; 0 keeps them.
	Expiration time.Duration
	// MaxExpoBuckets bounds exponential histogram buckets per sign; 0 means
	// DefaultMaxExpoBuckets.
	MaxExpoBuckets int
}

// Result counts what one Consume did.
type Result struct {
	Merged     int64 // delta points added to a stream (overflowed ones included)
	OutOfOrder int64 // merged points that end before their writer's latest
	Duplicates int64 // points dropped as re-sent
	Overflowed int64 // points merged into an overflow stream
	// Points dropped for other reasons.
	DroppedBoundsMismatch int64
	DroppedInvalid        int64
	DroppedOverflowFull   int64
	WritersEvicted        int64
}

// FlushResult counts what one Flush did.
type FlushResult struct {
	Points  int   // cumulative points emitted
	Expired int64 // streams dropped after the flush
}

type resEntry struct {
	hash   uint64
	next   *resEntry // hash chain
	attrs  pcommon.Map
	kv     []kv
	scopes []*scopeEntry
	idx    int // in Table.resList
}

type scopeKey struct {
	res           *resEntry
	name, version string
}

type scopeEntry struct {
	key     scopeKey
	attrs   pcommon.Map
	metrics []*metricEntry
	idx     int // in res.scopes
}

type metricKey struct {
	scope      *scopeEntry
	name, unit string
	typ        pmetric.MetricType
	monotonic  bool
}

type metricEntry struct {
	key         metricKey
	id          uint64
	description string
	streams     []*stream
	idx         int  // in scope.metrics
	pending     bool // queued for the empty-entry sweep at the end of Consume
}

type stream struct {
	hash       uint64
	next       *stream // hash chain
	metric     *metricEntry
	idx        int // in metric.streams
	attrs      pcommon.Map
	kv         []kv
	start      pcommon.Timestamp
	lastMerged int64 // unix ns
	// overflow: takes the points of streams that found no room. It keeps
	// no writer records (the windows of many streams' points coincide),
	// so duplicates are not recognised in it.
	overflow bool
	// counted: whether the stream counts towards MaxStreams (regular) or
	// towards the overflow bound.
	countedAsOverflow bool

	sum     sumState
	hist    *histState
	expo    *expoState
	writers []writerRec
}

// Table is the stream table.
type Table struct {
	cfg     Config
	maxExpo int32
	hs      *hasher

	resources map[uint64]*resEntry
	resList   []*resEntry
	scopes    map[scopeKey]*scopeEntry
	metrics   map[metricKey]*metricEntry
	streams   map[uint64]*stream
	regular   int
	overflows int
	nextID    uint64

	writers    map[string]*writerRef
	lastWriter *writerRef

	overflowAttrs pcommon.Map
	overflowHash  uint64
	emptyAttrs    pcommon.Map

	pendingEmpty []*metricEntry

	// testHash, when set, replaces stream hashes: tests force collisions
	// to prove lookups compare attributes, not only hashes.
	testHash func(uint64) uint64
}

// New returns an empty table.
func New(cfg Config) *Table {
	if cfg.MaxExpoBuckets <= 0 {
		cfg.MaxExpoBuckets = DefaultMaxExpoBuckets
	}
	if cfg.MaxWritersPerStream <= 0 {
		cfg.MaxWritersPerStream = 1
	}
	t := &Table{
		cfg:       cfg,
		maxExpo:   int32(min(cfg.MaxExpoBuckets, 1<<20)),
		hs:        newHasher(),
		resources: map[uint64]*resEntry{},
		scopes:    map[scopeKey]*scopeEntry{},
		metrics:   map[metricKey]*metricEntry{},
		streams:   map[uint64]*stream{},
		writers:   map[string]*writerRef{},
	}
	t.overflowAttrs = pcommon.NewMap()
	t.overflowAttrs.PutBool(OverflowAttribute, true)
	t.overflowHash, _ = t.hs.attrs(t.overflowAttrs, "")
	t.emptyAttrs = pcommon.NewMap()
	return t
}

// Len is the number of streams held, overflow streams included.
func (t *Table) Len() int { return t.regular + t.overflows }

// isDelta reports whether m is a metric the table merges.
func isDelta(m pmetric.Metric) bool {
	switch m.Type() {
	case pmetric.MetricTypeSum:
		return m.Sum().AggregationTemporality() == pmetric.AggregationTemporalityDelta
	case pmetric.MetricTypeHistogram:
		return m.Histogram().AggregationTemporality() == pmetric.AggregationTemporalityDelta
	case pmetric.MetricTypeExponentialHistogram:
		return m.ExponentialHistogram().AggregationTemporality() == pmetric.AggregationTemporalityDelta
	}
	return false
}

// Consume merges every delta Sum, Histogram and ExponentialHistogram of md
// into the table and removes it from md (scopes and resources left empty
// by that are removed too); gauges, summaries and cumulative metrics stay
// in md, untouched. now is the wall time of the call.
func (t *Table) Consume(md pmetric.Metrics, now time.Time) Result {
	var r Result
	ns := now.UnixNano()
	md.ResourceMetrics().RemoveIf(func(rm pmetric.ResourceMetrics) bool {
		removed := false
		rattrs := rm.Resource().Attributes()
		rw, rwOK := rattrs.Get(t.cfg.WriterAttribute)
		var res *resEntry
		rm.ScopeMetrics().RemoveIf(func(sm pmetric.ScopeMetrics) bool {
			var sc *scopeEntry
			ms := sm.Metrics()
			removedHere := false
			ms.RemoveIf(func(m pmetric.Metric) bool {
				if !isDelta(m) {
					return false
				}
				t.mergeMetric(&res, &sc, rattrs, rw, rwOK, sm, m, ns, &r)
				removedHere = true
				return true
			})
			removed = removed || removedHere
			return removedHere && ms.Len() == 0
		})
		return removed && rm.ScopeMetrics().Len() == 0
	})
	t.sweepEmpty()
	return r
}

// Merge is Consume without removing anything from md: what benchmarks use
// to feed the same batch again and again.
func (t *Table) Merge(md pmetric.Metrics, now time.Time) Result {
	var r Result
	ns := now.UnixNano()
	for _, rm := range md.ResourceMetrics().All() {
		rattrs := rm.Resource().Attributes()
		rw, rwOK := rattrs.Get(t.cfg.WriterAttribute)
		var res *resEntry
		for _, sm := range rm.ScopeMetrics().All() {
			var sc *scopeEntry
			for _, m := range sm.Metrics().All() {
				if isDelta(m) {
					t.mergeMetric(&res, &sc, rattrs, rw, rwOK, sm, m, ns, &r)
				}
			}
		}
	}
	t.sweepEmpty()
	return r
}

// mergeMetric merges the points of one delta metric, resolving its
// resource and scope entries on first use (*res, *sc cache them for the
// rest of the resource and scope).
func (t *Table) mergeMetric(res **resEntry, sc **scopeEntry, rattrs pcommon.Map, rw pcommon.Value, rwOK bool, sm pmetric.ScopeMetrics, m pmetric.Metric, now int64, r *Result) {
	if *res == nil {
		*res = t.resource(rattrs)
	}
	if *sc == nil {
		*sc = t.scope(*res, sm.Scope())
	}
	me := t.metric(*sc, m)
	t.consumeMetric(me, m, rw, rwOK, now, r)
	if len(me.streams) == 0 && !me.pending {
		me.pending = true
		t.pendingEmpty = append(t.pendingEmpty, me)
	}
}

// sweepEmpty forgets the entries created for points that all went
// elsewhere (duplicates, drops, overflow): they hold no stream. Entries
// are only ever dropped here and in Flush, never while a batch is being
// merged, so the entries a batch resolved stay valid for the whole batch.
func (t *Table) sweepEmpty() {
	for i, me := range t.pendingEmpty {
		me.pending = false
		if len(me.streams) == 0 && t.metrics[me.key] == me {
			t.dropMetric(me)
		}
		t.pendingEmpty[i] = nil
	}
	t.pendingEmpty = t.pendingEmpty[:0]
}

func (t *Table) consumeMetric(me *metricEntry, m pmetric.Metric, rw pcommon.Value, rwOK bool, now int64, r *Result) {
	switch m.Type() {
	case pmetric.MetricTypeSum:
		dps := m.Sum().DataPoints()
		for i := 0; i < dps.Len(); i++ {
			dp := dps.At(i)
			if dp.Flags().NoRecordedValue() {
				continue
			}
			if !validNumber(dp) {
				r.DroppedInvalid++
				continue
			}
			s, w, over := t.locate(me, dp.Attributes(), rw, rwOK, dp.StartTimestamp(), dp.Timestamp(), now, r)
			if s == nil {
				continue
			}
			s.sum.add(dp)
			t.merged(s, w, over, dp.StartTimestamp(), dp.Timestamp(), now, r)
		}
	case pmetric.MetricTypeHistogram:
		dps := m.Histogram().DataPoints()
		for i := 0; i < dps.Len(); i++ {
			dp := dps.At(i)
			if dp.Flags().NoRecordedValue() {
				continue
			}
			if !validHist(dp) {
				r.DroppedInvalid++
				continue
			}
			s, w, over := t.locate(me, dp.Attributes(), rw, rwOK, dp.StartTimestamp(), dp.Timestamp(), now, r)
			if s == nil {
				continue
			}
			if s.hist == nil {
				s.hist = &histState{}
			}
			if !s.hist.add(dp) {
				r.DroppedBoundsMismatch++
				continue
			}
			t.merged(s, w, over, dp.StartTimestamp(), dp.Timestamp(), now, r)
		}
	case pmetric.MetricTypeExponentialHistogram:
		dps := m.ExponentialHistogram().DataPoints()
		for i := 0; i < dps.Len(); i++ {
			dp := dps.At(i)
			if dp.Flags().NoRecordedValue() {
				continue
			}
			if !validExpo(dp) {
				r.DroppedInvalid++
				continue
			}
			s, w, over := t.locate(me, dp.Attributes(), rw, rwOK, dp.StartTimestamp(), dp.Timestamp(), now, r)
			if s == nil {
				continue
			}
			if s.expo == nil {
				s.expo = &expoState{}
			}
			s.expo.add(dp, t.maxExpo)
			t.merged(s, w, over, dp.StartTimestamp(), dp.Timestamp(), now, r)
		}
	}
}

// merged records that a point was added to s.
func (t *Table) merged(s *stream, w *writerRec, overflowed bool, start, end pcommon.Timestamp, now int64, r *Result) {
	r.Merged++
	if overflowed {
		r.Overflowed++
	}
	s.lastMerged = now
	if w == nil {
		return
	}
	if end < w.maxEnd {
		r.OutOfOrder++
	}
	w.remember(window{start, end}, now)
}

// locate finds (or creates) the stream of a point and its writer's record,
// and decides whether the point is a duplicate. It returns a nil stream
// when the point must not be merged (duplicate, or no room at all; both
// counted), and a nil writer record for overflow streams; overflowed
// tells that the point's own stream found no room.
func (t *Table) locate(me *metricEntry, attrs pcommon.Map, rw pcommon.Value, rwOK bool, start, end pcommon.Timestamp, now int64, r *Result) (s *stream, w *writerRec, overflowed bool) {
	key := t.cfg.WriterAttribute
	ah, wv, wOK := t.hs.attrsAndWriter(attrs, key)
	h := combine(me.id, ah)
	if t.testHash != nil {
		h = t.testHash(h)
	}
	for s = t.streams[h]; s != nil; s = s.next {
		if s.metric == me && equalAttrs(s.kv, attrs, key) {
			break
		}
	}
	if s == nil {
		if t.regular < t.cfg.MaxStreams {
			s = t.newStream(me, h, attrs, key, now)
			t.regular++
		} else {
			s = t.overflowStream(me, now)
			if s == nil {
				r.DroppedOverflowFull++
				return nil, nil, false
			}
			return s, nil, true
		}
	}
	if s.overflow {
		return s, nil, false
	}
	if !wOK {
		wv, wOK = rw, rwOK
	}
	w = t.writer(s, t.writerID(wv, wOK), r)
	if w.seen(window{start, end}) {
		r.Duplicates++
		return nil, nil, false
	}
	return s, w, false
}

func (t *Table) newStream(me *metricEntry, h uint64, attrs pcommon.Map, skip string, now int64) *stream {
	s := &stream{hash: h, metric: me, start: pcommon.Timestamp(now), idx: len(me.streams)}
	s.attrs, s.kv = ownAttrs(attrs, skip)
	s.next = t.streams[h]
	t.streams[h] = s
	me.streams = append(me.streams, s)
	return s
}

// overflowStream returns the overflow stream of me's metric: under a
// resource without attributes, in the same scope (name and version), with
// the single attribute otel.metric.overflow=true. A stream of that identity
// that came in from upstream (an upstream overflow series) is the same
// stream, and from now on recognises no duplicates. It returns nil when
// MaxStreams overflow streams exist already.
func (t *Table) overflowStream(me *metricEntry, now int64) *stream {
	res := t.resource(t.emptyAttrs)
	sc := t.scopeByName(res, me.key.scope.key.name, me.key.scope.key.version, me.key.scope.attrs)
	om := t.metricByKey(metricKey{scope: sc, name: me.key.name, unit: me.key.unit, typ: me.key.typ, monotonic: me.key.monotonic}, me.description)
	h := combine(om.id, t.overflowHash)
	for s := t.streams[h]; s != nil; s = s.next {
		if s.metric == om && equalAttrs(s.kv, t.overflowAttrs, "") {
			t.makeOverflow(s)
			return s
		}
	}
	if t.overflows >= t.cfg.MaxStreams {
		if len(om.streams) == 0 && !om.pending {
			om.pending = true
			t.pendingEmpty = append(t.pendingEmpty, om)
		}
		return nil
	}
	s := t.newStream(om, h, t.overflowAttrs, "", now)
	s.overflow, s.countedAsOverflow = true, true
	t.overflows++
	return s
}

func (t *Table) makeOverflow(s *stream) {
	if s.overflow {
		return
	}
	s.overflow = true
	for i := range s.writers {
		t.releaseWriter(s.writers[i].ref)
	}
	s.writers = nil
}

func (t *Table) resource(attrs pcommon.Map) *resEntry {
	key := t.cfg.WriterAttribute
	h, _ := t.hs.attrs(attrs, key)
	for e := t.resources[h]; e != nil; e = e.next {
		if equalAttrs(e.kv, attrs, key) {
			return e
		}
	}
	e := &resEntry{hash: h, idx: len(t.resList)}
	e.attrs, e.kv = ownAttrs(attrs, key)
	e.next = t.resources[h]
	t.resources[h] = e
	t.resList = append(t.resList, e)
	return e
}

func (t *Table) scope(res *resEntry, sc pcommon.InstrumentationScope) *scopeEntry {
	return t.scopeByName(res, sc.Name(), sc.Version(), sc.Attributes())
}

func (t *Table) scopeByName(res *resEntry, name, version string, attrs pcommon.Map) *scopeEntry {
	k := scopeKey{res: res, name: name, version: version}
	if e, ok := t.scopes[k]; ok {
		return e
	}
	k.name, k.version = strings.Clone(name), strings.Clone(version)
	e := &scopeEntry{key: k, attrs: pcommon.NewMap(), idx: len(res.scopes)}
	attrs.CopyTo(e.attrs)
	t.scopes[k] = e
	res.scopes = append(res.scopes, e)
	return e
}

func metricKeyOf(sc *scopeEntry, m pmetric.Metric) metricKey {
	k := metricKey{scope: sc, name: m.Name(), unit: m.Unit(), typ: m.Type()}
	if m.Type() == pmetric.MetricTypeSum {
		k.monotonic = m.Sum().IsMonotonic()
	}
	return k
}

func (t *Table) metric(sc *scopeEntry, m pmetric.Metric) *metricEntry {
	k := metricKeyOf(sc, m)
	if e, ok := t.metrics[k]; ok {
		return e
	}
	return t.metricByKey(k, m.Description())
}

func (t *Table) metricByKey(k metricKey, description string) *metricEntry {
	if e, ok := t.metrics[k]; ok {
		return e
	}
	k.name, k.unit = strings.Clone(k.name), strings.Clone(k.unit)
	t.nextID++
	e := &metricEntry{key: k, id: mix(t.nextID), description: strings.Clone(description), idx: len(k.scope.metrics)}
	t.metrics[k] = e
	k.scope.metrics = append(k.scope.metrics, e)
	return e
}

// dropStream removes s, and the entries above it left empty.
func (t *Table) dropStream(s *stream) {
	// Unlink from the hash chain.
	if head := t.streams[s.hash]; head == s {
		if s.next == nil {
			delete(t.streams, s.hash)
		} else {
			t.streams[s.hash] = s.next
		}
	} else {
		for p := head; p != nil; p = p.next {
			if p.next == s {
				p.next = s.next
				break
			}
		}
	}
	for i := range s.writers {
		t.releaseWriter(s.writers[i].ref)
	}
	if s.countedAsOverflow {
		t.overflows--
	} else {
		t.regular--
	}
	me := s.metric
	last := len(me.streams) - 1
	me.streams[s.idx] = me.streams[last]
	me.streams[s.idx].idx = s.idx
	me.streams[last] = nil
	me.streams = me.streams[:last]
	if len(me.streams) == 0 {
		t.dropMetric(me)
	}
}

func (t *Table) dropMetric(me *metricEntry) {
	delete(t.metrics, me.key)
	sc := me.key.scope
	last := len(sc.metrics) - 1
	sc.metrics[me.idx] = sc.metrics[last]
	sc.metrics[me.idx].idx = me.idx
	sc.metrics[last] = nil
	sc.metrics = sc.metrics[:last]
	if len(sc.metrics) > 0 {
		return
	}
	delete(t.scopes, sc.key)
	res := sc.key.res
	last = len(res.scopes) - 1
	res.scopes[sc.idx] = res.scopes[last]
	res.scopes[sc.idx].idx = sc.idx
	res.scopes[last] = nil
	res.scopes = res.scopes[:last]
	if len(res.scopes) > 0 {
		return
	}
	if head := t.resources[res.hash]; head == res {
		if res.next == nil {
			delete(t.resources, res.hash)
		} else {
			t.resources[res.hash] = res.next
		}
	} else {
		for p := head; p != nil; p = p.next {
			if p.next == res {
				p.next = res.next
				break
			}
		}
	}
	last = len(t.resList) - 1
	t.resList[res.idx] = t.resList[last]
	t.resList[res.idx].idx = res.idx
	t.resList[last] = nil
	t.resList = t.resList[:last]
}
