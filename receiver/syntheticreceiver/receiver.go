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
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/otelcsp/otelcsp/internal/clock"
	"github.com/otelcsp/otelcsp/internal/ratelog"
)

// Refusals are warned about at most once per refusalLogEvery, with the
// count since the previous warning; the first one at once.
const (
	refusalLogEvery = 10 * time.Second
	refusalMessage  = "Next consumer refused synthetic data; it is counted, not retried"
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
	telemetry   *telemetry

	// Set by the factory before Start; nil when no pipeline of that signal
	// uses the receiver.
	nextTraces consumer.Traces
	nextLogs   consumer.Logs

	// traceRefusals and logRefusals warn about refusals at a bounded rate:
	// a refusing pipeline at 100k traces/s must not flood the log too.
	// Written by the generating goroutine; flushed by Shutdown after it ended.
	traceRefusals, logRefusals *ratelog.Limiter
	// base is the origin of the monotonic times handed to ratelog.
	base time.Time

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
	tel, err := newTelemetry(set)
	if err != nil {
		return nil, err
	}
	return &syntheticReceiver{
		cfg:           cfg,
		logger:        set.Logger,
		clk:           clk,
		gen:           newGenerator(topo, seed, cfg.Canary.Enabled),
		generatorID:   generatorID,
		telemetry:     tel,
		traceRefusals: ratelog.New(refusalLogEvery, zapcore.WarnLevel, refusalMessage, "refused_traces"),
		logRefusals:   ratelog.New(refusalLogEvery, zapcore.WarnLevel, refusalMessage, "refused_log_records"),
		base:          clk.Now(),
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
		now := r.sinceBase()
		r.traceRefusals.Flush(r.logger, now)
		r.logRefusals.Flush(r.logger, now)
	}
	r.telemetry.shutdown()
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
	r.telemetry.generated(ctx, n, spans)

	// Logs are derived before the traces are handed on: after
	// ConsumeTraces the pipeline owns td and may change it.
	var ld plog.Logs
	records := 0
	if r.nextLogs != nil {
		ld, records = eventsToLogs(td)
	}

	if r.nextTraces != nil {
		if err := r.telemetry.consumeTraces(ctx, r.nextTraces, td, n, spans); err != nil {
			r.traceRefusals.Note(r.logger, r.sinceBase(), int64(n), zap.String("signal", "traces"), zap.Error(err))
		}
	}
	if records > 0 {
		if err := r.telemetry.consumeLogs(ctx, r.nextLogs, ld, records); err != nil {
			r.logRefusals.Note(r.logger, r.sinceBase(), int64(records), zap.String("signal", "logs"), zap.Error(err))
		}
	}
}

// sinceBase is the receiver clock's time since the receiver was made: the
// monotonic time ratelog wants.
func (r *syntheticReceiver) sinceBase() time.Duration { return r.clk.Now().Sub(r.base) }
