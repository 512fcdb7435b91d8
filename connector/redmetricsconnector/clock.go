package redmetricsconnector // import "github.com/otelcsp/otelcsp/connector/redmetricsconnector"

import "time"

// Clock is the connector's source of time. Tests inject a manual clock so
// flush timing, start timestamps and expiration are checked without
// sleeping.
//
// Two readings, for two purposes: Now is the wall clock, written into data
// point timestamps; Monotonic measures how long a series has been idle
// (series_expiration) and paces the refusal log, so a wall-clock step (NTP,
// a VM resumed, an operator's date -s) neither expires every series at once
// nor keeps idle ones forever.
type Clock interface {
	Now() time.Time
	// Monotonic is the time elapsed since a fixed, arbitrary origin, from
	// the monotonic clock: wall-clock steps do not move it.
	Monotonic() time.Duration
	NewTicker(d time.Duration) Ticker
}

// Ticker delivers flush ticks.
type Ticker interface {
	Chan() <-chan time.Time
	Stop()
}

type realClock struct{}

// monoOrigin carries the process's monotonic clock reading; time.Since
// subtracts monotonic readings, never wall times.
var monoOrigin = time.Now()

func (realClock) Now() time.Time { return time.Now() }

func (realClock) Monotonic() time.Duration { return time.Since(monoOrigin) }

func (realClock) NewTicker(d time.Duration) Ticker { return realTicker{time.NewTicker(d)} }

type realTicker struct{ t *time.Ticker }

func (r realTicker) Chan() <-chan time.Time { return r.t.C }
func (r realTicker) Stop()                  { r.t.Stop() }
