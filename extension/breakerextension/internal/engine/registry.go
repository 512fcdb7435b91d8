// Copyright The otelcsp Authors
// SPDX-License-Identifier: Apache-2.0

// Package engine is the breaker extension's state machine, with no
// collector types: every key's breaker, driven by one transition table
// (table.go), the registry that owns the key → breaker mapping, its
// tickers (coarse clock, idle sweeper, stall check, outlier detection) and
// the ordered delivery of state changes. The extension adapts it to the
// collector's lifecycle, telemetry, middleware and HTTP endpoint, and to
// the public Provider / Breaker / Permit API.
package engine // import "github.com/otelcsp/otelcsp/extension/breakerextension/internal/engine"

import (
	"fmt"
	"math/rand/v2"
	"sort"
	"sync"
	"sync/atomic"
	"time"
	"weak"

	"go.uber.org/zap"

	"github.com/otelcsp/otelcsp/internal/clock"
	"github.com/otelcsp/otelcsp/internal/glob"
)

// Registry owns every key's breaker, the policies, the tickers and the
// ordered delivery of state changes.
type Registry struct {
	// clk is the breakers' only source of time, so tests drive every
	// transition with a manual clock instead of sleeping. The engine counts
	// in monotonic nanoseconds (now); the wall clock only labels snapshots.
	clk clock.TimerClock
	events

	rngMu sync.Mutex
	rng   *rand.Rand

	def    *policy
	globs  []globRule[*policy]
	manual []globRule[Manual]

	idleExpiry int64
	maxManual  int64
	od         *outlierDetector // nil: outlier detection off
	// overrides counts keys whose manual state differs from the one config
	// gives them (set at runtime): kept for good, so bounded by maxManual.
	overrides  atomic.Int64
	stallTick  int64 // 0: no policy watches slow calls
	coarseTick int64

	// coarseNow is the clock as of the last coarse tick. Reading the clock
	// costs more than the rest of Allow+Done together, and a success only
	// needs to know its window bucket, so the closed path reads this instead
	// while the ticker runs.
	coarseNow atomic.Int64
	ticking   atomic.Bool

	// The registry is the one owner of the key -> breaker mapping. breakers
	// holds the keys in use (looked up without a lock); a forgotten key
	// moves to detached as a weak pointer, so that while a caller still
	// holds its breaker every lookup of the key finds that same breaker,
	// and once nothing does the registry keeps nothing of it. Changes to
	// the mapping are made under regMu (taken before any breaker's mu).
	breakers sync.Map // string -> *Breaker
	regMu    sync.Mutex
	detached map[string]weak.Pointer[Breaker]
	count    atomic.Int64
	// retired holds the call counts of forgotten keys, so the calls metric
	// stays monotonic while keys come and go.
	retired struct{ success, failure, ignored, rejected atomic.Uint64 }

	// The tickers: each is owned by the registry, armed by start and by
	// its own tick, stopped by stop.
	tickMu  sync.Mutex
	timers  map[string]clock.Timer
	running bool
}

type globRule[T any] struct {
	glob glob.Glob
	val  T
}

// New builds the registry of cfg (validated by the extension); seed feeds
// the jitter and outlier detection's enforcement draws.
func New(cfg Config, clk clock.TimerClock, logger *zap.Logger, seed uint64) *Registry {
	r := &Registry{
		clk:        clk,
		events:     events{logger: logger, open: map[string]struct{}{}},
		rng:        rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		def:        compilePolicy("default", cfg.Default),
		idleExpiry: int64(cfg.IdleExpiry),
		maxManual:  int64(cfg.MaxManualKeys),
		timers:     map[string]clock.Timer{},
		detached:   map[string]weak.Pointer[Breaker]{},
	}
	named := map[string]*policy{"default": r.def}
	for name, pc := range cfg.Policies {
		named[name] = compilePolicy(name, pc)
	}
	if cfg.Outlier != nil {
		r.od = newOutlierDetector(*cfg.Outlier)
	}
	for pattern, name := range cfg.Keys {
		r.globs = append(r.globs, globRule[*policy]{glob: glob.Compile(pattern), val: named[name]})
	}
	for pattern, m := range cfg.Manual {
		r.manual = append(r.manual, globRule[Manual]{glob: glob.Compile(pattern), val: m})
	}
	sortRules(r.globs)
	sortRules(r.manual)
	for _, p := range named {
		if tick := max(p.bucketWidth/2, int64(time.Millisecond)); r.coarseTick == 0 || tick < r.coarseTick {
			r.coarseTick = tick
		}
		if p.cohortWidth > 0 && (r.stallTick == 0 || p.cohortWidth < r.stallTick) {
			r.stallTick = p.cohortWidth
		}
	}
	if r.stallTick > 0 {
		r.stallTick = max(r.stallTick, int64(time.Millisecond))
	}
	return r
}

