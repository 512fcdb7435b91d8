package fanoutexporter

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.uber.org/zap"
)

// splitter moves items into one part per backend, plus a last part for
// items no backend may take. Its parts are valid until the next add.
// choose picks the backend for a routing key's hash; weight is how many
// items (spans, log records, data points) that choice moves, for the
// rerouted count (0 for a choice that only groups data points).
type splitter[T any] interface {
	add(data T, choose func(h uint64, weight int) int)
	finish() []T
}

// router routes one push's data over one backend set, in rounds. A round
// splits what is left to send into one part per backend, sends the parts
// in parallel, and sorts the outcomes: delivered (counted), to re-route (a
// backend failed: its part goes, in the next round, to the next backend of
// each of its keys, the failed one excluded) and to give back (no backend
// may take it). Each round excludes at least one more backend, so there
// are at most n+1 rounds for n backends.
//
// A router is used by one push at a time. Routers are pooled with the
// backend set they are sized for, so that a push allocates nothing for its
// bookkeeping.
type router[T any] struct {
	st                *routingState[T]
	ops               *signalOps[T]
	tel               *fanoutTelemetry
	logger            *zap.Logger
	maxEjectedPercent int
	split             splitter[T]
	// choose and allowed are bound once, for the splitter and the ring.
	choose  func(h uint64, weight int) int
	allowed func(i int) bool

	// For the whole push.
	force    bool // panic mode or draining: open breakers do not keep data away
	ho       handoverRouter
	excluded []bool // per backend: takes nothing more in this push
	sources  []T    // what the next round routes
	left     T      // what no backend took, when hasLeft
	hasLeft  bool
	// permanent are the errors of parts the backends refused as invalid.
	permanent []error

	// For one round, per backend.
	rerouted []int64 // items whose first choice was another backend
	items    []int64
	errs     []error
	wg       sync.WaitGroup
}

func (f *fanout[T]) router(st *routingState[T]) *router[T] {
	if r, ok := st.routers.Get().(*router[T]); ok {
		return r
	}
	n := len(st.backends)
	r := &router[T]{
		st: st, ops: &f.ops, tel: f.telemetry, logger: f.logger, maxEjectedPercent: f.cfg.MaxEjectedPercent,
		split:    f.ops.newSplit(n),
		excluded: make([]bool, n),
		rerouted: make([]int64, n), items: make([]int64, n), errs: make([]error, n),
	}
	r.allowed = func(i int) bool { return i < st.ring.size() && !r.excluded[i] }
	r.choose = func(h uint64, weight int) int {
		if p := r.ho.previousOwner(h); p >= 0 && !r.excluded[p] {
			return p
		}
		slot := st.ring.slot(h)
		if o := st.ring.owner(slot); !r.excluded[o] {
			return o
		}
		c := st.ring.pick(slot, r.allowed)
		if c >= 0 {
			r.rerouted[c] += int64(weight)
		}
		return c
	}
	return r
}

// route delivers data to the backends of the router's set and returns
// the items no backend took (left, when n > 0) and, for items the
// backends refused as invalid, a permanent error. While draining, open
// breakers do not keep data from its owners.
func (r *router[T]) route(ctx context.Context, data T, draining bool, ho handoverRouter) (left T, n int, perr error) {
	r.begin(draining, ho)
	r.sources = append(r.sources, data)
	for round := 0; len(r.sources) > 0 && round <= len(r.st.backends); round++ {
		parts := r.splitSources()
		r.send(ctx, parts)
		r.sort(ctx, parts)
	}
	for _, src := range r.sources { // only if the round bound was hit
		r.giveBack(src)
	}
	return r.end()
}

// begin excludes the backends whose breaker is open, unless too many are
// (panic mode: send to the owners anyway) or the fanout is draining at
// shutdown (breakers opened because every backend is merely slow must not
// turn the drain into a drop).
func (r *router[T]) begin(draining bool, ho handoverRouter) {
	r.ho = ho
	ejected := 0
	for i, b := range r.st.backends {
		r.excluded[i] = b.ejected()
		if r.excluded[i] && i < r.st.ring.size() {
			ejected++
		}
	}
	r.force = draining || (ejected > 0 && ejected*100 > r.st.ring.size()*r.maxEjectedPercent)
	if r.force {
		clear(r.excluded)
	}
}

// splitSources moves what is left to send into one part per backend.
func (r *router[T]) splitSources() []T {
	for _, src := range r.sources {
		r.split.add(src, r.choose)
	}
	clear(r.sources)
	r.sources = r.sources[:0]
	return r.split.finish()
}

// send sends every non-empty part to its backend, all at once, and waits
// for them all. The last part goes out on the calling goroutine, which
// would otherwise only wait: one goroutine fewer a round.
func (r *router[T]) send(ctx context.Context, parts []T) {
	last := -1
	for i := range r.st.backends {
		r.errs[i] = nil
		r.items[i] = int64(r.ops.count(parts[i]))
		if r.items[i] == 0 {
			continue
		}
		if last >= 0 {
			r.wg.Add(1)
			go r.sendPart(ctx, last, parts[last])
		}
		last = i
	}
	if last >= 0 {
		r.errs[last] = r.st.backends[last].consume(ctx, parts[last], r.force)
	}
	r.wg.Wait()
}

func (r *router[T]) sendPart(ctx context.Context, i int, part T) {
	defer r.wg.Done()
	r.errs[i] = r.st.backends[i].consume(ctx, part, r.force)
}

// sort counts what was delivered, queues for the next round what a
// backend failed to take (excluding that backend from then on), keeps the
// errors of what was refused as invalid, and gives back the part no
// backend may take.
func (r *router[T]) sort(ctx context.Context, parts []T) {
	for i, b := range r.st.backends {
		items, err := r.items[i], r.errs[i]
		switch {
		case items == 0:
		case err == nil:
			r.tel.delivered(ctx, b.attrs, items, r.rerouted[i])
			b.sent.Add(items)
		case consumererror.IsPermanent(err):
			// The data itself was refused: no other backend would take it.
			r.tel.failed(ctx, b.attrs, items)
			r.permanent = append(r.permanent, fmt.Errorf("backend %s: %w", b.endpoint, err))
		default:
			r.tel.failed(ctx, b.attrs, items)
			b.failures.Note(r.logger, now(), items, zap.String("backend", b.endpoint), zap.Error(err))
			r.excluded[i] = true
			failed := r.ops.empty()
			r.ops.moveAll(parts[i], failed)
			r.sources = append(r.sources, failed)
		}
	}
	clear(r.rerouted)
	r.giveBack(parts[len(r.st.backends)])
}

// giveBack keeps data's items for the caller.
func (r *router[T]) giveBack(data T) {
	if r.ops.count(data) == 0 {
		return
	}
	if !r.hasLeft {
		r.left, r.hasLeft = r.ops.empty(), true
	}
	r.ops.moveAll(data, r.left)
}

// end returns the push's outcome and readies the router for the next one.
func (r *router[T]) end() (left T, n int, perr error) {
	if len(r.permanent) > 0 {
		perr = consumererror.NewPermanent(errors.Join(r.permanent...))
	}
	if r.hasLeft {
		left, n = r.left, r.ops.count(r.left)
	}
	var zero T
	r.left, r.hasLeft, r.ho = zero, false, handoverRouter{}
	clear(r.permanent)
	r.permanent = r.permanent[:0]
	if n > 0 {
		if perr != nil {
			r.logger.Warn("Backends refused data as invalid", zap.Error(perr))
		}
		return left, n, nil
	}
	return left, 0, perr
}
