package syntheticreceiver

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/collector/receiver/receivertest"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/metric/metricdata/metricdatatest"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/otelcsp/otelcsp/internal/clock"
	"github.com/otelcsp/otelcsp/receiver/syntheticreceiver/internal/metadatatest"
)

// receiverAttrs are the attributes of the own metrics of a receiver made
// with metadatatest.NewSettings.
var receiverAttrs = attribute.NewSet(attribute.String("receiver", "synthetic"))

// waitDone waits for the generating goroutine to finish (max_traces reached).
func waitDone(t *testing.T, r *syntheticReceiver) {
	t.Helper()
	select {
	case <-r.done:
	case <-time.After(10 * time.Second):
		t.Fatal("generation did not finish")
	}
}

func testConfig(rate float64, batch int, maxTraces int64) *Config {
	cfg := createDefaultConfig().(*Config)
	cfg.Rate, cfg.BatchSize, cfg.MaxTraces, cfg.Seed = rate, batch, maxTraces, 1
	return cfg
}

func TestRateIsSmoothWithFakeClock(t *testing.T) {
	for _, tc := range []struct {
		rate  float64
		batch int
		total int64
	}{
		{rate: 1000, batch: 10, total: 5000},
		{rate: 3, batch: 1, total: 30},
		{rate: 250000, batch: 100, total: 100000},
	} {
		clk := newFakeClock()
		var calls []time.Time
		var traces []int
		next, err := consumer.NewTraces(func(_ context.Context, td ptrace.Traces) error {
			calls = append(calls, clk.Now()) // only the run goroutine calls this
			traces = append(traces, len(byTrace(td)))
			return nil
		})
		require.NoError(t, err)
		r, err := newReceiver(testConfig(tc.rate, tc.batch, tc.total), receivertest.NewNopSettings(typ), clk)
		require.NoError(t, err)
		r.nextTraces = next
		start := clk.Now()
		require.NoError(t, r.Start(context.Background(), componenttest.NewNopHost()))
		waitDone(t, r)
		require.NoError(t, r.Shutdown(context.Background()))

		sum := 0
		for _, n := range traces {
			sum += n
		}
		assert.Equal(t, int(tc.total), sum, "max_traces traces in all")
		// The first batch goes out at once, then one batch every batch/rate.
		interval := time.Duration(float64(tc.batch) / tc.rate * float64(time.Second))
		assert.Equal(t, start, calls[0])
		for i := 1; i < len(calls); i++ {
			assert.InDelta(t, float64(interval), float64(calls[i].Sub(calls[i-1])), float64(2*time.Microsecond),
				"batch %d of rate %v", i, tc.rate)
		}
		want := time.Duration(float64(tc.total-int64(tc.batch)) / tc.rate * float64(time.Second))
		assert.InDelta(t, float64(want), float64(calls[len(calls)-1].Sub(start)), float64(time.Millisecond))
	}
}

func TestTokenBucketBoundsCatchUp(t *testing.T) {
	clk := newFakeClock()
	b := newTokenBucket(clk, 100, 1) // burst = max(100/10, 1) = 10
	ctx := context.Background()
	require.NoError(t, b.take(ctx, 1)) // the initial batch is free
	clk.Advance(time.Hour)             // a long stall
	start := clk.Now()
	for range 10 {
		require.NoError(t, b.take(ctx, 1))
	}
	assert.Equal(t, start, clk.Now(), "a burst's worth is taken without waiting")
	require.NoError(t, b.take(ctx, 1))
	assert.Equal(t, 10*time.Millisecond, clk.Now().Sub(start), "then the rate applies again")

	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	assert.ErrorIs(t, b.take(cancelled, 1), context.Canceled)
}

func TestRealClockPacesToMaxTraces(t *testing.T) {
	// The real clock's waits end: a run to max_traces finishes with every
	// trace. How long it takes is the fake clock's to check (above), not
	// this machine's.
	sink := &consumertest.TracesSink{}
	r, err := newReceiver(testConfig(10000, 4, 200), receivertest.NewNopSettings(typ), clock.Real{})
	require.NoError(t, err)
	r.nextTraces = sink
	require.NoError(t, r.Start(context.Background(), componenttest.NewNopHost()))
	waitDone(t, r)
	require.NoError(t, r.Shutdown(context.Background()))
	assert.Equal(t, 200, len(traceIDs(sink.AllTraces())))
}

func traceIDs(all []ptrace.Traces) map[pcommon.TraceID]bool {
	ids := map[pcommon.TraceID]bool{}
	for _, td := range all {
		for id := range byTrace(td) {
			ids[id] = true
		}
	}
	return ids
}

