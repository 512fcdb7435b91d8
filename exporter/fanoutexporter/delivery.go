package fanoutexporter

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v7"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.uber.org/zap/zapcore"

	"github.com/otelcsp/otelcsp/internal/clock"
	"github.com/otelcsp/otelcsp/internal/ratelog"
)

// errNoBackend is returned, with the items concerned, when no backend could
// take them. It is retryable: the caller (the queue, or the receiver's
// client) may send them again.
var errNoBackend = errors.New("fanout: no backend could take the data")

// errDrainTimeout hands back what was still undelivered when drain_timeout
// ran out at shutdown: a persistent queue keeps it for the next start.
var errDrainTimeout = errors.New("fanout: drain_timeout reached at shutdown")

// push delivers data to the backends.
//
// Without a sending queue the caller is waiting: what no backend took is
// retried with backoff for retry_on_failure's max_elapsed_time, then handed
// back with a retryable error (counted once in items_refused).
//
// With a sending queue nobody waits on this call, and the data was accepted:
// being unable to send because every backend is down is not a failure of
// the data, so it waits here for a backend, paced by retry_on_failure's
// intervals, for as long as max_wait allows (no limit by default; the full
// queue then refuses new data upstream). Only the undelivered part is ever
// resent, so waiting duplicates nothing.
func (f *fanout[T]) push(ctx context.Context, data T) error {
	left, n, perr := f.route(ctx, data)
	if n == 0 {
		return perr
	}
	retry := f.cfg.RetryConfig
	queued := f.cfg.QueueConfig.HasValue()
	if !queued && !retry.Enabled {
		return f.refuse(ctx, left, n)
	}
	var limit time.Duration // how long to keep trying; 0 is no limit
	if queued {
		limit = f.cfg.MaxWait
	} else {
		limit = retry.MaxElapsedTime
	}
	bo := backoff.ExponentialBackOff{
		InitialInterval:     retry.InitialInterval,
		RandomizationFactor: retry.RandomizationFactor,
		Multiplier:          retry.Multiplier,
		MaxInterval:         retry.MaxInterval,
	}
	bo.Reset()
	start := time.Now()
	waiting := false
	for {
		if f.drain.expired() {
			f.drain.leftover.Add(int64(n))
			f.telemetry.droppedAtDrainTimeout(ctx, int64(n))
			return f.ops.withData(errDrainTimeout, left)
		}
		delay := bo.NextBackOff()
		if limit > 0 && time.Since(start)+delay > limit {
			if !queued {
				return f.refuse(ctx, left, n)
			}
			f.telemetry.droppedMaxWait(ctx, int64(n))
			f.logs.dropped.Note(f.logger, now(), int64(n))
			return consumererror.NewPermanent(fmt.Errorf("fanout: %d items waited longer than max_wait (%s) for a backend", n, f.cfg.MaxWait))
		}
		if queued && !waiting {
			waiting = true
			f.logs.waiting.Note(f.logger, now(), int64(n))
		}
		timer := time.NewTimer(delay)
		select {
		case <-timer.C:
		case <-f.drain.begun:
			// Shutdown began: try at once, with breakers no longer in the way.
		case <-f.drain.deadline:
		case <-ctx.Done():
			timer.Stop()
			return f.ops.withData(fmt.Errorf("%w: %w", errNoBackend, ctx.Err()), left)
		}
		timer.Stop()
		if left, n, perr = f.route(ctx, left); n == 0 {
			return perr
		}
	}
}

// refuse hands items back to a waiting caller.
func (f *fanout[T]) refuse(ctx context.Context, left T, n int) error {
	f.telemetry.refused(ctx, int64(n))
	f.logs.refused.Note(f.logger, now(), int64(n))
	return f.ops.withData(errNoBackend, left)
}

// drainState is the fanout's shutdown: begun when the collector starts
// shutting the exporter down (before its queue drains), expired
// drain_timeout later.
type drainState struct {
	once     sync.Once
	begun    chan struct{}
	deadline chan struct{}
	timer    *time.Timer
	// leftover counts items still undelivered at the deadline, logged once
	// when the fanout shuts down.
	leftover atomic.Int64
}

func newDrainState() *drainState {
	return &drainState{begun: make(chan struct{}), deadline: make(chan struct{})}
}

func (d *drainState) begin(timeout time.Duration) {
	d.once.Do(func() {
		close(d.begun)
		d.timer = time.AfterFunc(timeout, func() { close(d.deadline) })
	})
}

// stop releases the deadline's timer.
func (d *drainState) stop() {
	d.begin(0) // a fanout shut down without the wrapper still ends its drain
	d.timer.Stop()
}

func (d *drainState) started() bool { return isClosed(d.begun) }
func (d *drainState) expired() bool { return isClosed(d.deadline) }

func isClosed(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// logEvery is the most often one kind of failure is logged.
const logEvery = 10 * time.Second

// now is the monotonic clock, so that a wall-clock step neither stops nor
// floods the rate-limited logs, nor moves a handover's end.
func now() time.Duration { return clock.Real{}.Monotonic() }

// pushLogs are the rate-limited logs of push's outcomes.
type pushLogs struct {
	waiting, dropped, refused *ratelog.Limiter
}

func newPushLogs() pushLogs {
	return pushLogs{
		waiting: ratelog.New(logEvery, zapcore.WarnLevel, "No backend could take queued items; they wait for one", "items"),
		dropped: ratelog.New(logEvery, zapcore.WarnLevel, "Dropped items that waited longer than max_wait for a backend", "items"),
		refused: ratelog.New(logEvery, zapcore.WarnLevel, "No backend could take items; returned them to the sender with a retryable error", "items"),
	}
}
