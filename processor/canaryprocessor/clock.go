package canaryprocessor // import "github.com/otelcsp/otelcsp/processor/canaryprocessor"

import "github.com/otelcsp/otelcsp/internal/clock"

// Clock is the processor's source of time: arrival times (latency, and
// when a gap opened: time.Now's monotonic reading makes loss_after
// immune to wall-clock steps) and the ticks that declare old gaps lost.
// Tests inject a manual clock, so nothing sleeps.
type Clock = clock.Clock

// Ticker delivers ticks.
type Ticker = clock.Ticker
