// Copyright The otelcsp Authors
// SPDX-License-Identifier: Apache-2.0

package breakerextension // import "github.com/otelcsp/otelcsp/extension/breakerextension"

import (
	"errors"
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

// core owns every key's breaker, the policies, the idle sweeper and stall
// ticker, and the ordered delivery of state changes. The extension wraps it
// with the collector's lifecycle, telemetry and HTTP endpoint.
type core struct {
	// clk is the breakers' only source of time, so tests drive every
	// transition with a manual clock instead of sleeping. The engine counts
	// in monotonic nanoseconds (now); the wall clock only labels snapshots.
	clk    clock.TimerClock
	logger *zap.Logger

	rngMu sync.Mutex
	rng   *rand.Rand

	def    *policy
	globs  []globRule[*policy]
	manual []globRule[ManualState]

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
	breakers sync.Map // string -> *breaker
	regMu    sync.Mutex
	detached map[string]weak.Pointer[breaker]
	count    atomic.Int64
	// retired holds the call counts of forgotten keys, so the calls metric
	// stays monotonic while keys come and go.
	retired struct{ success, failure, ignored, rejected atomic.Uint64 }

	evMu       sync.Mutex
	queue      []queued
	delivering bool
	open       map[string]struct{} // keys whose effective state is open
	subs       []*subscription     // copy on write under evMu
	onStatus   func(openKeys []string)

	tickMu  sync.Mutex
	timers  map[string]clock.Timer
	running bool
}

type queued struct {
	ch            StateChange
	statusChanged bool
	open          []string
}

type subscription struct{ fn func(StateChange) }

type globRule[T any] struct {
	glob glob.Glob
	val  T
}

func newCore(cfg *Config, clk clock.TimerClock, logger *zap.Logger, seed uint64) *core {
	c := &core{
		clk:        clk,
		logger:     logger,
		rng:        rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		def:        compilePolicy("default", cfg.PolicyConfig),
		idleExpiry: int64(cfg.IdleExpiry),
		maxManual:  int64(cfg.MaxManualKeys),
		open:       map[string]struct{}{},
		timers:     map[string]clock.Timer{},
		detached:   map[string]weak.Pointer[breaker]{},
	}
	named := map[string]*policy{"default": c.def}
	for name, pc := range cfg.Policies {
		named[name] = compilePolicy(name, pc)
	}
	if od := cfg.OutlierDetection.Get(); od != nil {
		c.od = newOutlierDetector(*od)
	}
	for pattern, name := range cfg.Keys {
		c.globs = append(c.globs, globRule[*policy]{glob: glob.Compile(pattern), val: named[name]})
	}
	for pattern, s := range cfg.Manual {
		m, _ := ParseManualState(s) // Validate rejected bad ones
		c.manual = append(c.manual, globRule[ManualState]{glob: glob.Compile(pattern), val: m})
	}
	sortRules(c.globs)
	sortRules(c.manual)
	for _, p := range named {
		if tick := max(p.bucketWidth/2, int64(time.Millisecond)); c.coarseTick == 0 || tick < c.coarseTick {
			c.coarseTick = tick
		}
		if p.cohortWidth > 0 && (c.stallTick == 0 || p.cohortWidth < c.stallTick) {
			c.stallTick = p.cohortWidth
		}
	}
	if c.stallTick > 0 {
		c.stallTick = max(c.stallTick, int64(time.Millisecond))
	}
	return c
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

// Breaker implements Provider.
func (c *core) Breaker(key string) Breaker { return c.get(key) }

func (c *core) get(key string) *breaker {
	if v, ok := c.breakers.Load(key); ok {
		return v.(*breaker)
	}
	c.regMu.Lock()
	defer c.regMu.Unlock()
	if v, ok := c.breakers.Load(key); ok {
		return v.(*breaker)
	}
	if wp, ok := c.detached[key]; ok {
		if b := wp.Value(); b != nil {
			// Forgotten, but a caller still holds it: it stays the key's
			// breaker.
			c.attachLocked(b)
			return b
		}
		delete(c.detached, key)
	}
	b := newBreaker(c, key, firstMatch(c.globs, key, c.def), firstMatch(c.manual, key, ManualNone))
	c.breakers.Store(key, b)
	c.count.Add(1)
	return b
}

// reattach puts back a breaker the sweeper forgot, when its holder uses it.
func (c *core) reattach(b *breaker) {
	c.regMu.Lock()
	c.attachLocked(b)
	c.regMu.Unlock()
}

// attachLocked registers a detached breaker again (once: the flag is
// cleared under the breaker's lock). No other breaker can hold its key
// meanwhile: get finds b through its weak pointer for as long as b lives.
func (c *core) attachLocked(b *breaker) {
	b.mu.Lock()
	if w := b.word.Load(); w&flagDetached != 0 {
		b.word.Store(w &^ flagDetached)
		delete(c.detached, b.key)
		c.breakers.Store(b.key, b)
		c.count.Add(1)
	}
	b.mu.Unlock()
}

// now is the monotonic clock in nanoseconds (always > 0, so 0 can mean
// "unset").
func (c *core) now() int64 { return int64(c.clk.Monotonic()) }

// coarse is the clock for bucketing successes and failures: the ticker's
// reading while it runs (at most coarseTick old), the clock otherwise.
func (c *core) coarse() int64 {
	if c.ticking.Load() {
		return c.coarseNow.Load()
	}
	return c.now()
}

func (c *core) random() float64 {
	c.rngMu.Lock()
	defer c.rngMu.Unlock()
	return c.rng.Float64()
}

// errTooManyManual refuses a runtime manual state beyond max_manual_keys.
var errTooManyManual = errors.New("too many keys with a manual state set at runtime")

// SetManualState implements Controller. Beyond max_manual_keys runtime
// overrides, a new one is refused and logged (the HTTP endpoint answers
// 409); setting a key back to its configured state always works.
func (c *core) SetManualState(key string, m ManualState) {
	if err := c.setManual(key, m); err != nil {
		c.logger.Warn("breaker manual state refused", zap.String("key", key), zap.Stringer("manual", m), zap.Error(err))
	}
}

func (c *core) setManual(key string, m ManualState) error {
	if err := c.get(key).setManual(m); err != nil {
		return fmt.Errorf("%w (max_manual_keys: %d); set one back to none first", err, c.maxManual)
	}
	return nil
}

// addOverride takes one of the max_manual_keys slots.
func (c *core) addOverride() bool {
	for {
		n := c.overrides.Load()
		if n >= c.maxManual {
			return false
		}
		if c.overrides.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// known says whether key is in use or matches a configured glob (keys or
// manual): the HTTP endpoint changes only those, so a request cannot make
// up keys.
func (c *core) known(key string) bool {
	if _, ok := c.breakers.Load(key); ok {
		return true
	}
	c.regMu.Lock()
	wp, ok := c.detached[key]
	c.regMu.Unlock()
	if ok && wp.Value() != nil {
		return true
	}
	for _, r := range c.globs {
		if r.glob.Match(key) {
			return true
		}
	}
	for _, r := range c.manual {
		if r.glob.Match(key) {
			return true
		}
	}
	return false
}

// Subscribe implements Subscriber.
func (c *core) Subscribe(fn func(StateChange)) func() {
	s := &subscription{fn: fn}
	c.evMu.Lock()
	c.subs = append(append([]*subscription(nil), c.subs...), s)
	c.evMu.Unlock()
	return func() {
		c.evMu.Lock()
		defer c.evMu.Unlock()
		out := make([]*subscription, 0, len(c.subs))
		for _, x := range c.subs {
			if x != s {
				out = append(out, x)
			}
		}
		c.subs = out
	}
}

// enqueue records a change while the breaker's lock is held, so changes are
// queued in the order they happened; deliver runs them after the lock is
// released.
func (c *core) enqueue(ch StateChange, effective State) {
	c.evMu.Lock()
	q := queued{ch: ch}
	_, wasOpen := c.open[ch.Key]
	if isOpen := effective == StateOpen; isOpen != wasOpen {
		if isOpen {
			c.open[ch.Key] = struct{}{}
		} else {
			delete(c.open, ch.Key)
		}
		q.statusChanged = true
		q.open = sortedKeys(c.open)
	}
	c.queue = append(c.queue, q)
	c.evMu.Unlock()
}

// deliver hands queued changes to subscribers in order, outside any lock.
// One goroutine delivers at a time; others leave their changes to it, so a
// subscriber that calls back into a breaker (and causes a change) neither
// deadlocks nor reorders.
func (c *core) deliver() {
	c.evMu.Lock()
	if c.delivering {
		c.evMu.Unlock()
		return
	}
	c.delivering = true
	for len(c.queue) > 0 {
		batch := c.queue
		c.queue = nil
		subs := c.subs
		onStatus := c.onStatus
		c.evMu.Unlock()
		for _, q := range batch {
			for _, s := range subs {
				c.call(s.fn, q.ch)
			}
			if q.statusChanged && onStatus != nil {
				onStatus(q.open)
			}
		}
		c.evMu.Lock()
	}
	c.delivering = false
	c.evMu.Unlock()
}

func (c *core) call(fn func(StateChange), ch StateChange) {
	defer func() {
		if r := recover(); r != nil {
			c.logger.Error("breaker subscriber panicked", zap.Any("panic", r), zap.String("key", ch.Key))
		}
	}()
	fn(ch)
}

// openKeys returns the keys currently open (sorted).
func (c *core) openKeys() []string {
	c.evMu.Lock()
	defer c.evMu.Unlock()
	return sortedKeys(c.open)
}

// start runs the idle sweeper and, if a policy watches slow calls, the stall
// ticker.
func (c *core) start() {
	c.tickMu.Lock()
	defer c.tickMu.Unlock()
	if c.running {
		return
	}
	c.running = true
	c.breakers.Range(func(_, v any) bool {
		b := v.(*breaker)
		b.mu.Lock()
		b.stopped = false
		b.mu.Unlock()
		return true
	})
	c.coarseNow.Store(c.now())
	c.ticking.Store(true)
	c.scheduleLocked("coarse", c.coarseTick, func(now int64) { c.coarseNow.Store(now) })
	c.scheduleLocked("idle", max(c.idleExpiry/2, int64(time.Millisecond)), c.sweep)
	if c.stallTick > 0 {
		c.scheduleLocked("stall", c.stallTick, c.checkStalls)
	}
	if c.od != nil {
		c.scheduleLocked("outlier", int64(c.od.cfg.Interval), c.detectOutliers)
	}
}

func (c *core) scheduleLocked(name string, every int64, f func(now int64)) {
	var tick func()
	tick = func() {
		f(c.now())
		c.tickMu.Lock()
		defer c.tickMu.Unlock()
		if c.running {
			c.timers[name] = c.clk.AfterFunc(time.Duration(every), tick)
		}
	}
	c.timers[name] = c.clk.AfterFunc(time.Duration(every), tick)
}

// stop ends the tickers and every open timer.
func (c *core) stop() {
	c.tickMu.Lock()
	c.running = false
	c.ticking.Store(false)
	for name, t := range c.timers {
		t.Stop()
		delete(c.timers, name)
	}
	c.tickMu.Unlock()
	c.breakers.Range(func(_, v any) bool {
		v.(*breaker).stop()
		return true
	})
}

func (c *core) checkStalls(now int64) {
	c.breakers.Range(func(_, v any) bool {
		v.(*breaker).checkStall(now)
		return true
	})
}

// sweep forgets keys unused for idle_expiry, whatever their automatic state:
// a breaker no call asked for that long knows nothing current, and keys of
// backends that went away (pods replaced, resolver changes) must not stay.
// Use is read from the outcome and rejection counters. Keys with a manual
// state, set at runtime or by config, are kept.
func (c *core) sweep(now int64) {
	c.regMu.Lock()
	for k, wp := range c.detached {
		if wp.Value() == nil {
			delete(c.detached, k) // nothing holds it any more
		}
	}
	c.breakers.Range(func(k, v any) bool {
		b := v.(*breaker)
		calls := b.calls()
		b.mu.Lock()
		if calls != b.lastCalls || b.lastActive == 0 {
			// Used since the last sweep, or created since (start its clock).
			b.lastCalls, b.lastActive = calls, now
			b.mu.Unlock()
			return true
		}
		if now-b.lastActive >= c.idleExpiry && b.manual == ManualNone && b.cfgManual == ManualNone {
			c.breakers.Delete(k)
			c.detached[b.key] = weak.Make(b)
			c.count.Add(-1)
			c.retired.success.Add(b.nSuccess.Swap(0))
			c.retired.failure.Add(b.nFailure.Swap(0))
			c.retired.ignored.Add(b.nIgnored.Swap(0))
			c.retired.rejected.Add(b.nRejected.Swap(0))
			b.forgetLocked(now)
		}
		b.mu.Unlock()
		return true
	})
	c.regMu.Unlock()
	c.deliver()
}
