package syntheticreceiver // import "github.com/otelcsp/otelcsp/receiver/syntheticreceiver"

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"sync"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/collector/receiver/receiverhelper"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"

	"github.com/otelcsp/otelcsp/internal/clock"
	"github.com/otelcsp/otelcsp/receiver/syntheticreceiver/internal/metadata"
)

const (
	transport = "synthetic"
	format    = "pdata"
	// refusalLogEvery bounds refusal warnings: a refusing pipeline at 100k
	// traces/s must not also flood the collector's own log.
	refusalLogEvery = 10 * time.Second
)

// syntheticReceiver generates traces on one goroutine and hands them to the
// traces consumer and, as log records of their span events, to the logs
// consumer. Everything the loop touches is owned by the loop; the mutex only
// guards Start and Shutdown.
type syntheticReceiver struct {
	cfg         *Config
	logger      *zap.Logger
	clk         clock.Clock
	gen         *generator
	generatorID string
	telemetry   *metadata.TelemetryBuilder
	// metricAttrs labels the own metrics with the receiver ID, as the
	// collector's otelcol_receiver_* metrics are, so two synthetic
	// receivers (and their refusals) can be told apart. Built once: the
	// hot path must not allocate an attribute set per batch.
	metricAttrs metric.AddOption
	obs         *receiverhelper.ObsReport

	// Set by the factory before Start; nil when no pipeline of that signal
	// uses the receiver.
	nextTraces consumer.Traces
	nextLogs   consumer.Logs

	traceRefusals, logRefusals *refusalLog

	mu      sync.Mutex
	cancel  context.CancelFunc
	done    chan struct{}
	stopped bool
}

func newReceiver(cfg *Config, set receiver.Settings, clk clock.Clock) (*syntheticReceiver, error) {
	services := cfg.Services
	if len(services) == 0 {
		var err error
		if services, err = defaultServices(); err != nil {
			return nil, fmt.Errorf("default topology: %w", err)
		}
	}
	var generatorID string
	if cfg.Canary.Enabled {
		generatorID = cfg.Canary.GeneratorID
		if generatorID == "" {
			var b [8]byte
			if _, err := rand.Read(b[:]); err != nil {
				return nil, err
			}
			generatorID = set.ID.String() + "-" + hex.EncodeToString(b[:])
		}
	}
	topo := compileTopology(services, generatorID)
	seed := cfg.Seed
	if seed == 0 {
		seed = mrand.Uint64()
	}
	tb, err := metadata.NewTelemetryBuilder(set.TelemetrySettings)
	if err != nil {
		return nil, err
	}
	// The collector's standard receiver metrics (otelcol_receiver_accepted_spans, ...).
	obs, err := receiverhelper.NewObsReport(receiverhelper.ObsReportSettings{
		ReceiverID: set.ID, Transport: transport, ReceiverCreateSettings: set,
	})
	if err != nil {
		return nil, err
	}
	return &syntheticReceiver{
		cfg:           cfg,
		logger:        set.Logger,
		clk:           clk,
		gen:           newGenerator(topo, seed, cfg.Canary.Enabled),
		generatorID:   generatorID,
		telemetry:     tb,
		metricAttrs:   metric.WithAttributeSet(attribute.NewSet(attribute.String("receiver", set.ID.String()))),
		obs:           obs,
		traceRefusals: &refusalLog{logger: set.Logger, clk: clk, signal: "traces", unit: "refused_traces"},
		logRefusals:   &refusalLog{logger: set.Logger, clk: clk, signal: "logs", unit: "refused_log_records"},
	}, nil
}

// Start launches the generating goroutine. It does not use ctx beyond the
// call, as the collector asks of Start.
func (r *syntheticReceiver) Start(context.Context, component.Host) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stopped {
		return errors.New("synthetic receiver: Start after Shutdown")
	}
	if r.cancel != nil {
		return nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	r.done = make(chan struct{})
	fields := []zap.Field{zap.Float64("rate", r.cfg.Rate), zap.Int("batch_size", r.cfg.BatchSize), zap.Int64("max_traces", r.cfg.MaxTraces)}
	if r.generatorID != "" {
		fields = append(fields, zap.String("synthetic.generator", r.generatorID))
	}
	r.logger.Info("Synthetic receiver generating traces", fields...)
	go r.run(ctx)
	return nil
}

