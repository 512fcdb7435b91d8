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

func TestFlushLogsWhatIsPendingWithTheLatestFields(t *testing.T) {
	core, logs := observer.New(zapcore.DebugLevel)
	logger := zap.New(core)
	l := New(10*time.Second, zapcore.WarnLevel, "Refused", "items")
	l.Flush(logger, 0)
	if logs.Len() != 0 {
		t.Fatal("Flush with nothing counted logged a line")
	}
	l.Note(logger, time.Second, 1, zap.String("err", "first"))
	l.Note(logger, 2*time.Second, 2, zap.String("err", "second"))
	l.Note(logger, 3*time.Second, 3, zap.String("err", "third"))
	l.Flush(logger, 4*time.Second)
	all := logs.All()
	if len(all) != 2 {
		t.Fatalf("%d lines, want the first event's and the flush's", len(all))
	}
	if f := all[1].ContextMap(); f["items"] != int64(5) || f["times"] != int64(2) || f["err"] != "third" {
		t.Errorf("flushed line %v, want items 5 over 2 events with the latest event's fields", f)
	}
	l.Flush(logger, 5*time.Second)
	if logs.Len() != 2 {
		t.Error("a second Flush logged again with nothing counted since")
	}
	// The flush was a line: the period restarts from it.
	l.Note(logger, 6*time.Second, 1)
	if logs.Len() != 2 {
		t.Error("an event within the period after a flush was logged")
	}
	l.Note(logger, 14*time.Second, 1)
	if logs.Len() != 3 {
		t.Error("an event a period after the flush was not logged")
	}
}

func TestFlushAfterALineLogsNothing(t *testing.T) {
	core, logs := observer.New(zapcore.DebugLevel)
	l := New(time.Second, zapcore.WarnLevel, "Refused", "items")
	l.Note(zap.New(core), 0, 1)
	l.Flush(zap.New(core), time.Millisecond)
	if logs.Len() != 1 {
		t.Fatalf("%d lines: the only event was logged already", logs.Len())
	}
}
