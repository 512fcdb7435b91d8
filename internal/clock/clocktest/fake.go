// Package clocktest is the one fake clock of the components' tests: time
// moves only when the test moves it, so flushes, sweeps, timeouts and waits
// are checked exactly and without sleeping.
package clocktest // import "github.com/otelcsp/otelcsp/internal/clock/clocktest"

import (
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/otelcsp/otelcsp/internal/clock"
)

// handoffBound bounds how long Tick and WaitTickers wait for the code under
// test before they fail the test.
const handoffBound = 10 * time.Second

// Fake is a clock.Clock and a clock.TimerClock moved by the test. It keeps
// two readings, as the real clock does: the wall clock (Now) and the
// monotonic clock (Monotonic). Advance moves both and fires what falls due;
// StepWall moves only the wall clock, as NTP does.
//
// Its tickers fire only in Advance, or when the test hands one a tick with
// Tick; its timers (AfterFunc) fire only in Advance, synchronously.
type Fake struct {
	mu      sync.Mutex
	wall    time.Time
	mono    time.Duration
	auto    bool
	tickers []*Ticker // all made, in order
	running []*Ticker // made and not stopped, which Advance fires
	timers  []*timer
	seq     int
	// created is closed and replaced when a ticker is created, to wake
	// WaitTickers.
	created chan struct{}
}

var (
	_ clock.Clock      = (*Fake)(nil)
	_ clock.TimerClock = (*Fake)(nil)
)

// New returns a fake clock showing wall on the wall clock and mono on the
// monotonic clock.
func New(wall time.Time, mono time.Duration) *Fake {
	return &Fake{wall: wall, mono: mono, created: make(chan struct{})}
}

// AutoAdvance makes every ticker created from now on move the clock
// forward by its period at once, so that it has fired: a wait
// (clock.Sleep) ends at once and takes exactly its length in fake time.
func (f *Fake) AutoAdvance() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.auto = true
}

// Now is the wall clock.
func (f *Fake) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.wall
}

// Monotonic is the monotonic clock.
func (f *Fake) Monotonic() time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.mono
}

// StepWall moves the wall clock only (back, for d < 0). Tickers and
// timers, like the real ones, follow the monotonic clock and do not fire.
func (f *Fake) StepWall(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.wall = f.wall.Add(d)
}

// Advance moves both clocks forward by d. On the way it calls every due
// timer, in due order, in the caller's goroutine, with the clock showing
// the timer's due time. Then, with the clock at its new time, it fires
// every due ticker without blocking, like time.Ticker, which drops the
// ticks a slow reader misses.
func (f *Fake) Advance(d time.Duration) {
	f.mu.Lock()
	target := f.mono + d
	for {
		next := f.nextTimer(target)
		if next == nil {
			break
		}
		f.moveTo(next.at)
		next.fired = true
		f.mu.Unlock()
		next.f()
		f.mu.Lock()
	}
	f.moveTo(target)
	for _, t := range f.running {
		for t.next <= f.mono {
			select {
			case t.c <- f.wall:
			default:
			}
			t.next += t.period
		}
	}
	f.mu.Unlock()
}

// moveTo moves both clocks to monotonic reading m, never back.
func (f *Fake) moveTo(m time.Duration) {
	if m > f.mono {
		f.wall = f.wall.Add(m - f.mono)
		f.mono = m
	}
}

// Tick hands a tick to the clock's only running ticker and returns once its
// reader has taken it. It fails the test unless exactly one ticker runs, or
// if the tick is not taken within 10 s.
func (f *Fake) Tick(tb testing.TB) {
	tb.Helper()
	f.mu.Lock()
	running := len(f.running)
	var t *Ticker
	if running == 1 {
		t = f.running[0]
	}
	now := f.wall
	f.mu.Unlock()
	if t == nil {
		tb.Fatalf("Tick: %d running tickers, want 1", running)
	}
	deadline := time.NewTimer(handoffBound)
	defer deadline.Stop()
	select {
	case t.c <- now:
	case <-deadline.C:
		tb.Fatal("Tick: the ticker's reader did not take the tick")
	}
	// The channel holds one tick, as time.Ticker's does: the tick is taken
	// when it is empty again.
	for len(t.c) > 0 {
		select {
		case <-deadline.C:
			tb.Fatal("Tick: the ticker's reader did not take the tick")
		case <-time.After(50 * time.Microsecond):
		}
	}
}

