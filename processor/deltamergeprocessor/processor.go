package deltamergeprocessor // import "github.com/otelcsp/otelcsp/processor/deltamergeprocessor"

import (
	"context"
	"sync"
	"sync/atomic"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/processor"
	"go.uber.org/zap"

	"github.com/otelcsp/otelcsp/internal/clock"
	"github.com/otelcsp/otelcsp/processor/deltamergeprocessor/internal/merge"
)

type deltaMerge struct {
	cfg    *Config
	logger *zap.Logger
	tel    *telemetry
	next   consumer.Metrics
	clock  Clock

	// mu serialises the engine: one ConsumeMetrics or one flush at a time
	// (held for the whole batch, not per point).
	mu      sync.Mutex
	table   *merge.Table
	streams atomic.Int64

	flushes clock.Periodic
}

var _ processor.Metrics = (*deltaMerge)(nil)

func newProcessor(set processor.Settings, cfg *Config, next consumer.Metrics, clock Clock) (*deltaMerge, error) {
	p := &deltaMerge{
		cfg:    cfg,
		logger: set.Logger,
		next:   next,
		clock:  clock,
		table: merge.New(merge.Config{
			WriterAttribute:     cfg.WriterAttribute,
			MaxStreams:          cfg.MaxStreams,
			MaxWritersPerStream: cfg.MaxWritersPerStream,
			Expiration:          cfg.StreamExpiration,
		}),
	}
	tel, err := newTelemetry(set, p.streams.Load)
	if err != nil {
		return nil, err
	}
	p.tel = tel
	return p, nil
}

// Capabilities: the processor removes the delta metrics it merges from
// the data it is given.
func (*deltaMerge) Capabilities() consumer.Capabilities {
	return consumer.Capabilities{MutatesData: true}
}

// Start begins the flush loop.
func (p *deltaMerge) Start(context.Context, component.Host) error {
	p.flushes.Start(p.clock, p.cfg.Interval, func() { p.flush(context.Background()) })
	return nil
}

// Shutdown stops the flush loop and emits every stream once more, so the
// deltas merged since the last tick reach the exporter. Safe to call twice
// or without Start.
func (p *deltaMerge) Shutdown(ctx context.Context) error {
	first, started := p.flushes.Stop()
	if !first {
		return nil
	}
	if started {
		p.flush(ctx)
	}
	p.tel.shutdown()
	return nil
}

// ConsumeMetrics merges the delta sums and histograms of md and passes on
// what is left (gauges, summaries, cumulative metrics), if anything. It
// never fails on the merged part: merging well-formed pdata cannot go
// wrong, and the cumulative points leave at the next flush.
func (p *deltaMerge) ConsumeMetrics(ctx context.Context, md pmetric.Metrics) error {
	now := p.clock.Now()
	p.mu.Lock()
	r := p.table.Consume(md, now)
	p.streams.Store(int64(p.table.Len()))
	p.mu.Unlock()
	p.tel.consumed(ctx, r)
	if md.ResourceMetrics().Len() == 0 {
		return nil
	}
	return p.next.ConsumeMetrics(ctx, md)
}

// flush emits every stream's cumulative point and expires idle streams.
// The output is built under the engine's lock (tens of nanoseconds a
// stream) and handed to the next consumer after it is released. A failed
// export loses nothing: the next flush carries the same totals, and more.
func (p *deltaMerge) flush(ctx context.Context) {
	now := p.clock.Now()
	p.mu.Lock()
	md, fr := p.table.Flush(now)
	p.streams.Store(int64(p.table.Len()))
	p.mu.Unlock()
	p.tel.flushed(ctx, fr)
	if fr.Points == 0 {
		return
	}
	if err := p.next.ConsumeMetrics(ctx, md); err != nil {
		p.logger.Warn("Exporting the cumulative streams failed; the next flush carries the same totals",
			zap.Int("points", fr.Points), zap.Error(err))
	}
}
