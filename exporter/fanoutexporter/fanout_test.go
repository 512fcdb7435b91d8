package fanoutexporter

import (
	"context"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/exporterhelper"
	"go.opentelemetry.io/collector/exporter/exportertest"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/otelcsp/otelcsp/exporter/fanoutexporter/internal/metadata"
	"github.com/otelcsp/otelcsp/extension/breakerextension"
	"github.com/otelcsp/otelcsp/internal/otlptest"
)

// testConfig fans out to the given servers over plain gRPC with a short
// per-backend timeout, so that a stalled backend fails over quickly.
func testConfig(servers ...*otlptest.Server) *Config {
	cfg := createDefaultConfig().(*Config)
	static := StaticResolverConfig{}
	for _, s := range servers {
		static.Endpoints = append(static.Endpoints, s.Addr())
	}
	cfg.Resolver.Static = configoptional.Some(static)
	otlp := defaultOTLPConfig()
	otlp.TLS.Insecure = true
	otlp.Timeout = 500 * time.Millisecond
	cfg.Protocol.OTLP = configoptional.Some(otlp)
	cfg.RetryConfig.Enabled = false
	return cfg
}

// host is a component.Host with extensions (componenttest's has none).
type host struct {
	component.Host
	extensions map[component.ID]component.Component
}

func (h host) GetExtensions() map[component.ID]component.Component { return h.extensions }

func startTraces(t *testing.T, cfg *Config, h component.Host) exporter.Traces {
	t.Helper()
	exp, err := NewFactory().CreateTraces(context.Background(), exportertest.NewNopSettings(metadata.Type), cfg)
	require.NoError(t, err)
	if h == nil {
		h = componenttest.NewNopHost()
	}
	require.NoError(t, exp.Start(context.Background(), h))
	t.Cleanup(func() { require.NoError(t, exp.Shutdown(context.Background())) })
	return exp
}

// sendAll sends batches of traces and returns how many spans were
// accepted and how many were refused (with the error's data).
func sendAll(t *testing.T, exp exporter.Traces, batches []ptrace.Traces) (accepted, refused int) {
	t.Helper()
	for _, td := range batches {
		n := td.SpanCount()
		err := exp.ConsumeTraces(context.Background(), td)
		if err == nil {
			accepted += n
			continue
		}
		require.False(t, consumererror.IsPermanent(err), "a backend outage must give a retryable error: %v", err)
		var te consumererror.Traces
		require.ErrorAs(t, err, &te, "the error must carry the spans not delivered")
		refused += te.Data().SpanCount()
		accepted += n - te.Data().SpanCount()
	}
	return accepted, refused
}

func batches(seed uint64, count, tracesPer, spansPer int) ([]ptrace.Traces, int) {
	rng := rand.New(rand.NewPCG(seed, 99))
	out := make([]ptrace.Traces, count)
	for i := range out {
		out[i] = genTraces(rng, tracesPer, spansPer)
	}
	return out, count * tracesPer * spansPer
}

func requireExactlyOnce(t *testing.T, d otlptest.Delivery, want int) {
	t.Helper()
	require.Len(t, d.Spans, want, "spans lost")
	for id, c := range d.Spans {
		require.Equal(t, 1, c, "span %s delivered %d times", id, c)
	}
}

func TestFanoutDeliversEveryTraceWholeToOneBackend(t *testing.T) {
	servers := []*otlptest.Server{otlptest.Start(t), otlptest.Start(t), otlptest.Start(t)}
	exp := startTraces(t, testConfig(servers...), nil)
	in, total := batches(1, 30, 40, 5)
	accepted, refused := sendAll(t, exp, in)
	require.Equal(t, total, accepted)
	require.Zero(t, refused)

	d := otlptest.Collect(servers...)
	requireExactlyOnce(t, d, total)
	for id, homes := range d.TraceHomes {
		require.Equal(t, 1, homes, "trace %s split across backends", id)
	}
	for i, s := range servers {
		assert.Greater(t, s.SpanCount(), total/6, "backend %d got too little", i)
	}
}

func TestFanoutFailsOverAroundFailingAndStalledBackends(t *testing.T) {
	for _, mode := range []otlptest.Mode{otlptest.Fail, otlptest.Stall} {
		t.Run(map[otlptest.Mode]string{otlptest.Fail: "failing", otlptest.Stall: "stalled"}[mode], func(t *testing.T) {
			servers := []*otlptest.Server{otlptest.Start(t), otlptest.Start(t), otlptest.Start(t)}
			servers[1].SetMode(mode)
			t.Cleanup(func() { servers[1].SetMode(otlptest.OK) })
			exp := startTraces(t, testConfig(servers...), nil)
			in, total := batches(2, 6, 40, 4)
			accepted, refused := sendAll(t, exp, in)
			require.Equal(t, total, accepted)
			require.Zero(t, refused)
			assert.Zero(t, servers[1].SpanCount())
			d := otlptest.Collect(servers...)
			requireExactlyOnce(t, d, total)
			for id, homes := range d.TraceHomes {
				require.Equal(t, 1, homes, "trace %s split across backends", id)
			}
		})
	}
}

