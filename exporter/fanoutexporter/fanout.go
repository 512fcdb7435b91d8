package fanoutexporter

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"

	"github.com/otelcsp/otelcsp/exporter/fanoutexporter/internal/metadata"
	"github.com/otelcsp/otelcsp/extension/breakerextension"
)

var (
	outcomeSuccess = metric.WithAttributeSet(attribute.NewSet(attribute.String("outcome", "success")))
	outcomeFailure = metric.WithAttributeSet(attribute.NewSet(attribute.String("outcome", "failure")))
)

// signalOps adapts one pdata signal (traces, metrics, logs) to the fanout.
type signalOps[T any] struct {
	// newSplit makes a splitter for n backends.
	newSplit func(n int) splitter[T]
	count    func(T) int
	// moveAll moves every item of src to the end of dst.
	moveAll func(src, dst T)
	empty   func() T
	// withData wraps err with the items it concerns, so that a retry
	// resends only those.
	withData func(err error, data T) error
	// newSub creates the sub-exporter of one backend.
	newSub func(ctx context.Context, set exporter.Settings, endpoint string) (component.Component, func(context.Context, T) error, error)
}

// splitter moves items into one part per backend, plus a last part for
// items no backend may take. Its parts are valid until the next add.
// choose picks the backend for a routing key's hash; weight is how many
// items (spans, log records, data points) that choice moves, for the
// rerouted count (0 for a choice that only groups data points).
type splitter[T any] interface {
	add(data T, choose func(h uint64, weight int) int)
	finish() []T
}

// routingState is one backend set; the data path loads it atomically and
// never waits for a change to the set.
type routingState[T any] struct {
	ring *ring
	// backends are the ring's, in its order, then those that left the set
	// but still take the keys they had during a handover.
	backends []*backend[T]
	splits   sync.Pool // splitters sized for this set
	handover *handoverState
}

func (st *routingState[T]) split(ops *signalOps[T]) splitter[T] {
	if s, ok := st.splits.Get().(splitter[T]); ok {
		return s
	}
	return ops.newSplit(len(st.backends))
}

// fanout routes one signal to the backends.
type fanout[T any] struct {
	cfg       *Config
	set       exporter.Settings
	ops       signalOps[T]
	telemetry *metadata.TelemetryBuilder
	logger    *zap.Logger

	state atomic.Pointer[routingState[T]]

	drain  *drainState
	logs   pushLogs
	recent *recentKeys // with handover only
	// handoverTimer ends the current handover; guarded by mu.
	handoverTimer *time.Timer

	mu       sync.Mutex // serialises changes to the backend set
	host     component.Host
	breakers breakerextension.Provider
	resolver resolver
	started  bool
}

func newFanout[T any](set exporter.Settings, cfg *Config, ops signalOps[T]) (*fanout[T], error) {
	tb, err := metadata.NewTelemetryBuilder(set.TelemetrySettings)
	if err != nil {
		return nil, err
	}
	f := &fanout[T]{
		cfg: cfg, set: set, ops: ops, telemetry: tb, logger: set.Logger,
		drain: newDrainState(), logs: newPushLogs(),
	}
	if cfg.Handover > 0 {
		f.recent = newRecentKeys()
	}
	f.state.Store(&routingState[T]{ring: newRing(nil)})
	return f, nil
}

func (f *fanout[T]) start(ctx context.Context, host component.Host) error {
	f.mu.Lock()
	f.host = host
	f.started = true
	if f.cfg.Breaker != nil {
		p, err := breakerextension.FromHost(host, *f.cfg.Breaker)
		if err != nil {
			f.mu.Unlock()
			return fmt.Errorf(`"breaker": %w`, err)
		}
		f.breakers = p
	}
	f.mu.Unlock()

	if err := f.registerGauges(); err != nil {
		return err
	}
	r, err := newResolver(f.cfg.Resolver, resolverHooks{
		logger: f.logger,
		apply:  f.onResolve,
		report: func(ok bool) {
			outcome := outcomeSuccess
			if !ok {
				outcome = outcomeFailure
			}
			f.telemetry.FanoutResolverUpdates.Add(context.Background(), 1, outcome)
		},
	})
	if err != nil {
		return err
	}
	f.mu.Lock()
	f.resolver = r
	f.mu.Unlock()
	return r.start(ctx)
}