// Shutdown stops generation: the context of an in-flight Consume call is
// cancelled, so even a blocked pipeline lets it return promptly. It may be
// called more than once and without Start.
func (r *syntheticReceiver) Shutdown(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stopped {
		return nil
	}
	r.stopped = true
	if r.cancel != nil {
		r.cancel()
		select {
		case <-r.done:
		case <-ctx.Done():
			return ctx.Err()
		}
		// Report what was refused since the last warning.
		r.traceRefusals.flush()
		r.logRefusals.flush()
	}
	r.telemetry.Shutdown()
	return nil
}

func (r *syntheticReceiver) run(ctx context.Context) {
	defer close(r.done)
	bucket := newTokenBucket(r.clk, r.cfg.Rate, r.cfg.BatchSize)
	var generated int64
	for {
		n := r.cfg.BatchSize
		if r.cfg.MaxTraces > 0 {
			left := r.cfg.MaxTraces - generated
			if left <= 0 {
				r.logger.Info("Synthetic receiver reached max_traces, stopping generation", zap.Int64("max_traces", r.cfg.MaxTraces))
				return
			}
			n = int(min(int64(n), left))
		}
		if bucket.take(ctx, n) != nil {
			return
		}
		r.emit(ctx, n)
		generated += int64(n)
	}
}

// emit generates one batch of n traces and hands it on. A refusal is counted
// and the traces are not retried: their sequence numbers stay gaps, and the
// traces_refused metric says how many.
func (r *syntheticReceiver) emit(ctx context.Context, n int) {
	td, spans := r.gen.generate(n, r.clk.Now())
	r.telemetry.SyntheticTracesGenerated.Add(ctx, int64(n), r.metricAttrs)
	r.telemetry.SyntheticSpansGenerated.Add(ctx, int64(spans), r.metricAttrs)

	// Logs are derived before the traces are handed on: after
	// ConsumeTraces the pipeline owns td and may change it.
	var ld plog.Logs
	records := 0
	if r.nextLogs != nil {
		ld, records = eventsToLogs(td)
	}

	if r.nextTraces != nil {
		octx := r.obs.StartTracesOp(ctx)
		err := r.nextTraces.ConsumeTraces(octx, td)
		r.obs.EndTracesOp(octx, format, spans, err)
		if err != nil {
			r.telemetry.SyntheticTracesRefused.Add(ctx, int64(n), r.metricAttrs)
			r.traceRefusals.refused(n, err)
		}
	}
	if records > 0 {
		r.telemetry.SyntheticLogRecordsGenerated.Add(ctx, int64(records), r.metricAttrs)
		octx := r.obs.StartLogsOp(ctx)
		err := r.nextLogs.ConsumeLogs(octx, ld)
		r.obs.EndLogsOp(octx, format, records, err)
		if err != nil {
			r.telemetry.SyntheticLogRecordsRefused.Add(ctx, int64(records), r.metricAttrs)
			r.logRefusals.refused(records, err)
		}
	}
}

// refusalLog warns about refusals at most once per refusalLogEvery, with
// the count since the previous warning, so the log stays readable however
// fast the refusals come. The first refusal is logged at once.
type refusalLog struct {
	logger  *zap.Logger
	clk     clock.Clock
	signal  string
	unit    string
	last    time.Time
	pending int64
	lastErr error
}

func (l *refusalLog) refused(n int, err error) {
	l.pending += int64(n)
	l.lastErr = err
	if now := l.clk.Now(); l.last.IsZero() || now.Sub(l.last) >= refusalLogEvery {
		l.flushAt(now)
	}
}

func (l *refusalLog) flush() { l.flushAt(l.clk.Now()) }

func (l *refusalLog) flushAt(now time.Time) {
	if l.pending == 0 {
		return
	}
	l.logger.Warn("Next consumer refused synthetic data; it is counted, not retried",
		zap.String("signal", l.signal), zap.Int64(l.unit, l.pending), zap.Error(l.lastErr))
	l.pending, l.lastErr, l.last = 0, nil, now
}
