package fanoutexporter

import (
	"context"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/otelcsp/otelcsp/internal/otlptest"
)

// After a backend was gone for a while, the fanout's connection to it is
// back within about a second of the backend's return; gRPC's default
// backoff would wait for its next dial, 3s or more after a 6s outage.
func TestBackendConnectionReturnsQuickly(t *testing.T) {
	if testing.Short() {
		t.Skip("holds an outage for 6s")
	}
	s := otlptest.Start(t)
	exp := startTraces(t, testConfig(s), nil)
	send := func() error {
		return exp.ConsumeTraces(context.Background(), genTraces(rand.New(rand.NewPCG(7, 7)), 1, 1))
	}
	require.NoError(t, send())
	s.Stop()
	// The outage's length is what this test is about (gRPC's own backoff
	// grows with it); calls keep the channel redialling meanwhile.
	outage := time.NewTicker(100 * time.Millisecond)
	defer outage.Stop()
	for down := time.Now(); time.Since(down) < 6*time.Second; <-outage.C {
		require.Error(t, send())
	}
	s.Restart()
	back := time.Now()
	require.Eventually(t, func() bool { return send() == nil }, 10*time.Second, 20*time.Millisecond,
		"the backend takes data again")
	took := time.Since(back)
	t.Logf("delivering again %v after the backend came back", took.Round(time.Millisecond))
	assert.Less(t, took, 2*time.Second)
}
