package deltamergeprocessor // import "github.com/otelcsp/otelcsp/processor/deltamergeprocessor"

import "time"

// Clock is the processor's source of time: flush ticks, the flush time
// (the timestamp of every emitted point), stream start times and ages.
// Tests inject a manual clock, so flushes and expiry are checked without
// sleeping.
type Clock interface {
	Now() time.Time
	NewTicker(d time.Duration) Ticker
}

// Ticker delivers flush ticks.
type Ticker interface {
	Chan() <-chan time.Time
	Stop()
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

func (realClock) NewTicker(d time.Duration) Ticker { return realTicker{time.NewTicker(d)} }

type realTicker struct{ t *time.Ticker }

func (r realTicker) Chan() <-chan time.Time { return r.t.C }
func (r realTicker) Stop()                  { r.t.Stop() }