func TestFanoutKillAndRestartBackendWhileDataFlows(t *testing.T) {
	servers := []*otlptest.Server{otlptest.Start(t), otlptest.Start(t), otlptest.Start(t)}
	exp := startTraces(t, testConfig(servers...), nil)
	in, total := batches(3, 60, 20, 4)
	accepted := 0
	for i, td := range in {
		switch i {
		case 15:
			servers[0].Stop()
		case 40:
			servers[0].Restart()
		}
		a, r := sendAll(t, exp, []ptrace.Traces{td})
		require.Zero(t, r, "batch %d refused though two backends were up", i)
		accepted += a
	}
	require.Equal(t, total, accepted)
	requireExactlyOnce(t, otlptest.Collect(servers...), total)
}

func TestFanoutReturnsRetryableErrorWhenNoBackendCanTakeData(t *testing.T) {
	servers := []*otlptest.Server{otlptest.Start(t), otlptest.Start(t)}
	for _, s := range servers {
		s.SetMode(otlptest.Fail)
	}
	exp := startTraces(t, testConfig(servers...), nil)
	in, total := batches(4, 3, 10, 3)
	accepted, refused := sendAll(t, exp, in)
	assert.Zero(t, accepted)
	assert.Equal(t, total, refused)
	assert.Empty(t, otlptest.Collect(servers...).Spans)
}

// fakeBreakers stands in for the breaker extension with states a test sets.
type fakeBreakers struct {
	mu     sync.Mutex
	open   map[string]bool
	allows map[string]*atomic.Int64
}

func (f *fakeBreakers) Breaker(key string) breakerextension.Breaker {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.allows[key] == nil {
		f.allows[key] = &atomic.Int64{}
	}
	return fakeBreaker{f: f, key: key}
}

func (f *fakeBreakers) setOpen(key string, open bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.open[key] = open
}

type fakeBreaker struct {
	f   *fakeBreakers
	key string
}

func (b fakeBreaker) Allow() (breakerextension.Permit, error) {
	if b.State() == breakerextension.StateOpen {
		return breakerextension.Permit{}, breakerextension.ErrOpen
	}
	b.f.mu.Lock()
	b.f.allows[b.key].Add(1)
	b.f.mu.Unlock()
	return breakerextension.Permit{}, nil
}

func (b fakeBreaker) State() breakerextension.State {
	b.f.mu.Lock()
	defer b.f.mu.Unlock()
	if b.f.open[b.key] {
		return breakerextension.StateOpen
	}
	return breakerextension.StateClosed
}

func (*fakeBreakers) Start(context.Context, component.Host) error { return nil }
func (*fakeBreakers) Shutdown(context.Context) error              { return nil }

func TestFanoutEjectsBackendsWithOpenBreakers(t *testing.T) {
	servers := []*otlptest.Server{otlptest.Start(t), otlptest.Start(t), otlptest.Start(t), otlptest.Start(t)}
	breakers := &fakeBreakers{open: map[string]bool{}, allows: map[string]*atomic.Int64{}}
	id := component.MustNewID("breaker")
	cfg := testConfig(servers...)
	cfg.Breaker = &id
	exp := startTraces(t, cfg, host{Host: componenttest.NewNopHost(), extensions: map[component.ID]component.Component{id: breakers}})

	// One of four open (25% <= 50%): ejected, nothing reaches it.
	breakers.setOpen(servers[0].Addr(), true)
	in, total := batches(5, 10, 30, 3)
	accepted, _ := sendAll(t, exp, in)
	require.Equal(t, total, accepted)
	assert.Zero(t, servers[0].Requests(), "an ejected backend was called")
	requireExactlyOnce(t, otlptest.Collect(servers...), total)

	// It closes again: its keys come back.
	breakers.setOpen(servers[0].Addr(), false)
	in, _ = batches(6, 5, 30, 3)
	sendAll(t, exp, in)
	assert.Positive(t, servers[0].SpanCount(), "a closed backend got its keys back")

	// Three of four open (75% > 50%): panic mode sends to the owners anyway.
	for _, s := range servers[:3] {
		breakers.setOpen(s.Addr(), true)
	}
	before := servers[0].SpanCount()
	in, _ = batches(7, 5, 30, 3)
	accepted, refused := sendAll(t, exp, in)
	assert.Zero(t, refused)
	assert.Equal(t, 5*30*3, accepted)
	assert.Greater(t, servers[0].SpanCount(), before, "panic mode should still use open backends")
}

func TestFanoutMissingBreakerExtensionFailsStart(t *testing.T) {
	s := otlptest.Start(t)
	id := component.MustNewID("breaker")
	cfg := testConfig(s)
	cfg.Breaker = &id
	exp, err := NewFactory().CreateTraces(context.Background(), exportertest.NewNopSettings(metadata.Type), cfg)
	require.NoError(t, err)
	err = exp.Start(context.Background(), componenttest.NewNopHost())
	require.ErrorContains(t, err, `"breaker"`)
	require.NoError(t, exp.Shutdown(context.Background()))
}

