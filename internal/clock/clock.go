// Package clock is the components' one source of time, of periodic work
// (flushes, sweeps) and of waits (pacing), so that tests drive all three
// with a manual clock instead of sleeping.
package clock // import "github.com/otelcsp/otelcsp/internal/clock"

import (
	"context"
	"time"
)

// Clock gives the time and tickers.
type Clock interface {
	Now() time.Time
	NewTicker(d time.Duration) Ticker
}

// Ticker delivers ticks.
type Ticker interface {
	Chan() <-chan time.Time
	Stop()
}

// Timer is a call scheduled with AfterFunc.
type Timer interface {
	// Stop cancels the call; it reports whether it did (false: the call
	// already ran or was stopped).
	Stop() bool
}

// TimerClock is the source of time of a state machine with timeouts (the
// breaker's open periods): the wall clock for what it shows, the monotonic
// clock for what it measures, and one-shot timers.
type TimerClock interface {
	Now() time.Time
	Monotonic() time.Duration
	// AfterFunc calls f in its own goroutine once d has elapsed.
	AfterFunc(d time.Duration, f func()) Timer
}

// Real is the system clock. Its Monotonic reads the monotonic clock only,
// so ages and rate limits ignore wall-clock steps.
type Real struct{}

var (
	_ Clock      = Real{}
	_ TimerClock = Real{}
)

// monoOrigin lies a second before the process started, so that Monotonic is
// never 0 and callers may use 0 for "unset".
var monoOrigin = time.Now().Add(-time.Second)

func (Real) Now() time.Time { return time.Now() }

// Monotonic is the time since an arbitrary origin on the monotonic clock;
// it is always > 0.
func (Real) Monotonic() time.Duration { return time.Since(monoOrigin) }

// AfterFunc is time.AfterFunc.
func (Real) AfterFunc(d time.Duration, f func()) Timer { return time.AfterFunc(d, f) }

func (Real) NewTicker(d time.Duration) Ticker { return realTicker{time.NewTicker(d)} }

type realTicker struct{ t *time.Ticker }

func (r realTicker) Chan() <-chan time.Time { return r.t.C }
func (r realTicker) Stop()                  { r.t.Stop() }

// Sleep waits for d on c, or until ctx is done, whichever comes first, and
// returns ctx.Err() in the latter case. It waits for the first tick of a
// ticker of period d, so a manual clock ends the wait by ticking.
func Sleep(ctx context.Context, c Clock, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	t := c.NewTicker(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.Chan():
		return nil
	}
}

// Loop calls a function on every tick of its own ticker, in one goroutine,
// until Stop.
type Loop struct {
	ticker       Ticker
	done, exited chan struct{}
}

// Every starts a loop that calls fn every d on c's ticker.
func Every(c Clock, d time.Duration, fn func()) *Loop {
	l := &Loop{ticker: c.NewTicker(d), done: make(chan struct{}), exited: make(chan struct{})}
	go func() {
		defer close(l.exited)
		for {
			select {
			case <-l.done:
				return
			case <-l.ticker.Chan():
				fn()
			}
		}
	}()
	return l
}

// Stop ends the loop and waits for a call in progress to return. Call it
// once.
func (l *Loop) Stop() {
	close(l.done)
	l.ticker.Stop()
	<-l.exited
}
