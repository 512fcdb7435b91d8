package fanoutexporter

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/exporter"
	"go.uber.org/zap"

	"github.com/otelcsp/otelcsp/extension/breakerextension"
)

// routingState is one backend set; the data path loads it atomically and
// never waits for a change to the set.
type routingState[T any] struct {
	ring *ring
	// backends are the ring's, in its order, then those that left the set
	// but still take the keys they had during a handover.
	backends []*backend[T]
	handover *handoverState
	routers  sync.Pool // routers sized for this set
}

func emptyState[T any]() *routingState[T] { return &routingState[T]{ring: newRing(nil)} }

// backendSet keeps the current backend set and changes it: it diffs a
// resolver's answer against the set, starts the exporters of the backends
// that join, swaps the new set in, and closes the backends that left once
// their sends in flight are done (or, with handover, once the handover
// ends).
type backendSet[T any] struct {
	settings exporter.Settings
	logger   *zap.Logger
	newSub   func(ctx context.Context, set exporter.Settings, endpoint string) (component.Component, func(context.Context, T) error, error)
	handover time.Duration // 0: off

	state atomic.Pointer[routingState[T]]

	mu       sync.Mutex // serialises changes to the set
	open     bool       // between open and close
	host     component.Host
	breakers breakerextension.Provider // nil without a breaker extension
	// handoverTimer ends the current handover.
	handoverTimer *time.Timer
}

func newBackendSet[T any](set exporter.Settings, ops *signalOps[T], handover time.Duration) *backendSet[T] {
	s := &backendSet[T]{settings: set, logger: set.Logger, newSub: ops.newSub, handover: handover}
	s.state.Store(emptyState[T]())
	return s
}

// current is the set the data path routes over.
func (s *backendSet[T]) current() *routingState[T] { return s.state.Load() }

// openWith lets apply start backends, with the host their exporters start in
// and the breakers they are guarded by.
func (s *backendSet[T]) openWith(host component.Host, breakers breakerextension.Provider) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.host, s.breakers, s.open = host, breakers, true
}

// apply makes specs the backend set: backends that stay keep their
// sub-exporter; new ones are created and started before the set is
// swapped in; removed ones get no new data and are shut down once their
// sends in flight finish (those that fail are re-routed by their senders).
// With handover, removed ones first keep the keys they had until the
// handover ends.
func (s *backendSet[T]) apply(ctx context.Context, specs []backendSpec) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.open {
		return
	}
	old := s.state.Load()
	next, removed := s.diff(ctx, old, specs)
	changed := len(removed) > 0 || next.ring.size() != old.ring.size()
	if changed && s.handover > 0 && old.ring.size() > 0 {
		s.beginHandoverLocked(old, next, removed)
	}
	s.state.Store(next)
	if changed {
		s.logger.Info("Backend set changed", zap.Strings("backends", endpointsOf(next.backends[:next.ring.size()])))
	}
	s.closeAll(ctx, removed)
}

// diff builds the set of specs out of old's backends and new ones, and
// returns it with old's backends that are not in it.
func (s *backendSet[T]) diff(ctx context.Context, old *routingState[T], specs []backendSpec) (*routingState[T], map[string]*backend[T]) {
	removed := make(map[string]*backend[T], len(old.backends))
	for _, b := range old.backends {
		removed[b.endpoint] = b
	}
	next := &routingState[T]{}
	var kept []backendSpec
	for _, spec := range specs {
		if b, ok := removed[spec.endpoint]; ok {
			delete(removed, spec.endpoint)
			b.weight = spec.weight
			b.sent.Store(0)
			next.backends = append(next.backends, b)
			kept = append(kept, spec)
			continue
		}
		b, err := s.start(ctx, spec)
		if err != nil {
			s.logger.Error("Cannot start the exporter of a backend; leaving it out of the backend set",
				zap.String("backend", spec.endpoint), zap.Error(err))
			continue
		}
		next.backends = append(next.backends, b)
		kept = append(kept, spec)
	}
	next.ring = newRing(kept)
	return next, removed
}

// start creates and starts the exporter of a backend joining the set.
func (s *backendSet[T]) start(ctx context.Context, spec backendSpec) (*backend[T], error) {
	set := s.settings
	set.Logger = s.logger.With(zap.String("backend", spec.endpoint))
	set = backendSettings(set)
	exp, send, err := s.newSub(ctx, set, spec.endpoint)
	if err != nil {
		return nil, err
	}
	if err := exp.Start(ctx, reconnectHost{s.host}); err != nil {
		return nil, errors.Join(err, exp.Shutdown(ctx))
	}
	b := newBackend(spec.endpoint, spec.weight, exp, send, newBackendAttrs(s.settings.ID, spec.endpoint))
	if s.breakers != nil {
		b.breaker = s.breakers.Breaker(spec.endpoint)
	}
	return b, nil
}

// beginHandoverLocked keeps old's owners in next for the handover: old's
// ring backends that left stay in next.backends, after the ring's, until
// endHandover (they are taken out of removed, which is closed at once).
func (s *backendSet[T]) beginHandoverLocked(old, next *routingState[T], removed map[string]*backend[T]) {
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
	ho.until = now() + s.handover
	next.handover = ho
	if s.handoverTimer != nil {
		s.handoverTimer.Stop()
	}
	s.handoverTimer = time.AfterFunc(s.handover, func() { s.endHandover(next) })
}

// endHandover drops the handover of st, if st is still the current set:
// keys move to their new owners, and backends that left are shut down.
func (s *backendSet[T]) endHandover(st *routingState[T]) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.open || s.state.Load() != st {
		return
	}
	n := st.ring.size()
	s.state.Store(&routingState[T]{ring: st.ring, backends: st.backends[:n:n]})
	left := make(map[string]*backend[T], len(st.backends)-n)
	for _, b := range st.backends[n:] {
		left[b.endpoint] = b
	}
	s.closeAll(context.Background(), left)
}

// close empties the set and shuts every backend down, waiting for their
// sends in flight; apply does nothing after it.
func (s *backendSet[T]) close(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.open = false
	if s.handoverTimer != nil {
		s.handoverTimer.Stop()
	}
	var errs []error
	for _, b := range s.state.Swap(emptyState[T]()).backends {
		errs = append(errs, b.close(ctx))
	}
	return errors.Join(errs...)
}

func (s *backendSet[T]) closeAll(ctx context.Context, bs map[string]*backend[T]) {
	for _, b := range bs {
		if err := b.close(ctx); err != nil {
			s.logger.Warn("Shutting down a removed backend failed", zap.String("backend", b.endpoint), zap.Error(err))
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
