package redmetricsconnector // import "github.com/otelcsp/otelcsp/connector/redmetricsconnector"

import (
	"sync"
	"time"

	"go.uber.org/zap"
)

// refusalLogEvery is the most often a refused flush is logged.
const refusalLogEvery = 10 * time.Second

// refusalLog rate-limits the log of flushes the metrics pipeline refused:
// the first refusal is logged at once, later ones at most once per period,
// with the refusals and data points they add up to. The counter
// otelcol_redmetrics_points_refused counts every one of them.
type refusalLog struct {
	mu     sync.Mutex
	logged bool
	last   time.Duration // monotonic time of the last line
	times  int64         // refusals since the last line, this one included
	points int64
}

func (l *refusalLog) note(logger *zap.Logger, now time.Duration, points int, err error) {
	l.mu.Lock()
	l.times++
	l.points += int64(points)
	if l.logged && now-l.last < refusalLogEvery {
		l.mu.Unlock()
		return
	}
	times, total := l.times, l.points
	l.logged, l.last, l.times, l.points = true, now, 0, 0
	l.mu.Unlock()
	logger.Error("Metrics pipeline refused RED metrics; the data points are dropped (the spans were not failed)",
		zap.Error(err),
		zap.Int64("refusals", times),
		zap.Int64("data_points", total),
		zap.Duration("log_period", refusalLogEvery))
}
