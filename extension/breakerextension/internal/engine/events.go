// Copyright The otelcsp Authors
// SPDX-License-Identifier: Apache-2.0

package engine // import "github.com/otelcsp/otelcsp/extension/breakerextension/internal/engine"

import (
	"maps"
	"slices"
	"sync"

	"go.uber.org/zap"
)

// Change is one state change as subscribers see it (the extension's public
// StateChange).
type Change struct {
	Key        string
	From, To   Admission
	Generation uint64
	Reason     string
	// Shadow: a manual state is set, so admission did not follow.
	Shadow bool
}

// events queues state changes in the order they happened (under the
// breaker's lock) and delivers them outside any lock, and keeps the set of
// keys whose effective state is open.
type events struct {
	logger *zap.Logger

	mu         sync.Mutex
	queue      []queued
	delivering bool
	open       map[string]struct{} // keys whose effective state is open
	subs       []*subscription     // copy on write under mu
	onStatus   func(openKeys []string)
}

type queued struct {
	ch            Change
	statusChanged bool
	open          []string
}

type subscription struct{ fn func(Change) }

// Subscribe calls fn for every change of every key, in order and outside
// any lock; the returned function removes the subscription.
func (e *events) Subscribe(fn func(Change)) func() {
	s := &subscription{fn: fn}
	e.mu.Lock()
	e.subs = append(append([]*subscription(nil), e.subs...), s)
	e.mu.Unlock()
	return func() {
		e.mu.Lock()
		defer e.mu.Unlock()
		out := make([]*subscription, 0, len(e.subs))
		for _, x := range e.subs {
			if x != s {
				out = append(out, x)
			}
		}
		e.subs = out
	}
}

// OnStatus sets (nil: clears) the function told, in delivery order, the
// sorted open keys each time the set changes.
func (e *events) OnStatus(fn func(openKeys []string)) {
	e.mu.Lock()
	e.onStatus = fn
	e.mu.Unlock()
}

// enqueue records a change while the breaker's lock is held, so changes are
// queued in the order they happened; deliver runs them after the lock is
// released.
func (e *events) enqueue(ch Change, effective Admission) {
	e.mu.Lock()
	q := queued{ch: ch}
	_, wasOpen := e.open[ch.Key]
	if isOpen := effective == AdmitNone; isOpen != wasOpen {
		if isOpen {
			e.open[ch.Key] = struct{}{}
		} else {
			delete(e.open, ch.Key)
		}
		q.statusChanged = true
		q.open = slices.Sorted(maps.Keys(e.open))
	}
	e.queue = append(e.queue, q)
	e.mu.Unlock()
}

// deliver hands queued changes to subscribers in order, outside any lock.
// One goroutine delivers at a time; others leave their changes to it, so a
// subscriber that calls back into a breaker (and causes a change) neither
// deadlocks nor reorders.
func (e *events) deliver() {
	e.mu.Lock()
	if e.delivering {
		e.mu.Unlock()
		return
	}
	e.delivering = true
	for len(e.queue) > 0 {
		batch := e.queue
		e.queue = nil
		subs := e.subs
		onStatus := e.onStatus
		e.mu.Unlock()
		for _, q := range batch {
			for _, s := range subs {
				e.call(s.fn, q.ch)
			}
			if q.statusChanged && onStatus != nil {
				onStatus(q.open)
			}
		}
		e.mu.Lock()
	}
	e.delivering = false
	e.mu.Unlock()
}

func (e *events) call(fn func(Change), ch Change) {
	defer func() {
		if r := recover(); r != nil {
			e.logger.Error("breaker subscriber panicked", zap.Any("panic", r), zap.String("key", ch.Key))
		}
	}()
	fn(ch)
}

// OpenKeys returns the keys currently open (sorted).
func (e *events) OpenKeys() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Sorted(maps.Keys(e.open))
}
