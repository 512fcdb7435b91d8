package redmetricsconnector // import "github.com/otelcsp/otelcsp/connector/redmetricsconnector"

import (
	"time"

	"github.com/otelcsp/otelcsp/internal/clock"
)

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
	clock.Clock
	Monotonic() time.Duration
}

// Ticker delivers flush ticks.
type Ticker = clock.Ticker
