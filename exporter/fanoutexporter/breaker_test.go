package fanoutexporter

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/configmiddleware"
	"go.opentelemetry.io/collector/extension/extensiontest"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/otelcsp/otelcsp/extension/breakerextension"
	"github.com/otelcsp/otelcsp/internal/otlptest"
)

// TestFanoutWithBreakerExtension runs the fanout with the real breaker
// extension against real OTLP servers: a failing backend is cut off after
// a few failures (its keys fail over), gets no calls while open, and once
// it recovers a half-open probe brings it, and its keys, back.
func TestFanoutWithBreakerExtension(t *testing.T) {
	servers := []*otlptest.Server{otlptest.Start(t), otlptest.Start(t), otlptest.Start(t)}

	bcfg := breakerextension.NewFactory().CreateDefaultConfig().(*breakerextension.Config)
	bcfg.ConsecutiveFailures = 2
	// Long enough that the 20 batches sent while it is open take less, on a
	// loaded machine too (300ms was not).
	bcfg.OpenDuration = 2 * time.Second
	bcfg.MaxOpenDuration = 2 * time.Second
	bcfg.Jitter = 0
	bcfg.SuccessThreshold = 1
	id, h, provider := startBreakers(t, bcfg)

	cfg := testConfig(servers...)
	cfg.Breaker = &id
	exp := startTraces(t, cfg, h)

	failing := servers[1]
	failing.SetMode(otlptest.Fail)
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
	require.Equal(t, breakerextension.StateOpen, provider.Breaker(failing.Addr()).State(), "two failures in a row open the breaker")
	calls := failing.Requests()
	send(5, 25)
	assert.Equal(t, calls, failing.Requests(), "an open breaker keeps calls away")

	failing.SetMode(otlptest.OK)
	require.Eventually(t, func() bool {
		return provider.Breaker(failing.Addr()).State() != breakerextension.StateOpen
	}, 5*time.Second, 10*time.Millisecond, "the breaker half-opens after open_duration")
	send(25, 60)
	assert.Equal(t, breakerextension.StateClosed, provider.Breaker(failing.Addr()).State(), "a successful probe closes it")
	assert.Positive(t, failing.SpanCount(), "the recovered backend got its keys back")

	require.Equal(t, total, accepted)
	requireExactlyOnce(t, otlptest.Collect(servers...), total)
}

// TestFanoutAndMiddlewareShareABreaker guards each backend with the same
// breaker twice: the fanout's `breaker:` and the same extension in
// protocol.otlp's client middlewares (both use the endpoint as the key).
// Each call is counted once, and once the backend recovers the fanout's
// half-open probe reaches it (the middleware recognises the call the fanout
// admitted instead of refusing it for want of a second probe permit) and
// closes the breaker.
func TestFanoutAndMiddlewareShareABreaker(t *testing.T) {
	servers := []*otlptest.Server{otlptest.Start(t), otlptest.Start(t), otlptest.Start(t)}

	bcfg := breakerextension.NewFactory().CreateDefaultConfig().(*breakerextension.Config)
	bcfg.ConsecutiveFailures = 2
	bcfg.FailureRatio = 0
	bcfg.OpenDuration = 200 * time.Millisecond
	bcfg.MaxOpenDuration = 200 * time.Millisecond
	bcfg.Jitter = 0
	bcfg.SuccessThreshold = 1
	id, h, provider := startBreakers(t, bcfg)

	cfg := testConfig(servers...)
	cfg.Breaker = &id
	otlp := cfg.Protocol.OTLP.Get()
	otlp.Middlewares = []configmiddleware.Config{{ID: id}}
	exp := startTraces(t, cfg, h)

	failing := servers[1]
	failing.SetMode(otlptest.Fail)
	in, total := batches(11, 400, 10, 3)
	accepted, next := 0, 0
	send := func(n int) {
		n = min(n, len(in)-next)
		for _, td := range in[next : next+n] {
			a, r := sendAll(t, exp, []ptrace.Traces{td})
			require.Zero(t, r, "two healthy backends were left")
			accepted += a
		}
		next += n
	}
	send(5)
	b := provider.Breaker(failing.Addr())
	require.Equal(t, breakerextension.StateOpen, b.State())
	snap := keySnapshot(t, h.extensions[id], failing.Addr())
	assert.Equal(t, uint64(failing.Requests()), snap.Failure, "each call to the backend counts once, not once per guard")
	assert.Zero(t, snap.Ignored, "no guard refused a call the other admitted")

	failing.SetMode(otlptest.OK)
	require.Eventually(t, func() bool {
		send(1)
		return b.State() == breakerextension.StateClosed
	}, 5*time.Second, 20*time.Millisecond, "the probe reaches the recovered backend and closes the breaker")
	send(len(in) - next)
	assert.Positive(t, failing.SpanCount(), "the recovered backend got its keys back")
	require.Equal(t, total, accepted)
	requireExactlyOnce(t, otlptest.Collect(servers...), total)
}

func keySnapshot(t *testing.T, ext component.Component, key string) breakerextension.KeySnapshot {
	t.Helper()
	for _, s := range ext.(breakerextension.Controller).Snapshot() {
		if s.Key == key {
			return s
		}
	}
	t.Fatalf("no breaker for %s", key)
	return breakerextension.KeySnapshot{}
}

// startBreakers starts a breaker extension with cfg and returns its ID, a
// host that holds it, and its Provider.
func startBreakers(t *testing.T, cfg *breakerextension.Config) (component.ID, host, breakerextension.Provider) {
	t.Helper()
	bf := breakerextension.NewFactory()
	id := component.MustNewID("breaker")
	ext, err := bf.Create(context.Background(), extensiontest.NewNopSettings(bf.Type()), cfg)
	require.NoError(t, err)
	h := host{Host: componenttest.NewNopHost(), extensions: map[component.ID]component.Component{id: ext}}
	require.NoError(t, ext.Start(context.Background(), h))
	t.Cleanup(func() { require.NoError(t, ext.Shutdown(context.Background())) })
	provider, err := breakerextension.FromHost(h, id)
	require.NoError(t, err)
	return id, h, provider
}