// rootSequences returns the synthetic.sequence of every root span in all.
func rootSequences(t *testing.T, all []ptrace.Traces) []int64 {
	var seqs []int64
	for _, td := range all {
		for _, spans := range byTrace(td) {
			for _, s := range spans {
				if s.ParentSpanID().IsEmpty() {
					v, ok := s.Attributes().Get(attrSequence)
					require.True(t, ok)
					seqs = append(seqs, v.Int())
				}
			}
		}
	}
	slices.Sort(seqs)
	return seqs
}

func TestCanaryGapsAreCountedRefusals(t *testing.T) {
	clk := newFakeClock()
	tt := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tt.Shutdown(context.Background())) })
	set := metadatatest.NewSettings(tt)
	core, logs := observer.New(zapcore.InfoLevel)
	set.Logger = zap.New(core)

	cfg := testConfig(1000, 5, 300)
	cfg.Canary = CanaryConfig{Enabled: true, GeneratorID: "canary-1"}
	var accepted []ptrace.Traces
	calls := 0
	next, err := consumer.NewTraces(func(_ context.Context, td ptrace.Traces) error {
		calls++
		if calls%3 == 0 {
			return errors.New("queue is full")
		}
		accepted = append(accepted, td)
		return nil
	})
	require.NoError(t, err)
	r, err := newReceiver(cfg, set, clk)
	require.NoError(t, err)
	r.nextTraces = next
	require.NoError(t, r.Start(context.Background(), componenttest.NewNopHost()))
	waitDone(t, r)
	require.NoError(t, r.Shutdown(context.Background()))

	seqs := rootSequences(t, accepted)
	refusedBatches := calls / 3
	refused := refusedBatches * 5
	require.Equal(t, 300-refused, len(seqs))
	// Strictly increasing and within 1..300; the missing numbers are the
	// refused traces, no more and no less.
	seen := map[int64]bool{}
	for i, s := range seqs {
		if i > 0 {
			require.Greater(t, s, seqs[i-1])
		}
		require.True(t, s >= 1 && s <= 300)
		seen[s] = true
	}
	gaps := 0
	for s := int64(1); s <= 300; s++ {
		if !seen[s] {
			gaps++
		}
	}
	assert.Equal(t, refused, gaps)

	for _, td := range accepted {
		for i := range td.ResourceSpans().Len() {
			v, ok := td.ResourceSpans().At(i).Resource().Attributes().Get(attrGenerator)
			require.True(t, ok)
			assert.Equal(t, "canary-1", v.Str())
		}
	}

	metadatatest.AssertEqualSyntheticTracesRefused(t, tt, []metricdata.DataPoint[int64]{{Value: int64(refused), Attributes: receiverAttrs}}, metricdatatest.IgnoreTimestamp())
	metadatatest.AssertEqualSyntheticTracesGenerated(t, tt, []metricdata.DataPoint[int64]{{Value: 300, Attributes: receiverAttrs}}, metricdatatest.IgnoreTimestamp())

	// Refusals are logged at a bounded rate, and the logs add up to the count.
	warnings := logs.FilterLevelExact(zapcore.WarnLevel).All()
	assert.Less(t, len(warnings), refusedBatches, "one warning per refusal is not rate-limited")
	logged := int64(0)
	for _, w := range warnings {
		logged += w.ContextMap()["refused_traces"].(int64)
	}
	assert.Equal(t, int64(refused), logged)
}

func TestSpansGeneratedMetric(t *testing.T) {
	tt := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tt.Shutdown(context.Background())) })
	sink := &consumertest.TracesSink{}
	r, err := newReceiver(testConfig(1000, 10, 100), metadatatest.NewSettings(tt), newFakeClock())
	require.NoError(t, err)
	r.nextTraces = sink
	require.NoError(t, r.Start(context.Background(), componenttest.NewNopHost()))
	waitDone(t, r)
	require.NoError(t, r.Shutdown(context.Background()))
	metadatatest.AssertEqualSyntheticSpansGenerated(t, tt, []metricdata.DataPoint[int64]{{Value: int64(sink.SpanCount()), Attributes: receiverAttrs}}, metricdatatest.IgnoreTimestamp())
	_, err = tt.GetMetric("otelcol_synthetic_traces_refused")
	assert.Error(t, err, "nothing was refused")
}

