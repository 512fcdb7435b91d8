// Package ratelog logs a recurring event at most once per period, with the
// count of events and items since its last line, so that an outage writes a
// line every few seconds rather than one per batch. Metrics count every
// event; the log only says that it keeps happening. Flush writes what is
// pending when the component stops, so the last period is not left out.
package ratelog // import "github.com/otelcsp/otelcsp/internal/ratelog"

import (
	"sync"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// Limiter is one kind of event. The zero value is not usable: set Every,
// Level, Message and ItemsKey.
type Limiter struct {
	Every    time.Duration
	Level    zapcore.Level
	Message  string
	ItemsKey string // name of the field that carries the items counted

	mu     sync.Mutex
	logged bool
	last   time.Duration
	times  int64
	items  int64
	// pending is the fields of the latest event not logged yet, for Flush
	// (a reused buffer: no allocation per event once it has grown).
	pending []zap.Field
}

// New returns a limiter that logs msg at level at most once per every.
func New(every time.Duration, level zapcore.Level, msg, itemsKey string) *Limiter {
	return &Limiter{Every: every, Level: level, Message: msg, ItemsKey: itemsKey}
}

// Note counts one event of items at monotonic time now (any origin, the
// same for every call) and logs it, with what was counted since the last
// line, unless a line was written less than Every ago. The first event is
// always logged.
func (l *Limiter) Note(logger *zap.Logger, now time.Duration, items int64, fields ...zap.Field) {
	l.mu.Lock()
	l.times++
	l.items += items
	if l.logged && now-l.last < l.Every {
		clear(l.pending) // drop the references to the previous event's values
		l.pending = append(l.pending[:0], fields...)
		l.mu.Unlock()
		return
	}
	l.write(logger, now, fields)
}

// Flush logs at once, with the fields of the latest of them, the events
// counted since the last line, if any; call it when the component stops.
// now is on the same clock as Note's.
func (l *Limiter) Flush(logger *zap.Logger, now time.Duration) {
	l.mu.Lock()
	if l.times == 0 {
		l.mu.Unlock()
		return
	}
	fields := l.pending
	l.pending = nil
	l.write(logger, now, fields)
}

// write logs the events counted so far with fields; called with mu held,
// it releases it before logging.
func (l *Limiter) write(logger *zap.Logger, now time.Duration, fields []zap.Field) {
	times, total := l.times, l.items
	l.logged, l.last, l.times, l.items = true, now, 0, 0
	clear(l.pending)
	l.pending = l.pending[:0]
	l.mu.Unlock()
	if ce := logger.Check(l.Level, l.Message); ce != nil {
		ce.Write(append(fields[:len(fields):len(fields)],
			zap.Int64(l.ItemsKey, total),
			zap.Int64("times", times),
			zap.Duration("log_period", l.Every))...)
	}
}
