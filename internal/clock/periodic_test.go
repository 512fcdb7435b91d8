package clock

import (
	"sync/atomic"
	"testing"
	"time"
)

// TestPeriodicLifecycle: the loop runs between Start and Stop only; a second
// Start, a Start after Stop and a second Stop do nothing, and Stop says
// which call was first and whether the loop had run.
func TestPeriodicLifecycle(t *testing.T) {
	m := manual{c: make(chan time.Time)}
	var p Periodic
	var calls atomic.Int32
	p.Start(m, time.Second, func() { calls.Add(1) })
	p.Start(m, time.Second, func() { t.Error("second Start started a second loop") })
	m.c <- time.Time{} // taken by the one loop
	m.c <- time.Time{} // taken only once the first call returned
	if first, started := p.Stop(); !first || !started {
		t.Fatalf("first Stop = (%v, %v), want (true, true)", first, started)
	}
	if n := calls.Load(); n != 2 {
		t.Fatalf("%d calls, want 2 (Stop waits for the call of the tick taken)", n)
	}
	if first, started := p.Stop(); first || !started {
		t.Fatalf("second Stop = (%v, %v), want (false, true)", first, started)
	}
	p.Start(m, time.Second, func() { t.Error("Start after Stop started the loop") })
	select {
	case m.c <- time.Time{}:
		t.Fatal("a loop took a tick after Stop")
	default:
	}
}

// TestPeriodicStopWithoutStart: Shutdown without Start has nothing to stop
// or flush, and Start after it stays a no-op.
func TestPeriodicStopWithoutStart(t *testing.T) {
	var p Periodic
	if first, started := p.Stop(); !first || started {
		t.Fatalf("Stop = (%v, %v), want (true, false)", first, started)
	}
	m := manual{c: make(chan time.Time)}
	p.Start(m, time.Second, func() { t.Error("Start after Stop started the loop") })
	select {
	case m.c <- time.Time{}:
		t.Fatal("a loop took a tick after Stop")
	default:
	}
}
