package redmetricsconnector // import "github.com/otelcsp/otelcsp/connector/redmetricsconnector"

import (
	"context"
	"hash/maphash"
	"math/bits"
	"runtime"
	"sync"
	"sync/atomic"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/connector"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/otelcsp/otelcsp/connector/redmetricsconnector/internal/metadata"
	"github.com/otelcsp/otelcsp/internal/clock"
	"github.com/otelcsp/otelcsp/internal/ratelog"
)

type connectorImp struct {
	cfg    *Config
	logger *zap.Logger
	tb     *metadata.TelemetryBuilder
	// own labels every metric of tb with the connector's ID, as core's
	// helpers label theirs: without it two redmetrics connectors of one
	// collector would add up into one series (the gate that would add it,
	// telemetry.newPipelineTelemetry, is off at v0.161.0). Built once.
	own   metric.MeasurementOption
	next  consumer.Metrics
	clock Clock
	seed  maphash.Seed

	spanPlan  *plan
	eventPlan *plan
	scopes    map[string]struct{}

	// Histogram settings resolved once.
	histDisabled bool
	expo         bool
	expoMax      int32
	bounds       []float64
	divisor      float64

	delta      bool
	maxEx      int
	limit      int64
	expiration int64 // ns of monotonic time; 0 = never

	// instanceID is the value of collector.instance.id on every point
	// (see collectorInstanceID). It is constant for the connector, so it
	// is part of every series' identity without being hashed: one
	// connector's table only ever holds series of one writer.
	instanceID string

	// testHash replaces keyHash in tests that force every series onto
	// one hash to prove lookups compare dimension values, not just hashes.
	testHash func(res uint64, key []byte) uint64

	res    *resources
	shards []shard
	// primary is held by the one call that updates the shards directly;
	// concurrent calls aggregate in lanes (lanes.go).
	primary  sync.Mutex
	lanes    []lane
	laneTurn atomic.Uint32
	shift    uint
	live     atomic.Int64 // live series, the overflow series excluded

	overflowMu sync.Mutex
	overflow   [numFamilies]*series // one per family, created on first overflow

	// sg is the service graph, nil unless service_graph.enabled.
	sg *serviceGraph

	scratch sync.Pool

	flushMu     sync.Mutex
	lastFlush   int64 // unix ns (wall), start time of the next delta points
	lastSnaps   int   // sizes of the previous flush's snapshot: capacity hints
	lastSnapU64 int

	flushes clock.Periodic

	// refusals paces the log of flushes the metrics pipeline refused.
	refusals *ratelog.Limiter
}

// stamp is one reading of the clock: wall time for data point timestamps,
// monotonic time for series ages.
type stamp struct {
	wall int64 // unix ns
	mono int64 // ns since the clock's monotonic origin
}

func (c *connectorImp) stamp() stamp {
	return stamp{wall: c.clock.Now().UnixNano(), mono: int64(c.clock.Monotonic())}
}

type scratch struct {
	key []byte // the key of the span's (or event's) series
	sg  sgScratch
}

func newConnector(set connector.Settings, cfg *Config, next consumer.Metrics, clock Clock) (*connectorImp, error) {
	tb, err := metadata.NewTelemetryBuilder(set.TelemetrySettings)
	if err != nil {
		return nil, err
	}
	c := &connectorImp{
		cfg:    cfg,
		logger: set.Logger,
		refusals: ratelog.New(refusalLogEvery, zapcore.ErrorLevel,
			"Metrics pipeline refused RED metrics; the data points are dropped (the spans were not failed)", "data_points"),
		tb:           tb,
		own:          metric.WithAttributeSet(attribute.NewSet(attribute.String("connector", set.ID.String()))),
		next:         next,
		clock:        clock,
		seed:         maphash.MakeSeed(),
		spanPlan:     newSpanPlan(cfg),
		histDisabled: cfg.Histogram.Disable,
		expo:         cfg.Histogram.Exponential != nil,
		expoMax:      cfg.expoMaxSize(),
		bounds:       cfg.bounds(),
		divisor:      cfg.unitDivisor(),
		delta:        cfg.delta(),
		limit:        int64(cfg.cardinalityLimit()),
		expiration:   int64(cfg.expiration()),
		lastFlush:    clock.Now().UnixNano(),
		instanceID:   collectorInstanceID(set.Resource),
	}
	if cfg.Exemplars.Enabled {
		c.maxEx = cfg.Exemplars.MaxPerDataPoint
	}
	if cfg.Events.Enabled {
		c.eventPlan = newEventPlan(cfg)
	}
	if len(cfg.IncludeInstrumentationScope) > 0 {
		c.scopes = make(map[string]struct{}, len(cfg.IncludeInstrumentationScope))
		for _, s := range cfg.IncludeInstrumentationScope {
			c.scopes[s] = struct{}{}
		}
	}
	// Each resource holding a series holds at least one, so live series
	// bound the resources worth keeping: the table (and its cache) is
	// bounded by the same limit, at every moment, not only after a flush.
	c.res = newResources(c.seed, cfg.ResourceMetricsKeyAttributes, cfg.cardinalityLimit())

	// Enough shards that concurrent callers rarely share one: 8 per core,
	// rounded up to a power of two so the top hash bits pick the shard.
	n := 8 * runtime.GOMAXPROCS(0)
	shardBits := bits.Len(uint(n - 1))
	c.shards = make([]shard, 1<<shardBits)
	c.shift = uint(64 - shardBits)
	c.lanes = newLanes()

	if cfg.ServiceGraph.Enabled {
		c.sg = newServiceGraph(cfg, c.seed)
	}
	c.scratch.New = func() any {
		sc := &scratch{key: make([]byte, 0, 256)}
		if c.sg != nil {
			sc.sg = c.sg.newScratch()
		}
		return sc
	}
	return c, nil
}

