package deltamergeprocessor // import "github.com/otelcsp/otelcsp/processor/deltamergeprocessor"

import "github.com/otelcsp/otelcsp/internal/clock"

// Clock is the processor's source of time: flush ticks, the flush time
// (the timestamp of every emitted point), stream start times and ages.
// Tests inject a manual clock, so flushes and expiry are checked without
// sleeping.
type Clock = clock.Clock

// Ticker delivers ticks.
type Ticker = clock.Ticker
