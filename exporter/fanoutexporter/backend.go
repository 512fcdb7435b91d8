package fanoutexporter

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"

	"go.opentelemetry.io/collector/component"
	"go.uber.org/zap/zapcore"

	"github.com/otelcsp/otelcsp/extension/breakerextension"
	"github.com/otelcsp/otelcsp/internal/ratelog"
)

// errBackendRemoved fails a send to a backend the resolver dropped meanwhile;
// like any failure, its items go to the next backend in preference order.
var errBackendRemoved = errors.New("backend removed from the backend set")

// backend is one backend collector: its sub-exporter and, when configured,
// its breaker.
type backend[T any] struct {
	endpoint string
	weight   float64
	exp      component.Component
	send     func(context.Context, T) error
	breaker  breakerextension.Breaker // nil without a breaker extension
	attrs    backendAttrs

	// failures rate-limits the log of failed sends (re-routed or handed back).
	failures *ratelog.Limiter

	// sent counts items accepted since the backend set last changed, for
	// the load imbalance gauge.
	sent atomic.Int64

	// mu lets sends run concurrently while keeping shutdown from cutting
	// one off: close takes it exclusively.
	mu     sync.RWMutex
	closed bool
}

func newBackend[T any](endpoint string, weight float64, exp component.Component, send func(context.Context, T) error, attrs backendAttrs) *backend[T] {
	return &backend[T]{
		endpoint: endpoint,
		weight:   weight,
		exp:      exp,
		send:     send,
		attrs:    attrs,
		failures: ratelog.New(logEvery, zapcore.WarnLevel, "Backend failed; its items go to the next backend of each key", "items"),
	}
}

// ejected says whether the backend's breaker currently keeps data away.
func (b *backend[T]) ejected() bool {
	return b.breaker != nil && b.breaker.State() == breakerextension.StateOpen
}

// consume sends data through the breaker. With force (panic mode) an open
// breaker does not stop the send.
func (b *backend[T]) consume(ctx context.Context, data T, force bool) error {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.closed {
		return errBackendRemoved
	}
	if b.breaker == nil {
		return b.send(ctx, data)
	}
	permit, err := b.breaker.Allow()
	if err != nil && !force {
		return err
	}
	// The backend's exporter may consult the same breaker again through its
	// client middleware (the same extension in protocol's middlewares): the
	// mark tells it the call is admitted here, so it neither refuses the
	// half-open probe taken here nor counts the outcome a second time.
	err = b.send(breakerextension.ContextWithAdmitted(ctx, b.breaker), data)
	permit.Done(err) // the zero Permit (forced send) ignores it
	return err
}

// close waits for sends in flight, then shuts the sub-exporter down.
func (b *backend[T]) close(ctx context.Context) error {
	b.mu.Lock()
	b.closed = true
	b.mu.Unlock()
	return b.exp.Shutdown(ctx)
}