func (c *connectorImp) Capabilities() consumer.Capabilities {
	return consumer.Capabilities{MutatesData: false}
}

// Start begins the flush loop.
func (c *connectorImp) Start(context.Context, component.Host) error {
	c.flushes.Start(c.clock, c.cfg.MetricsFlushInterval, func() { c.flush(context.Background()) })
	return nil
}

// Shutdown stops the flush loop and flushes what was aggregated since the
// last tick, so a clean restart loses no data. Safe to call twice or
// without Start.
func (c *connectorImp) Shutdown(ctx context.Context) error {
	first, started := c.flushes.Stop()
	if !first {
		return nil
	}
	if started {
		c.flushAt(ctx, true)
	}
	c.tb.Shutdown()
	return nil
}

// ConsumeTraces aggregates spans into series. It never fails: aggregation
// cannot go wrong for well-formed pdata, and the metrics are sent at flush,
// where a refusal by the metrics pipeline is counted and logged but never
// reaches the traces pipeline (failing the spans would make the sender
// retry them, delivering the traces twice and counting them twice).
func (c *connectorImp) ConsumeTraces(ctx context.Context, td ptrace.Traces) error {
	now := c.stamp()
	ln := c.acquireLane()
	sc := c.scratch.Get().(*scratch)
	var skipped, overflowed, created int64
	var last *resource
	var sgs sgStats
	g := c.sg
	if g != nil {
		// Spans that waited past the TTL become unpaired (and virtual
		// node edges) before this batch can pair anything.
		c.expireDue(g, &sc.sg, now, &sgs)
	}

	rss := td.ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		rs := rss.At(i)
		rattrs := rs.Resource().Attributes()
		svc, ok := rattrs.Get(serviceNameKey)
		if !ok {
			// Like contrib: a span without a service is not attributable.
			for j := 0; j < rs.ScopeSpans().Len(); j++ {
				skipped += int64(rs.ScopeSpans().At(j).Spans().Len())
			}
			continue
		}
		// Consecutive ResourceSpans often carry the same resource (a batch
		// split by trace keeps each service's spans apart): compare with the
		// previous one before hashing. A resource swept meanwhile is
		// replaced by acquire when a series is created. A nil resource
		// (the table is full) sends the spans to the overflow series.
		if last == nil || !c.res.sameIdentity(last, rattrs) {
			last = c.res.get(rattrs)
		}
		res := last
		sctx := spanCtx{service: svc.Str(), resAttrs: rattrs}
		if g != nil {
			sctx.svcHash = maphash.String(c.seed, sctx.service)
			// Without graph dimensions a side is its service alone:
			// its hash is the resource's.
			sctx.sideH = sideHash(c.seed, sctx.svcHash, nil)
		}
		sss := rs.ScopeSpans()
		for j := 0; j < sss.Len(); j++ {
			ss := sss.At(j)
			if c.scopes != nil {
				_, sctx.scopeOK = c.scopes[ss.Scope().Name()]
				sctx.scopeName, sctx.scopeVer = ss.Scope().Name(), ss.Scope().Version()
			}
			spans := ss.Spans()
			for k := 0; k < spans.Len(); k++ {
				span := spans.At(k)
				sctx.span = span
				sctx.hasEvent = false
				w := adjustedCount(span.TraceState().AsRaw(), span.SpanID())
				dur := 0.0
				if st, en := span.StartTimestamp(), span.EndTimestamp(); en > st {
					dur = float64(en-st) / c.divisor
				}
				ex := c.maxEx > 0 && !span.TraceID().IsEmpty()
				sc.key = c.spanPlan.appendKey(&sctx, familySpan, sc.key[:0])
				var o, cr int64
				if ln == nil {
					res, o, cr = c.record(res, familySpan, sc.key, w, dur, ex, span, now)
				} else {
					res, o, cr = c.recordLane(ln, res, familySpan, sc.key, w, dur, ex, span, now)
				}
				overflowed += o
				created += cr
				if g != nil {
					// Server, client, producer and consumer spans are
					// one side of a call.
					if k := span.Kind(); k >= ptrace.SpanKindServer && k <= ptrace.SpanKindConsumer {
						c.onSpan(g, &sc.sg, &sctx, span, w, now, &sgs)
					}
				}

				if c.eventPlan != nil {
					evs := span.Events()
					for e := 0; e < evs.Len(); e++ {
						sctx.hasEvent = true
						sctx.eventAttrs = evs.At(e).Attributes()
						sc.key = c.eventPlan.appendKey(&sctx, familyEvent, sc.key[:0])
						if ln == nil {
							res, o, cr = c.record(res, familyEvent, sc.key, w, dur, ex, span, now)
						} else {
							res, o, cr = c.recordLane(ln, res, familyEvent, sc.key, w, dur, ex, span, now)
						}
						overflowed += o
						created += cr
					}
				}
			}
		}
		last = res
	}
	c.releaseLane(ln)
	if g != nil {
		c.pairLeftovers(g, &sc.sg, now, &sgs)
		c.mergeLocal(&sc.sg, now, &sgs)
	}
	c.scratch.Put(sc)
	overflowed += sgs.overflowed
	created += sgs.created

	// Own metrics once per batch, not per span.
	if skipped > 0 {
		c.tb.RedmetricsSpansSkipped.Add(ctx, skipped, c.own)
	}
	if overflowed > 0 {
		c.tb.RedmetricsSpansOverflowed.Add(ctx, overflowed, c.own)
	}
	if created > 0 {
		c.tb.RedmetricsSeriesCreated.Add(ctx, created, c.own)
	}
	return nil
}