// sortRules orders globs most specific first: longest, then alphabetical,
// so the first match is the answer and the choice never depends on map order.
func sortRules[T any](r []globRule[T]) {
	sort.Slice(r, func(i, j int) bool {
		a, b := r[i].glob.String(), r[j].glob.String()
		if len(a) != len(b) {
			return len(a) > len(b)
		}
		return a < b
	})
}

func firstMatch[T any](rules []globRule[T], key string, def T) T {
	for _, r := range rules {
		if r.glob.Match(key) {
			return r.val
		}
	}
	return def
}

// Get returns the breaker for key, creating it with its policy on first use.
func (r *Registry) Get(key string) *Breaker {
	if v, ok := r.breakers.Load(key); ok {
		return v.(*Breaker)
	}
	r.regMu.Lock()
	defer r.regMu.Unlock()
	if v, ok := r.breakers.Load(key); ok {
		return v.(*Breaker)
	}
	if wp, ok := r.detached[key]; ok {
		if b := wp.Value(); b != nil {
			// Forgotten, but a caller still holds it: it stays the key's
			// breaker.
			r.attachLocked(b)
			return b
		}
		delete(r.detached, key)
	}
	b := newBreaker(r, key, firstMatch(r.globs, key, r.def), firstMatch(r.manual, key, ManualNone))
	r.breakers.Store(key, b)
	r.count.Add(1)
	return b
}

// reattach puts back a breaker the sweeper forgot, when its holder uses it.
func (r *Registry) reattach(b *Breaker) {
	r.regMu.Lock()
	r.attachLocked(b)
	r.regMu.Unlock()
}

// attachLocked registers a detached breaker again (once: the flag is
// cleared under the breaker's lock). No other breaker can hold its key
// meanwhile: Get finds b through its weak pointer for as long as b lives.
func (r *Registry) attachLocked(b *Breaker) {
	b.mu.Lock()
	if w := b.word.Load(); w&flagDetached != 0 {
		b.word.Store(w &^ flagDetached)
		delete(r.detached, b.key)
		r.breakers.Store(b.key, b)
		r.count.Add(1)
	}
	b.mu.Unlock()
}

// Each calls fn for every key in use.
func (r *Registry) Each(fn func(*Breaker)) {
	r.breakers.Range(func(_, v any) bool {
		fn(v.(*Breaker))
		return true
	})
}

// Count is the number of keys in use.
func (r *Registry) Count() int64 { return r.count.Load() }

// Now is the monotonic clock in nanoseconds.
func (r *Registry) Now() int64 { return r.now() }

// now is the monotonic clock in nanoseconds (always > 0, so 0 can mean
// "unset").
func (r *Registry) now() int64 { return int64(r.clk.Monotonic()) }

// coarse is the clock for bucketing successes and failures: the ticker's
// reading while it runs (at most coarseTick old), the clock otherwise.
func (r *Registry) coarse() int64 {
	if r.ticking.Load() {
		return r.coarseNow.Load()
	}
	return r.now()
}

func (r *Registry) random() float64 {
	r.rngMu.Lock()
	defer r.rngMu.Unlock()
	return r.rng.Float64()
}

// SetManual sets key's manual state. Beyond max_manual_keys runtime
// overrides a new one is refused (ErrTooManyManual); setting a key back to
// its configured state always works.
func (r *Registry) SetManual(key string, m Manual) error {
	if err := r.Get(key).setManual(m); err != nil {
		return fmt.Errorf("%w (max_manual_keys: %d); set one back to none first", err, r.maxManual)
	}
	return nil
}