// eventful is a topology where every span has an event and some fail.
func eventful() []ServiceConfig {
	s := twoServices(0.3, LatencyConfig{Median: time.Millisecond, P99: 3 * time.Millisecond}, 2, false)
	s[0].Operations[0].Events = []EventConfig{{Name: "request parsed", Attributes: map[string]any{"app.bytes": 512}}}
	return s
}

func TestLogsFromSpanEventsShareTheGenerator(t *testing.T) {
	tt := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tt.Shutdown(context.Background())) })
	set := metadatatest.NewSettings(tt)
	cfg := testConfig(100000, 10, 200)
	cfg.Services = eventful()

	// Both signals through the factory with one config, as the collector
	// does for one receiver ID in a traces and a logs pipeline.
	f := NewFactory()
	traceSink, logSink := &consumertest.TracesSink{}, &consumertest.LogsSink{}
	tr, err := f.CreateTraces(context.Background(), set, cfg, traceSink)
	require.NoError(t, err)
	lr, err := f.CreateLogs(context.Background(), set, cfg, logSink)
	require.NoError(t, err)
	require.Same(t, tr, lr, "one receiver instance per config")

	host := componenttest.NewNopHost()
	require.NoError(t, tr.Start(context.Background(), host))
	require.NoError(t, lr.Start(context.Background(), host))
	waitDone(t, tr.(*sharedReceiver).syntheticReceiver)
	require.NoError(t, tr.Shutdown(context.Background()))
	require.NoError(t, lr.Shutdown(context.Background()))

	// Index every span event by (trace, span, name, time).
	type key struct {
		tid  pcommon.TraceID
		sid  pcommon.SpanID
		name string
		ts   pcommon.Timestamp
	}
	events := map[key]ptrace.SpanEvent{}
	for _, td := range traceSink.AllTraces() {
		for _, spans := range byTrace(td) {
			for _, s := range spans {
				for e := range s.Events().Len() {
					ev := s.Events().At(e)
					events[key{s.TraceID(), s.SpanID(), ev.Name(), ev.Timestamp()}] = ev
				}
			}
		}
	}
	require.NotEmpty(t, events)
	records := 0
	exceptions := 0
	for _, ld := range logSink.AllLogs() {
		for i := range ld.ResourceLogs().Len() {
			rl := ld.ResourceLogs().At(i)
			_, ok := rl.Resource().Attributes().Get(attrServiceName)
			require.True(t, ok)
			for j := range rl.ScopeLogs().Len() {
				recs := rl.ScopeLogs().At(j).LogRecords()
				for k := range recs.Len() {
					lrec := recs.At(k)
					records++
					ev, ok := events[key{lrec.TraceID(), lrec.SpanID(), lrec.EventName(), lrec.Timestamp()}]
					require.True(t, ok, "log record %q matches no span event", lrec.EventName())
					assert.Equal(t, ev.Attributes().AsRaw(), lrec.Attributes().AsRaw())
					if lrec.EventName() == eventException {
						exceptions++
						assert.Equal(t, plog.SeverityNumberError, lrec.SeverityNumber())
						msg, _ := ev.Attributes().Get(attrExcMessage)
						assert.Equal(t, msg.Str(), lrec.Body().Str())
					} else {
						assert.Equal(t, plog.SeverityNumberInfo, lrec.SeverityNumber())
					}
				}
			}
		}
	}
	assert.Equal(t, len(events), records, "one log record per span event")
	assert.Positive(t, exceptions)
	metadatatest.AssertEqualSyntheticLogRecordsGenerated(t, tt, []metricdata.DataPoint[int64]{{Value: int64(records), Attributes: receiverAttrs}}, metricdatatest.IgnoreTimestamp())
}

func TestLogsOnlyPipeline(t *testing.T) {
	cfg := testConfig(100000, 10, 50)
	cfg.Services = eventful()
	logSink := &consumertest.LogsSink{}
	lr, err := NewFactory().CreateLogs(context.Background(), receivertest.NewNopSettings(typ), cfg, logSink)
	require.NoError(t, err)
	require.NoError(t, lr.Start(context.Background(), componenttest.NewNopHost()))
	waitDone(t, lr.(*sharedReceiver).syntheticReceiver)
	require.NoError(t, lr.Shutdown(context.Background()))
	// Every trace's root span has one "request parsed" event.
	assert.GreaterOrEqual(t, logSink.LogRecordCount(), 50)
}

