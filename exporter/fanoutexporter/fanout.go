package fanoutexporter

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"

	"github.com/otelcsp/otelcsp/extension/breakerextension"
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

// fanout routes one signal to the backends. It wires the pieces together
// and runs their lifecycle: the resolver feeds the backend set, push
// (delivery.go) hands each batch to a router over the current set and
// waits or refuses when no backend took it.
type fanout[T any] struct {
	cfg       *Config
	ops       signalOps[T]
	telemetry *fanoutTelemetry
	logger    *zap.Logger

	backends *backendSet[T]
	drain    *drainState
	logs     pushLogs
	recent   *recentKeys // with handover only

	mu       sync.Mutex // guards resolver
	resolver resolver
}

func newFanout[T any](set exporter.Settings, cfg *Config, ops signalOps[T]) (*fanout[T], error) {
	tel, err := newFanoutTelemetry(set.TelemetrySettings, set.ID)
	if err != nil {
		return nil, err
	}
	f := &fanout[T]{
		cfg: cfg, ops: ops, telemetry: tel, logger: set.Logger,
		backends: newBackendSet(set, &ops, cfg.Handover),
		drain:    newDrainState(), logs: newPushLogs(),
	}
	if cfg.Handover > 0 {
		f.recent = newRecentKeys()
	}
	return f, nil
}

func (f *fanout[T]) start(ctx context.Context, host component.Host) error {
	var breakers breakerextension.Provider
	if f.cfg.Breaker != nil {
		p, err := breakerextension.FromHost(host, *f.cfg.Breaker)
		if err != nil {
			return fmt.Errorf(`"breaker": %w`, err)
		}
		breakers = p
	}
	f.backends.openWith(host, breakers)

	if err := f.registerGauges(); err != nil {
		return err
	}
	r, err := newResolver(f.cfg.Resolver, resolverHooks{
		logger: f.logger,
		apply:  f.backends.apply,
		report: f.telemetry.resolved,
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
			o.Observe(int64(f.backends.current().ring.size()), f.telemetry.own)
			return nil
		}),
		f.telemetry.RegisterFanoutBackendsEjectedCallback(func(_ context.Context, o metric.Int64Observer) error {
			n := 0
			for _, b := range f.backends.current().backends {
				if b.ejected() {
					n++
				}
			}
			o.Observe(int64(n), f.telemetry.own)
			return nil
		}),
		f.telemetry.RegisterFanoutLoadImbalanceCallback(func(_ context.Context, o metric.Float64Observer) error {
			if ratio, ok := imbalance(f.backends.current().backends); ok {
				o.Observe(ratio, f.telemetry.own)
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
	errs = append(errs, f.backends.close(ctx))
	f.telemetry.Shutdown()
	return errors.Join(errs...)
}

// route makes one routing pass over the current backend set (see router):
// it returns the items no backend took (left, when n > 0) and, for items
// the backends refused as invalid, a permanent error.
func (f *fanout[T]) route(ctx context.Context, data T) (left T, n int, perr error) {
	st := f.backends.current()
	if len(st.backends) == 0 {
		return data, f.ops.count(data), nil
	}
	r := f.router(st)
	defer st.routers.Put(r)
	return r.route(ctx, data, f.drain.started(), f.handoverRouter(st))
}