// addOverride takes one of the max_manual_keys slots.
func (r *Registry) addOverride() bool {
	for {
		n := r.overrides.Load()
		if n >= r.maxManual {
			return false
		}
		if r.overrides.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// Known says whether key is in use or matches a configured glob (keys or
// manual): the HTTP endpoint changes only those, so a request cannot make
// up keys.
func (r *Registry) Known(key string) bool {
	if _, ok := r.breakers.Load(key); ok {
		return true
	}
	r.regMu.Lock()
	wp, ok := r.detached[key]
	r.regMu.Unlock()
	if ok && wp.Value() != nil {
		return true
	}
	for _, g := range r.globs {
		if g.glob.Match(key) {
			return true
		}
	}
	for _, g := range r.manual {
		if g.glob.Match(key) {
			return true
		}
	}
	return false
}

// Start runs the tickers: the coarse clock, the idle sweeper and, where
// configured, the stall check and outlier detection.
func (r *Registry) Start() {
	r.tickMu.Lock()
	defer r.tickMu.Unlock()
	if r.running {
		return
	}
	r.running = true
	r.Each(func(b *Breaker) {
		b.mu.Lock()
		b.stopped = false
		b.mu.Unlock()
	})
	r.coarseNow.Store(r.now())
	r.ticking.Store(true)
	r.scheduleLocked("coarse", r.coarseTick, func(now int64) { r.coarseNow.Store(now) })
	r.scheduleLocked("idle", max(r.idleExpiry/2, int64(time.Millisecond)), r.sweep)
	if r.stallTick > 0 {
		r.scheduleLocked("stall", r.stallTick, r.checkStalls)
	}
	if r.od != nil {
		r.scheduleLocked("outlier", int64(r.od.cfg.Interval), r.detectOutliers)
	}
}

func (r *Registry) scheduleLocked(name string, every int64, f func(now int64)) {
	var tick func()
	tick = func() {
		f(r.now())
		r.tickMu.Lock()
		defer r.tickMu.Unlock()
		if r.running {
			r.timers[name] = r.clk.AfterFunc(time.Duration(every), tick)
		}
	}
	r.timers[name] = r.clk.AfterFunc(time.Duration(every), tick)
}

// Stop ends the tickers and every breaker's timer.
func (r *Registry) Stop() {
	r.tickMu.Lock()
	r.running = false
	r.ticking.Store(false)
	for name, t := range r.timers {
		t.Stop()
		delete(r.timers, name)
	}
	r.tickMu.Unlock()
	r.Each((*Breaker).stop)
}

func (r *Registry) checkStalls(now int64) {
	r.Each(func(b *Breaker) { b.checkStall(now) })
}

// sweep forgets keys unused for idle_expiry, whatever their automatic state:
// a breaker no call asked for that long knows nothing current, and keys of
// backends that went away (pods replaced, resolver changes) must not stay.
// Use is read from the outcome and rejection counters. Keys with a manual
// state, set at runtime or by config, are kept.
func (r *Registry) sweep(now int64) {
	r.regMu.Lock()
	for k, wp := range r.detached {
		if wp.Value() == nil {
			delete(r.detached, k) // nothing holds it any more
		}
	}
	r.breakers.Range(func(_, v any) bool {
		b := v.(*Breaker)
		calls := b.calls()
		b.mu.Lock()
		if calls != b.lastCalls || b.lastActive == 0 {
			// Used since the last sweep, or created since (start its clock).
			b.lastCalls, b.lastActive = calls, now
			b.mu.Unlock()
			return true
		}
		if now-b.lastActive >= r.idleExpiry && b.manual == ManualNone && b.cfgManual == ManualNone {
			r.forgetLocked(b)
		}
		b.mu.Unlock()
		return true
	})
	r.regMu.Unlock()
	r.deliver()
}

// forgetLocked detaches b (regMu and b.mu held) and feeds the table its
// idle event. A holder that uses it again puts it back, and it behaves
// exactly as a key created afresh would; its counts move to retired.
func (r *Registry) forgetLocked(b *Breaker) {
	r.breakers.Delete(b.key)
	r.detached[b.key] = weak.Make(b)
	r.count.Add(-1)
	r.retired.success.Add(b.nSuccess.Swap(0))
	r.retired.failure.Add(b.nFailure.Swap(0))
	r.retired.ignored.Add(b.nIgnored.Swap(0))
	r.retired.rejected.Add(b.nRejected.Swap(0))
	b.word.Store(b.word.Load() | flagDetached)
	b.applyLocked(EvIdle, "", 0)
}
