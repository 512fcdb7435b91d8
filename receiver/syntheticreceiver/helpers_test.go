package syntheticreceiver

import (
	"testing"

	"github.com/stretchr/testify/require"
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
