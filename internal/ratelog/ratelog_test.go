package ratelog

import (
	"errors"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

func TestLimiterLogsFirstThenOncePerPeriodWithTotals(t *testing.T) {
	core, logs := observer.New(zapcore.DebugLevel)
	logger := zap.New(core)
	l := New(10*time.Second, zapcore.WarnLevel, "Backend failed", "items")
	l.Note(logger, time.Second, 5, zap.Error(errors.New("boom")))
	for i := range 9 {
		l.Note(logger, time.Second+time.Duration(i)*time.Second, 1)
	}
	if n := logs.Len(); n != 1 {
		t.Fatalf("%d lines within the period, want 1", n)
	}
	l.Note(logger, 11*time.Second, 2)
	all := logs.All()
	if len(all) != 2 {
		t.Fatalf("%d lines after the period, want 2", len(all))
	}
	first, second := all[0].ContextMap(), all[1].ContextMap()
	if first["items"] != int64(5) || first["times"] != int64(1) || first["error"] != "boom" {
		t.Errorf("first line %v", first)
	}
	// Everything since the first line: nine events of 1 and this one of 2.
	if second["items"] != int64(11) || second["times"] != int64(10) {
		t.Errorf("second line %v, want items 11 over 10 events", second)
	}
	if all[1].Level != zapcore.WarnLevel || all[1].Message != "Backend failed" {
		t.Errorf("line %v %q", all[1].Level, all[1].Message)
	}
}

func TestLimiterRespectsTheLoggersLevel(t *testing.T) {
	core, logs := observer.New(zapcore.ErrorLevel)
	New(time.Second, zapcore.WarnLevel, "quiet", "items").Note(zap.New(core), 0, 1)
	if logs.Len() != 0 {
		t.Fatal("a WARN line passed an ERROR logger")
	}
}
