package fanoutexporter

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/extension/extensiontest"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/otelcsp/otelcsp/extension/breakerextension"
)

// TestFanoutWithBreakerExtension runs the fanout with the real breaker
// extension against real OTLP servers: a failing backend is cut off after
// a few failures (its keys fail over), gets no calls while open, and once
// it recovers a half-open probe brings it, and its keys, back.
func TestFanoutWithBreakerExtension(t *testing.T) {
	servers := []*otlpServer{startOTLPServer(t), startOTLPServer(t), startOTLPServer(t)}

	bf := breakerextension.NewFactory()
	bcfg := bf.CreateDefaultConfig().(*breakerextension.Config)
	bcfg.ConsecutiveFailures = 2
	bcfg.OpenDuration = 300 * time.Millisecond
	bcfg.MaxOpenDuration = 300 * time.Millisecond
	bcfg.Jitter = 0
	bcfg.SuccessThreshold = 1
	id := component.MustNewID("breaker")
	ext, err := bf.Create(context.Background(), extensiontest.NewNopSettings(bf.Type()), bcfg)
	require.NoError(t, err)
	h := host{Host: componenttest.NewNopHost(), extensions: map[component.ID]component.Component{id: ext}}
	require.NoError(t, ext.Start(context.Background(), h))
	t.Cleanup(func() { require.NoError(t, ext.Shutdown(context.Background())) })
	provider, err := breakerextension.FromHost(h, id)
	require.NoError(t, err)

	cfg := testConfig(servers...)
	cfg.Breaker = &id
	exp := startTraces(t, cfg, h)

	failing := servers[1]
	failing.setMode(modeFail)
	in, total := batches(9, 60, 10, 3)
	accepted := 0
	send := func(from, to int) {
		for _, td := range in[from:to] {
			a, r := sendAll(t, exp, []ptrace.Traces{td})
			require.Zero(t, r, "two healthy backends were left")
			accepted += a
		}
	}

	send(0, 5)
	require.Equal(t, breakerextension.StateOpen, provider.Breaker(failing.addr).State(), "two failures in a row open the breaker")
	calls := failing.requests.Load()
	send(5, 25)
	assert.Equal(t, calls, failing.requests.Load(), "an open breaker keeps calls away")

	failing.setMode(modeOK)
	require.Eventually(t, func() bool {
		return provider.Breaker(failing.addr).State() != breakerextension.StateOpen
	}, 5*time.Second, 10*time.Millisecond, "the breaker half-opens after open_duration")
	send(25, 60)
	assert.Equal(t, breakerextension.StateClosed, provider.Breaker(failing.addr).State(), "a successful probe closes it")
	assert.Positive(t, failing.spanCount(), "the recovered backend got its keys back")

	require.Equal(t, total, accepted)
	requireExactlyOnce(t, collect(servers...), total)
}
