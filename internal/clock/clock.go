// Package clock is the components' one source of time and of periodic
// work (flushes, sweeps), so that tests drive both with a manual clock
// instead of sleeping.
package clock // import "github.com/otelcsp/otelcsp/internal/clock"

import "time"

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

// Real is the system clock. Its Monotonic reads the monotonic clock only,
// so ages and rate limits ignore wall-clock steps.
type Real struct{}

var monoOrigin = time.Now()

func (Real) Now() time.Time { return time.Now() }

// Monotonic is the time since an arbitrary origin on the monotonic clock.
func (Real) Monotonic() time.Duration { return time.Since(monoOrigin) }

func (Real) NewTicker(d time.Duration) Ticker { return realTicker{time.NewTicker(d)} }

type realTicker struct{ t *time.Ticker }

func (r realTicker) Chan() <-chan time.Time { return r.t.C }
func (r realTicker) Stop()                  { r.t.Stop() }

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