func (f *fanout[T]) registerGauges() error {
	errs := []error{
		f.telemetry.RegisterFanoutBackendsCallback(func(_ context.Context, o metric.Int64Observer) error {
			o.Observe(int64(f.state.Load().ring.size()))
			return nil
		}),
		f.telemetry.RegisterFanoutBackendsEjectedCallback(func(_ context.Context, o metric.Int64Observer) error {
			n := 0
			for _, b := range f.state.Load().backends {
				if b.ejected() {
					n++
				}
			}
			o.Observe(int64(n))
			return nil
		}),
		f.telemetry.RegisterFanoutLoadImbalanceCallback(func(_ context.Context, o metric.Float64Observer) error {
			if ratio, ok := imbalance(f.state.Load().backends); ok {
				o.Observe(ratio)
			}
			return nil
		}),
	}
	return errors.Join(errs...)
}

// imbalance is the busiest backend's item count over the mean.
func imbalance[T any](backends []*backend[T]) (float64, bool) {
	var total, busiest int64
	for _, b := range backends {
		n := b.sent.Load()
		total += n
		busiest = max(busiest, n)
	}
	if total == 0 {
		return 0, false
	}
	return float64(busiest) * float64(len(backends)) / float64(total), true
}

// beginDrain is called when the collector starts shutting the exporter
// down, before its queue drains: from then on open breakers no longer keep
// data from its owners, and drain_timeout later what is left is given up.
func (f *fanout[T]) beginDrain() { f.drain.begin(f.cfg.DrainTimeout) }

func (f *fanout[T]) shutdown(ctx context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.drain.stop()
	if n := f.drain.leftover.Load(); n > 0 {
		where := "dropped (in-memory queue)"
		if q := f.cfg.QueueConfig.Get(); q != nil && q.StorageID != nil {
			where = "kept in the persistent queue for the next start"
		}
		f.logger.Error("drain_timeout ran out at shutdown; items were not delivered",
			zap.Int64("items", n), zap.String("outcome", where), zap.Duration("drain_timeout", f.cfg.DrainTimeout))
	}
	var errs []error
	if f.resolver != nil {
		errs = append(errs, f.resolver.shutdown(ctx))
		f.resolver = nil
	}
	if f.handoverTimer != nil {
		f.handoverTimer.Stop()
	}
	old := f.state.Swap(&routingState[T]{ring: newRing(nil)})
	for _, b := range old.backends {
		errs = append(errs, b.close(ctx))
	}
	f.telemetry.Shutdown()
	f.started = false
	return errors.Join(errs...)
}

// onResolve applies a new backend set: backends that stay keep their
// sub-exporter; new ones are created and started before the set is
// swapped in; removed ones get no new data and are shut down once their
// sends in flight finish (those that fail are re-routed by their senders).
// With handover, removed ones first keep the keys they had until the
// handover ends.
func (f *fanout[T]) onResolve(ctx context.Context, specs []backendSpec) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.started {
		return
	}
	old := f.state.Load()
	existing := make(map[string]*backend[T], len(old.backends))
	for _, b := range old.backends {
		existing[b.endpoint] = b
	}
	next := &routingState[T]{}
	var kept []backendSpec
	for _, s := range specs {
		if b, ok := existing[s.endpoint]; ok {
			delete(existing, s.endpoint)
			b.weight = s.weight
			b.sent.Store(0)
			next.backends = append(next.backends, b)
			kept = append(kept, s)
			continue
		}
		b, err := f.newBackend(ctx, s)
		if err != nil {
			f.logger.Error("Cannot start the exporter of a backend; leaving it out of the backend set",
				zap.String("backend", s.endpoint), zap.Error(err))
			continue
		}
		next.backends = append(next.backends, b)
		kept = append(kept, s)
	}
	next.ring = newRing(kept)
	changed := len(existing) > 0 || len(kept) != old.ring.size()
	if changed && f.recent != nil && old.ring.size() > 0 {
		f.beginHandoverLocked(old, next, existing)
	}
	f.state.Store(next)
	if changed {
		f.logger.Info("Backend set changed", zap.Strings("backends", endpointsOf(next.backends[:next.ring.size()])))
	}
	f.closeAll(ctx, existing)
}

