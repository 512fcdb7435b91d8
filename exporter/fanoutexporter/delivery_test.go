package fanoutexporter

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/exporterhelper"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/otelcsp/otelcsp/exporter/fanoutexporter/internal/metadatatest"
	"github.com/otelcsp/otelcsp/extension/breakerextension"
	"github.com/otelcsp/otelcsp/internal/otlptest"
)

// queued gives cfg an in-memory sending queue with one consumer and no
// batching, so each ConsumeTraces is one request through the fanout.
func queued(cfg *Config) *Config {
	q := exporterhelper.NewDefaultQueueConfig()
	q.NumConsumers = 1
	q.QueueSize = 1000
	q.Sizer = exporterhelper.RequestSizerTypeRequests
	q.Batch = configoptional.None[exporterhelper.BatchConfig]()
	cfg.QueueConfig = configoptional.Some(q)
	cfg.RetryConfig.Enabled = true
	cfg.RetryConfig.InitialInterval = 10 * time.Millisecond
	cfg.RetryConfig.MaxInterval = 20 * time.Millisecond
	// Far shorter than the outage below: with a queue it must not apply.
	cfg.RetryConfig.MaxElapsedTime = 50 * time.Millisecond
	return cfg
}

// observed builds a fanout for traces with its own telemetry and logs.
func observed(t *testing.T, cfg *Config, h component.Host) (exporter.Traces, *componenttest.Telemetry, *observer.ObservedLogs) {
	t.Helper()
	tt := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tt.Shutdown(context.Background())) })
	core, logs := observer.New(zapcore.DebugLevel)
	set := metadatatest.NewSettings(tt)
	set.Logger = zap.New(core)
	exp, err := NewFactory().CreateTraces(context.Background(), set, cfg)
	require.NoError(t, err)
	if h == nil {
		h = componenttest.NewNopHost()
	}
	require.NoError(t, exp.Start(context.Background(), h))
	return exp, tt, logs
}

// counter sums a counter's points whose attributes include want.
func counter(t *testing.T, tt *componenttest.Telemetry, name string, want ...attribute.KeyValue) int64 {
	t.Helper()
	m, err := tt.GetMetric(name)
	if err != nil {
		return 0
	}
	var n int64
	for _, dp := range m.Data.(metricdata.Sum[int64]).DataPoints {
		ok := true
		for _, kv := range want {
			if v, found := dp.Attributes.Value(kv.Key); !found || v != kv.Value {
				ok = false
			}
		}
		if ok {
			n += dp.Value
		}
	}
	return n
}

// gauge is the value of an int gauge with one point (0 when absent).
func gauge(tt *componenttest.Telemetry, name string) int64 {
	m, err := tt.GetMetric(name)
	if err != nil {
		return 0
	}
	if g, ok := m.Data.(metricdata.Gauge[int64]); ok && len(g.DataPoints) == 1 {
		return g.DataPoints[0].Value
	}
	return 0
}

func errorLines(logs *observer.ObservedLogs) []string {
	var out []string
	for _, e := range logs.FilterLevelExact(zapcore.ErrorLevel).All() {
		out = append(out, e.Message)
	}
	return out
}

// Every backend down for far longer than retry_on_failure.max_elapsed_time:
// queued data waits for a backend and is delivered, exactly once, when one
// comes back. Nothing is dropped or refused.
func TestFanoutQueuedDataWaitsForABackend(t *testing.T) {
	servers := []*otlptest.Server{otlptest.Start(t), otlptest.Start(t)}
	for _, s := range servers {
		s.SetMode(otlptest.Fail)
	}
	exp, tt, logs := observed(t, queued(testConfig(servers...)), nil)
	in, total := batches(11, 20, 10, 3)
	for _, td := range in {
		require.NoError(t, exp.ConsumeTraces(context.Background(), td))
	}
	// Many more attempts than fit in max_elapsed_time (50ms at 10-20ms apart).
	require.Eventually(t, func() bool { return servers[0].Requests()+servers[1].Requests() >= 40 },
		10*time.Second, time.Millisecond)
	for _, s := range servers {
		s.SetMode(otlptest.OK)
	}
	require.Eventually(t, func() bool { return len(otlptest.Collect(servers...).Spans) == total }, 10*time.Second, time.Millisecond)
	require.NoError(t, exp.Shutdown(context.Background()))
	requireExactlyOnce(t, otlptest.Collect(servers...), total)
	assert.Zero(t, counter(t, tt, "otelcol_fanout_items_dropped"))
	assert.Zero(t, counter(t, tt, "otelcol_fanout_items_refused"))
	assert.Empty(t, errorLines(logs), "a handled outage logs nothing at ERROR")
}

