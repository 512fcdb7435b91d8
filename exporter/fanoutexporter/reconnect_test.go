package fanoutexporter

import (
	"context"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// After a backend was gone for a while, the fanout's connection to it is
// back within about a second of the backend's return; gRPC's default
// backoff would wait for its next dial, 3s or more after a 6s outage.
func TestBackendConnectionReturnsQuickly(t *testing.T) {
	if testing.Short() {
		t.Skip("holds an outage for 6s")
	}
	s := startOTLPServer(t)
	exp := startTraces(t, testConfig(s), nil)
	send := func() error {
		return exp.ConsumeTraces(context.Background(), genTraces(rand.New(rand.NewPCG(7, 7)), 1, 1))
	}
	require.NoError(t, send())
	s.stop()
	down := time.Now()
	for time.Since(down) < 6*time.Second { // calls keep the channel redialling
		require.Error(t, send())
		time.Sleep(100 * time.Millisecond)
	}
	s.restart()
	back := time.Now()
	var err error
	for time.Since(back) < 10*time.Second {
		if err = send(); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	require.NoError(t, err)
	took := time.Since(back)
	t.Logf("delivering again %v after the backend came back", took.Round(time.Millisecond))
	assert.Less(t, took, 2*time.Second)
}