func TestLifecycle(t *testing.T) {
	f := NewFactory()
	newR := func(cfg *Config) receiver.Traces {
		r, err := f.CreateTraces(context.Background(), receivertest.NewNopSettings(typ), cfg, consumertest.NewNop())
		require.NoError(t, err)
		return r
	}
	host := componenttest.NewNopHost()

	t.Run("start and shutdown twice", func(t *testing.T) {
		r := newR(testConfig(1000, 1, 0))
		require.NoError(t, r.Start(context.Background(), host))
		require.NoError(t, r.Shutdown(context.Background()))
		require.NoError(t, r.Shutdown(context.Background()))
	})
	t.Run("shutdown without start", func(t *testing.T) {
		r := newR(testConfig(1000, 1, 0))
		require.NoError(t, r.Shutdown(context.Background()))
		require.NoError(t, r.Shutdown(context.Background()))
	})
	t.Run("config is reusable after shutdown", func(t *testing.T) {
		cfg := testConfig(1000, 1, 0)
		r1 := newR(cfg)
		require.NoError(t, r1.Start(context.Background(), host))
		require.NoError(t, r1.Shutdown(context.Background()))
		r2 := newR(cfg)
		require.NotSame(t, r1, r2)
		require.NoError(t, r2.Start(context.Background(), host))
		require.NoError(t, r2.Shutdown(context.Background()))
	})
	t.Run("start after shutdown fails", func(t *testing.T) {
		r, err := newReceiver(testConfig(10, 1, 0), receivertest.NewNopSettings(typ), clock.Real{})
		require.NoError(t, err)
		require.NoError(t, r.Shutdown(context.Background()))
		require.Error(t, r.Start(context.Background(), host))
	})
}

// shutdownBound bounds a Shutdown that must return on its own: it only
// fails a test that would otherwise hang.
const shutdownBound = 10 * time.Second

func TestShutdownStopsGeneratingAtHighRate(t *testing.T) {
	// At this rate the loop never waits: Shutdown must stop it between
	// batches.
	batches := make(chan struct{}, 1)
	next, err := consumer.NewTraces(func(context.Context, ptrace.Traces) error {
		select {
		case batches <- struct{}{}:
		default:
		}
		return nil
	})
	require.NoError(t, err)
	r, err := newReceiver(testConfig(1e9, 100, 0), receivertest.NewNopSettings(typ), newFakeClock())
	require.NoError(t, err)
	r.nextTraces = next
	require.NoError(t, r.Start(context.Background(), componenttest.NewNopHost()))
	for range 3 {
		<-batches
	}
	ctx, cancel := context.WithTimeout(context.Background(), shutdownBound)
	defer cancel()
	require.NoError(t, r.Shutdown(ctx))
}

func TestShutdownInterruptsAWait(t *testing.T) {
	// One trace every 1000 s on a clock that never moves: after the first
	// batch the loop waits, and Shutdown must end the wait.
	clk := newFrozenClock()
	sink := &consumertest.TracesSink{}
	r, err := newReceiver(testConfig(0.001, 1, 0), receivertest.NewNopSettings(typ), clk)
	require.NoError(t, err)
	r.nextTraces = sink
	require.NoError(t, r.Start(context.Background(), componenttest.NewNopHost()))
	assert.Equal(t, 1000*time.Second, clk.WaitTickers(t, 1)[0].Period(), "the wait after the free first batch")
	ctx, cancel := context.WithTimeout(context.Background(), shutdownBound)
	defer cancel()
	require.NoError(t, r.Shutdown(ctx))
	assert.Len(t, sink.AllTraces(), 1, "only the first batch went out")
}

func TestShutdownUnblocksABlockedConsumer(t *testing.T) {
	tt := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tt.Shutdown(context.Background())) })
	entered := make(chan struct{})
	var once sync.Once
	next, err := consumer.NewTraces(func(ctx context.Context, _ ptrace.Traces) error {
		once.Do(func() { close(entered) })
		<-ctx.Done() // a pipeline that blocks until told to stop
		return ctx.Err()
	})
	require.NoError(t, err)
	r, err := newReceiver(testConfig(100, 3, 0), metadatatest.NewSettings(tt), newFakeClock())
	require.NoError(t, err)
	r.nextTraces = next
	require.NoError(t, r.Start(context.Background(), componenttest.NewNopHost()))
	<-entered
	ctx, cancel := context.WithTimeout(context.Background(), shutdownBound)
	defer cancel()
	require.NoError(t, r.Shutdown(ctx))
	// The batch the pipeline never took is an honest refusal.
	metadatatest.AssertEqualSyntheticTracesRefused(t, tt, []metricdata.DataPoint[int64]{{Value: 3, Attributes: receiverAttrs}}, metricdatatest.IgnoreTimestamp())
}
