package clock

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

type manual struct{ c chan time.Time }

func (m manual) Now() time.Time                 { return time.Unix(0, 0) }
func (m manual) NewTicker(time.Duration) Ticker { return m }
func (m manual) Chan() <-chan time.Time         { return m.c }
func (manual) Stop()                            {}

func TestLoopCallsOnEveryTickAndStopWaits(t *testing.T) {
	m := manual{c: make(chan time.Time)}
	var calls atomic.Int32
	release := make(chan struct{})
	l := Every(m, time.Second, func() {
		calls.Add(1)
		<-release
	})
	m.c <- time.Time{} // the loop takes the tick and blocks in fn
	stopped := make(chan struct{})
	go func() { l.Stop(); close(stopped) }()
	select {
	case <-stopped:
		t.Fatal("Stop returned while fn was running")
	case <-time.After(20 * time.Millisecond):
	}
	close(release)
	<-stopped
	if calls.Load() != 1 {
		t.Fatalf("%d calls, want 1", calls.Load())
	}
}

func TestRealMonotonicIncreases(t *testing.T) {
	a := Real{}.Monotonic()
	b := Real{}.Monotonic()
	if b < a {
		t.Fatalf("monotonic went back: %v then %v", a, b)
	}
	if a <= 0 {
		t.Fatalf("monotonic reading %v, want > 0 (0 is free to mean unset)", a)
	}
}

func TestRealAfterFuncRunsAndStops(t *testing.T) {
	ran := make(chan struct{})
	Real{}.AfterFunc(0, func() { close(ran) })
	<-ran
	stopped := Real{}.AfterFunc(time.Hour, func() { t.Error("a stopped timer ran") })
	if !stopped.Stop() {
		t.Fatal("Stop of a pending timer returned false")
	}
	if stopped.Stop() {
		t.Fatal("second Stop returned true")
	}
}

func TestSleepEndsOnTheFirstTick(t *testing.T) {
	m := manual{c: make(chan time.Time, 1)}
	m.c <- time.Time{}
	if err := Sleep(context.Background(), m, time.Hour); err != nil {
		t.Fatalf("Sleep: %v", err)
	}
}

func TestSleepEndsWhenTheContextIsDone(t *testing.T) {
	m := manual{c: make(chan time.Time)} // never ticks
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error)
	go func() { errc <- Sleep(ctx, m, time.Hour) }()
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("Sleep on a cancelled wait: %v, want context.Canceled", err)
	}
	// Already done: no wait at all.
	if err := Sleep(ctx, m, time.Hour); !errors.Is(err, context.Canceled) {
		t.Fatalf("Sleep with a done context: %v, want context.Canceled", err)
	}
}

func TestSleepOnTheRealClock(t *testing.T) {
	if err := Sleep(context.Background(), Real{}, time.Microsecond); err != nil {
		t.Fatalf("Sleep: %v", err)
	}
}