func TestFanoutEmptyBackendSetRefuses(t *testing.T) {
	cfg := testConfig()
	f, err := newFanout(exportertest.NewNopSettings(metadata.Type), cfg, tracesOps(cfg, keyTraceID, newSubExporter(cfg.Protocol)))
	require.NoError(t, err)
	err = f.push(context.Background(), genTraces(rand.New(rand.NewPCG(1, 1)), 2, 2))
	require.ErrorIs(t, err, errNoBackend)
	var te consumererror.Traces
	require.ErrorAs(t, err, &te)
	assert.Equal(t, 4, te.Data().SpanCount())
}

func TestFanoutLifecycle(t *testing.T) {
	s := otlptest.Start(t)
	cfg := testConfig(s)
	f := NewFactory()
	set := exportertest.NewNopSettings(metadata.Type)
	for _, create := range []func() (component.Component, error){
		func() (component.Component, error) { return f.CreateTraces(context.Background(), set, cfg) },
		func() (component.Component, error) { return f.CreateMetrics(context.Background(), set, cfg) },
		func() (component.Component, error) { return f.CreateLogs(context.Background(), set, cfg) },
	} {
		// Shutdown without start.
		c, err := create()
		require.NoError(t, err)
		require.NoError(t, c.Shutdown(context.Background()))
		// Start, shutdown twice.
		c, err = create()
		require.NoError(t, err)
		require.NoError(t, c.Start(context.Background(), componenttest.NewNopHost()))
		require.NoError(t, c.Shutdown(context.Background()))
		require.NoError(t, c.Shutdown(context.Background()))
	}
}

func TestFanoutInvalidKeyForSignal(t *testing.T) {
	cfg := testConfig()
	cfg.RoutingKey = keyTraceID
	_, err := NewFactory().CreateMetrics(context.Background(), exportertest.NewNopSettings(metadata.Type), cfg)
	require.ErrorContains(t, err, `"routing_key"`)
}

func TestFanoutFollowsBackendSetChangesWhileDataFlows(t *testing.T) {
	servers := []*otlptest.Server{otlptest.Start(t), otlptest.Start(t), otlptest.Start(t)}
	path := filepath.Join(t.TempDir(), "backends.txt")
	write := func(ss ...*otlptest.Server) {
		var lines []string
		for _, s := range ss {
			lines = append(lines, s.Addr())
		}
		require.NoError(t, os.WriteFile(path+".tmp", []byte(strings.Join(lines, "\n")), 0o600))
		require.NoError(t, os.Rename(path+".tmp", path))
	}
	write(servers...)
	cfg := testConfig(servers...)
	cfg.Resolver.Static = configoptional.None[StaticResolverConfig]()
	cfg.Resolver.File = configoptional.Some(FileResolverConfig{Path: path, Interval: 10 * time.Millisecond})
	exp, tt, _ := observed(t, cfg, nil)
	t.Cleanup(func() { require.NoError(t, exp.Shutdown(context.Background())) })
	// backends waits until the resolver has applied a set of n backends.
	backends := func(n int64) {
		require.Eventually(t, func() bool { return gauge(tt, "otelcol_fanout_backends") == n }, 10*time.Second, time.Millisecond)
	}

	in, total := batches(8, 40, 20, 3)
	accepted := 0
	var removedCount int
	for i, td := range in {
		switch i {
		case 10:
			write(servers[0], servers[1]) // remove the third backend
			backends(2)
			removedCount = servers[2].SpanCount()
		case 25:
			assert.Equal(t, removedCount, servers[2].SpanCount(), "a removed backend still got data")
			write(servers...) // bring it back
			backends(3)
		}
		a, r := sendAll(t, exp, []ptrace.Traces{td})
		require.Zero(t, r)
		accepted += a
	}
	require.Equal(t, total, accepted)
	requireExactlyOnce(t, otlptest.Collect(servers...), total)
	assert.Greater(t, servers[2].SpanCount(), removedCount, "a returning backend gets its keys back")
}

// With a sending queue, ConsumeTraces returns once the batch is queued;
// Shutdown must deliver everything still queued before returning.
func TestFanoutShutdownDrainsQueue(t *testing.T) {
	servers := []*otlptest.Server{otlptest.Start(t), otlptest.Start(t), otlptest.Start(t)}
	cfg := testConfig(servers...)
	q := exporterhelper.NewDefaultQueueConfig()
	q.NumConsumers = 1
	q.QueueSize = 1000
	q.Sizer = exporterhelper.RequestSizerTypeRequests
	q.Batch = configoptional.None[exporterhelper.BatchConfig]()
	cfg.QueueConfig = configoptional.Some(q)
	exp, err := NewFactory().CreateTraces(context.Background(), exportertest.NewNopSettings(metadata.Type), cfg)
	require.NoError(t, err)
	require.NoError(t, exp.Start(context.Background(), componenttest.NewNopHost()))

	in, total := batches(10, 50, 20, 3)
	for _, td := range in {
		require.NoError(t, exp.ConsumeTraces(context.Background(), td))
	}
	require.NoError(t, exp.Shutdown(context.Background()))
	requireExactlyOnce(t, otlptest.Collect(servers...), total)
}
