// Package ratelog logs a recurring event at most once per period, with the
// count of events and items since its last line, so that an outage writes a
// line every few seconds rather than one per batch. Metrics count every
// event; the log only says that it keeps happening.
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
		l.mu.Unlock()
		return
	}
	times, total := l.times, l.items
	l.logged, l.last, l.times, l.items = true, now, 0, 0
	l.mu.Unlock()
	if ce := logger.Check(l.Level, l.Message); ce != nil {
		ce.Write(append(fields,
			zap.Int64(l.ItemsKey, total),
			zap.Int64("times", times),
			zap.Duration("log_period", l.Every))...)
	}
}