// Every breaker open, and max_ejected_percent 100 so panic mode does not
// force sends: data waits; at shutdown the drain sends to the owners anyway
// and delivers everything.
func TestFanoutDrainIgnoresOpenBreakers(t *testing.T) {
	servers := []*otlptest.Server{otlptest.Start(t), otlptest.Start(t), otlptest.Start(t)}
	breakers := &fakeBreakers{open: map[string]bool{}, allows: map[string]*atomic.Int64{}}
	for _, s := range servers {
		breakers.setOpen(s.Addr(), true)
	}
	id := component.MustNewID("breaker")
	cfg := queued(testConfig(servers...))
	cfg.Breaker = &id
	cfg.MaxEjectedPercent = 100
	exp, tt, logs := observed(t, cfg, host{Host: componenttest.NewNopHost(), extensions: map[component.ID]component.Component{id: breakers}})
	in, total := batches(12, 10, 10, 3)
	for _, td := range in {
		require.NoError(t, exp.ConsumeTraces(context.Background(), td))
	}
	require.Eventually(t, func() bool {
		return len(logs.FilterMessageSnippet("No backend could take queued items").All()) > 0
	}, 10*time.Second, time.Millisecond)
	assert.Empty(t, otlptest.Collect(servers...).Spans, "open breakers keep data away before shutdown")
	require.NoError(t, exp.Shutdown(context.Background()))
	requireExactlyOnce(t, otlptest.Collect(servers...), total)
	assert.Zero(t, counter(t, tt, "otelcol_fanout_items_dropped"))
	assert.Empty(t, errorLines(logs))
}

// Nothing can be delivered during the drain: at drain_timeout what is left
// is given up, counted, and logged once with the count (not once per
// request), and shutdown returns.
func TestFanoutDrainTimeoutCountsWhatIsLeft(t *testing.T) {
	servers := []*otlptest.Server{otlptest.Start(t)}
	servers[0].SetMode(otlptest.Fail)
	cfg := queued(testConfig(servers...))
	cfg.DrainTimeout = 300 * time.Millisecond
	exp, tt, logs := observed(t, cfg, nil)
	in, total := batches(13, 10, 10, 3)
	for _, td := range in {
		require.NoError(t, exp.ConsumeTraces(context.Background(), td))
	}
	start := time.Now()
	require.NoError(t, exp.Shutdown(context.Background()))
	assert.Less(t, time.Since(start), 5*time.Second)
	assert.Equal(t, int64(total), counter(t, tt, "otelcol_fanout_items_dropped", attribute.String("reason", "drain_timeout")))
	errs := errorLines(logs)
	require.Len(t, errs, 1, "one line for what was left, none per request: %v", errs)
	assert.Contains(t, errs[0], "drain_timeout")
	assert.Equal(t, int64(total), logs.FilterMessageSnippet("drain_timeout").All()[0].ContextMap()["items"])
}

// With max_wait, a batch that waited that long for a backend is dropped and
// counted.
func TestFanoutMaxWaitDropsAndCounts(t *testing.T) {
	servers := []*otlptest.Server{otlptest.Start(t)}
	servers[0].SetMode(otlptest.Fail)
	cfg := queued(testConfig(servers...))
	cfg.MaxWait = 100 * time.Millisecond
	exp, tt, _ := observed(t, cfg, nil)
	in, total := batches(14, 5, 10, 3)
	for _, td := range in {
		require.NoError(t, exp.ConsumeTraces(context.Background(), td))
	}
	require.Eventually(t, func() bool {
		return counter(t, tt, "otelcol_fanout_items_dropped", attribute.String("reason", "max_wait")) == int64(total)
	}, 10*time.Second, time.Millisecond)
	require.NoError(t, exp.Shutdown(context.Background()))
}

// Without a queue the caller waits through the retries, then gets the
// undelivered items back; items_refused counts them once, not per attempt.
func TestFanoutRefusedCountedOnce(t *testing.T) {
	servers := []*otlptest.Server{otlptest.Start(t), otlptest.Start(t)}
	for _, s := range servers {
		s.SetMode(otlptest.Fail)
	}
	cfg := testConfig(servers...)
	cfg.RetryConfig.Enabled = true
	cfg.RetryConfig.InitialInterval = 10 * time.Millisecond
	cfg.RetryConfig.MaxInterval = 20 * time.Millisecond
	cfg.RetryConfig.MaxElapsedTime = 200 * time.Millisecond
	exp, tt, _ := observed(t, cfg, nil)
	in, total := batches(15, 3, 10, 3)
	accepted, refused := sendAll(t, exp, in)
	require.Zero(t, accepted)
	require.Equal(t, total, refused)
	assert.Greater(t, servers[0].Requests(), int64(len(in)), "the fanout retried")
	assert.Equal(t, int64(total), counter(t, tt, "otelcol_fanout_items_refused"))
	require.NoError(t, exp.Shutdown(context.Background()))
}

// A failover that delivers everything logs no ERROR (the backend
// exporter's "Exporting failed ... Try enabling retry_on_failure" advice
// included); the fanout's own line names the backend and counts, once per
// interval however many batches fail.
func TestFanoutHandledFailoverIsQuiet(t *testing.T) {
	servers := []*otlptest.Server{otlptest.Start(t), otlptest.Start(t)}
	servers[0].SetMode(otlptest.Fail)
	exp, _, logs := observed(t, testConfig(servers...), nil)
	in, total := batches(16, 20, 10, 3)
	accepted, _ := sendAll(t, exp, in)
	require.Equal(t, total, accepted)
	require.NoError(t, exp.Shutdown(context.Background()))
	assert.Empty(t, errorLines(logs))
	assert.Empty(t, logs.FilterMessageSnippet("retry_on_failure").All())
	warns := logs.FilterMessageSnippet("Backend failed").All()
	require.Len(t, warns, 1, "rate-limited to one line per interval")
	assert.Equal(t, servers[0].Addr(), warns[0].ContextMap()["backend"])
}

var _ breakerextension.Provider = (*fakeBreakers)(nil)
