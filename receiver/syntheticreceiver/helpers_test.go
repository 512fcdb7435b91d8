package syntheticreceiver

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/otelcsp/otelcsp/internal/clock/clocktest"
)

// newTestGenerator compiles services (nil: the default topology) into a
// generator seeded with seed.
func newTestGenerator(tb testing.TB, services []ServiceConfig, seed uint64, canary bool) *generator {
	tb.Helper()
	if services == nil {
		var err error
		services, err = defaultServices()
		require.NoError(tb, err)
	}
	genID := ""
	if canary {
		genID = "test-generator"
	}
	require.NoError(tb, validateServices(services))
	return newGenerator(compileTopology(services, genID), seed, canary)
}

// newFakeClock is the receiver's clock in tests. The receiver asks it for
// a ticker only to wait (clock.Sleep), so each wait moves the clock forward
// by its length and ends at once: a run at any rate takes no real time and
// its timing is exact.
func newFakeClock() *clocktest.Fake {
	c := newFrozenClock()
	c.AutoAdvance()
	return c
}

// newFrozenClock is a clock on which time never moves: a wait ends only
// when its context does, and the test sees it with WaitTickers.
func newFrozenClock() *clocktest.Fake { return clocktest.New(time.Unix(1_700_000_000, 0).UTC(), 0) }