// beginHandoverLocked keeps old's owners in next for the handover: old's
// ring backends that left stay in next.backends, after the ring's, until
// endHandover.
func (f *fanout[T]) beginHandoverLocked(old, next *routingState[T], removed map[string]*backend[T]) {
	index := make(map[*backend[T]]int, len(next.backends))
	for i, b := range next.backends {
		index[b] = i
	}
	ho := &handoverState{prev: old.ring, prevIndex: make([]int, old.ring.size()), at: timeUnits(now())}
	for i, b := range old.backends[:old.ring.size()] {
		j, ok := index[b]
		if !ok {
			delete(removed, b.endpoint) // closed when the handover ends
			j = len(next.backends)
			next.backends = append(next.backends, b)
			index[b] = j
		}
		ho.prevIndex[i] = j
	}
	ho.until = now() + f.cfg.Handover
	next.handover = ho
	if f.handoverTimer != nil {
		f.handoverTimer.Stop()
	}
	f.handoverTimer = time.AfterFunc(f.cfg.Handover, func() { f.endHandover(next) })
}

// endHandover drops the handover of st, if st is still the current set:
// keys move to their new owners, and backends that left are shut down.
func (f *fanout[T]) endHandover(st *routingState[T]) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.started || f.state.Load() != st {
		return
	}
	n := st.ring.size()
	next := &routingState[T]{ring: st.ring, backends: st.backends[:n:n]}
	f.state.Store(next)
	left := make(map[string]*backend[T], len(st.backends)-n)
	for _, b := range st.backends[n:] {
		left[b.endpoint] = b
	}
	f.closeAll(context.Background(), left)
}

func (f *fanout[T]) closeAll(ctx context.Context, bs map[string]*backend[T]) {
	for _, b := range bs {
		if err := b.close(ctx); err != nil {
			f.logger.Warn("Shutting down a removed backend failed", zap.String("backend", b.endpoint), zap.Error(err))
		}
	}
}

func endpointsOf[T any](bs []*backend[T]) []string {
	out := make([]string, len(bs))
	for i, b := range bs {
		out[i] = b.endpoint
	}
	return out
}

func (f *fanout[T]) newBackend(ctx context.Context, s backendSpec) (*backend[T], error) {
	set := f.set
	set.Logger = f.logger.With(zap.String("backend", s.endpoint))
	set = backendSettings(set)
	exp, send, err := f.ops.newSub(ctx, set, s.endpoint)
	if err != nil {
		return nil, err
	}
	if err := exp.Start(ctx, reconnectHost{f.host}); err != nil {
		return nil, errors.Join(err, exp.Shutdown(ctx))
	}
	b := newBackend(s.endpoint, s.weight, exp, send)
	if f.breakers != nil {
		b.breaker = f.breakers.Breaker(s.endpoint)
	}
	return b, nil
}