// Tickers are all the tickers made on the clock, stopped ones too, in the
// order they were made.
func (f *Fake) Tickers() []*Ticker {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]*Ticker(nil), f.tickers...)
}

// WaitTickers waits until at least n tickers have been made on the clock and
// returns them all, as Tickers does. It fails the test after 10 s.
func (f *Fake) WaitTickers(tb testing.TB, n int) []*Ticker {
	tb.Helper()
	deadline := time.NewTimer(handoffBound)
	defer deadline.Stop()
	for {
		f.mu.Lock()
		if len(f.tickers) >= n {
			defer f.mu.Unlock()
			return append([]*Ticker(nil), f.tickers...)
		}
		created := f.created
		f.mu.Unlock()
		select {
		case <-created:
		case <-deadline.C:
			tb.Fatalf("WaitTickers: fewer than %d tickers after %v", n, handoffBound)
		}
	}
}

// NewTicker returns a ticker of period d, due first at d from now on the
// monotonic clock. Like time.NewTicker it panics if d <= 0.
func (f *Fake) NewTicker(d time.Duration) clock.Ticker {
	if d <= 0 {
		panic("clocktest: non-positive interval for NewTicker")
	}
	f.mu.Lock()
	t := &Ticker{fake: f, c: make(chan time.Time, 1), period: d, next: f.mono + d}
	f.tickers = append(f.tickers, t)
	f.running = append(f.running, t)
	close(f.created)
	f.created = make(chan struct{})
	auto := f.auto
	f.mu.Unlock()
	if auto {
		f.Advance(d)
	}
	return t
}

// Ticker is a ticker of a Fake.
type Ticker struct {
	fake    *Fake
	c       chan time.Time
	period  time.Duration
	next    time.Duration // monotonic reading of the next tick
	stopped bool
}

// Chan delivers the ticks.
func (t *Ticker) Chan() <-chan time.Time { return t.c }

// Stop stops the ticker: Advance fires it no more.
func (t *Ticker) Stop() {
	t.fake.mu.Lock()
	defer t.fake.mu.Unlock()
	if !t.stopped {
		t.stopped = true
		t.fake.running = slices.DeleteFunc(t.fake.running, func(r *Ticker) bool { return r == t })
	}
}

// Period is the period the ticker was made with.
func (t *Ticker) Period() time.Duration { return t.period }

// Stopped reports whether Stop was called.
func (t *Ticker) Stopped() bool {
	t.fake.mu.Lock()
	defer t.fake.mu.Unlock()
	return t.stopped
}

type timer struct {
	fake    *Fake
	at      time.Duration // monotonic reading it is due at
	seq     int           // creation order, to call timers due together in order
	f       func()
	stopped bool
	fired   bool
}

// AfterFunc schedules f for when Advance moves the monotonic clock d ahead.
// Unlike time.AfterFunc, f runs in Advance's goroutine, so that what it
// does is done when Advance returns.
func (f *Fake) AfterFunc(d time.Duration, fn func()) clock.Timer {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.seq++
	t := &timer{fake: f, at: f.mono + d, seq: f.seq, f: fn}
	f.timers = append(f.timers, t)
	return t
}

func (t *timer) Stop() bool {
	t.fake.mu.Lock()
	defer t.fake.mu.Unlock()
	was := !t.stopped && !t.fired
	t.stopped = true
	return was
}

// PendingTimers counts the timers neither fired nor stopped.
func (f *Fake) PendingTimers() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, t := range f.timers {
		if !t.stopped && !t.fired {
			n++
		}
	}
	return n
}

// nextTimer drops finished timers and returns the first one due by target,
// or nil. f.mu is held.
func (f *Fake) nextTimer(target time.Duration) *timer {
	var next *timer
	live := f.timers[:0]
	for _, t := range f.timers {
		if t.stopped || t.fired {
			continue
		}
		live = append(live, t)
		if t.at <= target && (next == nil || t.at < next.at || (t.at == next.at && t.seq < next.seq)) {
			next = t
		}
	}
	clear(f.timers[len(live):])
	f.timers = live
	return next
}
