package clock

import (
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