// route makes one routing pass: it splits data into one batch per backend,
// sends the batches in parallel, and re-routes what a backend failed to take
// to the next backend in each key's preference order, until every item is
// delivered or no backend is left for it. It returns the items no backend
// took (left, when n > 0) and, for items the backends refused as invalid, a
// permanent error. While draining, open breakers do not keep data from its
// owners.
func (f *fanout[T]) route(ctx context.Context, data T) (left T, n int, perr error) {
	st := f.state.Load()
	nb := len(st.backends)
	if nb == 0 {
		return data, f.ops.count(data), nil
	}

	excluded := make([]bool, nb)
	ejected := 0
	for i, b := range st.backends {
		if b.ejected() {
			excluded[i] = true
			if i < st.ring.size() {
				ejected++
			}
		}
	}
	// Panic mode: with too many backends ejected, send to the owners anyway.
	// While draining at shutdown, too: breakers opened because every backend
	// is merely slow must not turn the drain into a drop.
	force := f.drain.started() || (ejected > 0 && ejected*100 > st.ring.size()*f.cfg.MaxEjectedPercent)
	if force {
		clear(excluded)
	}

	rerouted := make([]int64, nb)
	allowed := func(i int) bool { return i < st.ring.size() && !excluded[i] }
	ho := f.handoverRouter(st)
	choose := func(h uint64, weight int) int {
		if p := ho.previousOwner(h); p >= 0 && !excluded[p] {
			return p
		}
		slot := st.ring.slot(h)
		if o := st.ring.owner(slot); !excluded[o] {
			return o
		}
		c := st.ring.pick(slot, allowed)
		if c >= 0 {
			rerouted[c] += int64(weight)
		}
		return c
	}

	var (
		leftover  T
		hasLeft   bool
		permanent []error
		errs      = make([]error, nb)
		sources   = []T{data}
	)
	// Each round excludes at least one more backend, so there are at most nb+1.
	for round := 0; len(sources) > 0 && round <= nb; round++ {
		sp := st.split(&f.ops)
		for _, src := range sources {
			sp.add(src, choose)
		}
		parts := sp.finish()
		sources = sources[:0]

		var wg sync.WaitGroup
		for i := range nb {
			errs[i] = nil
			if f.ops.count(parts[i]) == 0 {
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[i] = st.backends[i].consume(ctx, parts[i], force)
			}()
		}
		wg.Wait()

		for i, b := range st.backends {
			items := int64(f.ops.count(parts[i]))
			if items == 0 {
				continue
			}
			if errs[i] == nil {
				f.telemetry.FanoutItemsSent.Add(ctx, items, b.attrs)
				b.sent.Add(items)
				if rerouted[i] > 0 {
					f.telemetry.FanoutItemsRerouted.Add(ctx, rerouted[i], b.attrs)
				}
				continue
			}
			f.telemetry.FanoutItemsFailed.Add(ctx, items, b.attrs)
			if consumererror.IsPermanent(errs[i]) {
				// The data itself was refused: no other backend would take it.
				permanent = append(permanent, fmt.Errorf("backend %s: %w", b.endpoint, errs[i]))
				continue
			}
			b.failures.Note(f.logger, now(), items, zap.String("backend", b.endpoint), zap.Error(errs[i]))
			excluded[i] = true
			failed := f.ops.empty()
			f.ops.moveAll(parts[i], failed)
			sources = append(sources, failed)
		}
		clear(rerouted)
		if last := parts[nb]; f.ops.count(last) > 0 {
			if !hasLeft {
				leftover, hasLeft = f.ops.empty(), true
			}
			f.ops.moveAll(last, leftover)
		}
		st.splits.Put(sp)
	}
	for _, src := range sources { // only if the round bound was hit
		if !hasLeft {
			leftover, hasLeft = f.ops.empty(), true
		}
		f.ops.moveAll(src, leftover)
	}

	var perrs error
	if len(permanent) > 0 {
		perrs = consumererror.NewPermanent(errors.Join(permanent...))
	}
	if hasLeft {
		if n := f.ops.count(leftover); n > 0 {
			if perrs != nil {
				f.logger.Warn("Backends refused data as invalid", zap.Error(perrs))
			}
			return leftover, n, nil
		}
	}
	return left, 0, perrs
}
