package syntheticreceiver // import "github.com/otelcsp/otelcsp/receiver/syntheticreceiver"

import (
	"time"

	"go.uber.org/zap"

	"github.com/otelcsp/otelcsp/internal/clock"
)

// refusalLogEvery bounds refusal warnings: a refusing pipeline at 100k
// traces/s must not also flood the collector's own log.
const refusalLogEvery = 10 * time.Second

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
