package spanlogsconnector // import "github.com/otelcsp/otelcsp/connector/spanlogsconnector"

import (
	"sync"
	"time"

	"go.uber.org/zap"
)

// monoOrigin carries the process's monotonic clock reading; time.Since
// subtracts monotonic readings, never wall times.
var monoOrigin = time.Now()

// monotonic is the time elapsed since monoOrigin on the monotonic clock.
func monotonic() time.Duration { return time.Since(monoOrigin) }

// refusalLogEvery is the most often a refused batch is logged.
const refusalLogEvery = 10 * time.Second

// refusalLog rate-limits the log of batches the logs pipeline refused: the
// first refusal is logged at once, later ones at most once per period, with
// the refusals and records they add up to. The counter
// otelcol_spanlogs_records_refused counts every one of them.
type refusalLog struct {
	mu      sync.Mutex
	logged  bool
	last    time.Duration // monotonic time of the last line
	times   int64         // refusals since the last line, this one included
	records int64
}

func (l *refusalLog) note(logger *zap.Logger, now time.Duration, records int, err error) {
	l.mu.Lock()
	l.times++
	l.records += int64(records)
	if l.logged && now-l.last < refusalLogEvery {
		l.mu.Unlock()
		return
	}
	times, total := l.times, l.records
	l.logged, l.last, l.times, l.records = true, now, 0, 0
	l.mu.Unlock()
	logger.Error("Logs pipeline refused span log records; the records are dropped (the spans were not failed)",
		zap.Error(err),
		zap.Int64("refusals", times),
		zap.Int64("records", total),
		zap.Duration("log_period", refusalLogEvery))
}
