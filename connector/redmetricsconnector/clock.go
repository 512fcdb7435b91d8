package redmetricsconnector // import "github.com/otelcsp/otelcsp/connector/redmetricsconnector"

import "time"

// Clock is the connector's source of time: flush ticks, data point
// timestamps and series ages. Tests inject a manual clock so flush timing,
// start timestamps and expiration are checked without sleeping.
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