// record finds (or creates) the series of key and adds one span to it. It
// returns the resource to use for the next spans (a new one if res was
// removed meanwhile), 1 if the span went to the overflow series, and 1 if a
// series was created.
func (c *connectorImp) record(res *resource, family uint8, key []byte, w uint64, dur float64, ex bool, span ptrace.Span, now stamp) (*resource, int64, int64) {
	if res == nil {
		// The resource table is full: like a series past the limit.
		c.recordOverflow(family, w, dur, ex, span, now)
		return nil, 1, 0
	}
	// hash and findOrCreate written out: this is the per-span path,
	// neither call is inlined, and calling them cost 2.2 % more
	// instructions a span (1,130 → 1,154 in BenchmarkConsumeTraces).
	h := keyHash(c.seed, res.hash, key)
	if c.testHash != nil {
		h = c.testHash(res.hash, key)
	}
	sh := &c.shards[h>>c.shift]
	sh.mu.Lock()
	s := sh.t.find(h, res, unsafeString(key))
	var created int64
	if s == nil {
		if s, created = c.create(sh, h, res, family, key, now); s == nil {
			sh.mu.Unlock()
			c.recordOverflow(family, w, dur, ex, span, now)
			return res, 1, 0
		}
	}
	c.update(s, w, dur, ex, span, now)
	sh.mu.Unlock()
	return s.res, 0, created
}

// hash is the series hash of key under resource res.
func (c *connectorImp) hash(res *resource, key []byte) uint64 {
	if c.testHash != nil {
		return c.testHash(res.hash, key)
	}
	return keyHash(c.seed, res.hash, key)
}

// findOrCreate returns the series of key in shard sh (created if absent),
// and 1 if it was created; nil when cardinality_limit is reached. Caller
// holds sh's lock.
func (c *connectorImp) findOrCreate(sh *shard, h uint64, res *resource, family uint8, key []byte, now stamp) (*series, int64) {
	if s := sh.t.find(h, res, unsafeString(key)); s != nil {
		return s, 0
	}
	return c.create(sh, h, res, family, key, now)
}

// recordOverflow adds one span to the family's overflow series.
func (c *connectorImp) recordOverflow(family uint8, w uint64, dur float64, ex bool, span ptrace.Span, now stamp) {
	c.overflowMu.Lock()
	o := c.overflow[family]
	if o == nil {
		o = c.newSeries(nil, family, "", now)
		c.overflow[family] = o
	}
	c.update(o, w, dur, ex, span, now)
	c.overflowMu.Unlock()
}

// create makes a new series under the shard lock, or returns nil when the
// cardinality limit is reached.
func (c *connectorImp) create(sh *shard, h uint64, res *resource, family uint8, key []byte, now stamp) (*series, int64) {
	if !c.reserve() {
		return nil, 0
	}
	if r := c.res.acquire(res); r != res {
		// The resource was swept between lookup and now; the live one may
		// already hold this series, or the table may have filled up.
		if r == nil {
			c.live.Add(-1)
			return nil, 0
		}
		if s := sh.t.find(h, r, unsafeString(key)); s != nil {
			c.res.release(r)
			c.live.Add(-1)
			return s, 0
		}
		res = r
	}
	s := c.newSeries(res, family, unsafeString(key), now)
	sh.t.insert(h, s)
	return s, 1
}

// reserve counts one more live series, or reports that cardinality_limit
// is reached.
func (c *connectorImp) reserve() bool {
	// Under a flood at the limit, the plain load keeps overflowing spans
	// from bouncing the shared counter's cache line with two writes each.
	if c.limit > 0 && c.live.Load() >= c.limit {
		return false
	}
	if n := c.live.Add(1); c.limit > 0 && n > c.limit {
		c.live.Add(-1)
		return false
	}
	return true
}
