package canaryprocessor // import "github.com/otelcsp/otelcsp/processor/canaryprocessor"

import "time"

// Clock is the processor's source of time: arrival times (latency, and
// when a gap opened: time.Now's monotonic reading makes loss_after
// immune to wall-clock steps) and the ticks that declare old gaps lost.
// Tests inject a manual clock, so nothing sleeps.
type Clock interface {
	Now() time.Time
	NewTicker(d time.Duration) Ticker
}

// Ticker delivers sweep ticks.
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
