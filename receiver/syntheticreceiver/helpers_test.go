package syntheticreceiver

import (
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/otelcsp/otelcsp/internal/clock"
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

// fakeClock is the receiver's clock in tests. The receiver asks it for a
// ticker only to wait (clock.Sleep), so a ticker stands for a wait: on a
// running fakeClock the wait moves the clock forward by its length and
// ends at once, so a run at any rate takes no real time and its timing is
// exact. On a frozen one time never moves, a wait ends only when its
// context does, and each wait is reported on waits.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	frozen bool
	waits  chan time.Duration
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Unix(1_700_000_000, 0).UTC()} }

func newFrozenClock() *fakeClock {
	c := newFakeClock()
	c.frozen = true
	c.waits = make(chan time.Duration, 1)
	return c
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) NewTicker(d time.Duration) clock.Ticker {
	if c.frozen {
		select {
		case c.waits <- d:
		default: // the test reads only the first wait
		}
		return fakeTicker(make(chan time.Time))
	}
	c.Advance(d)
	tick := make(chan time.Time, 1)
	tick <- c.Now()
	return fakeTicker(tick)
}

// Advance moves a running clock forward, as a stall would.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

type fakeTicker chan time.Time

func (t fakeTicker) Chan() <-chan time.Time { return t }
func (fakeTicker) Stop()                    {}
