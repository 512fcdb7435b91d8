package clocktest

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/otelcsp/otelcsp/internal/clock"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func TestAdvanceMovesBothClocksStepWallOnlyTheWall(t *testing.T) {
	f := New(t0, time.Hour)
	f.Advance(time.Second)
	assert.Equal(t, t0.Add(time.Second), f.Now())
	assert.Equal(t, time.Hour+time.Second, f.Monotonic())
	f.StepWall(-time.Minute)
	assert.Equal(t, t0.Add(time.Second-time.Minute), f.Now())
	assert.Equal(t, time.Hour+time.Second, f.Monotonic())
}

func TestTickersFireOnTheMonotonicClockAndDropMissedTicks(t *testing.T) {
	f := New(t0, 0)
	tk := f.NewTicker(10 * time.Second)
	f.StepWall(time.Hour)
	f.Advance(9 * time.Second)
	assert.Empty(t, tk.Chan(), "a wall step and a partial period fire nothing")
	f.Advance(25 * time.Second) // three periods due, one tick kept
	require.Len(t, tk.Chan(), 1)
	assert.Equal(t, t0.Add(time.Hour+34*time.Second), <-tk.Chan(), "ticks carry the time Advance ends at")
	f.Advance(6 * time.Second) // the 40 s tick
	require.Len(t, tk.Chan(), 1)
	<-tk.Chan()
	tk.Stop()
	f.Advance(time.Minute)
	assert.Empty(t, tk.Chan(), "a stopped ticker does not fire")
	assert.True(t, f.Tickers()[0].Stopped())
	assert.Equal(t, 10*time.Second, f.Tickers()[0].Period())
}

func TestTickReturnsOnceTheReaderTookTheTick(t *testing.T) {
	f := New(t0, 0)
	got := make(chan time.Time, 1)
	l := clock.Every(f, time.Minute, func() { got <- f.Now() })
	defer l.Stop()
	f.Tick(t)
	assert.Empty(t, f.Tickers()[0].Chan(), "taken")
	assert.Equal(t, t0, <-got)
}

func TestTimersFireInDueOrderAtTheirDueTime(t *testing.T) {
	f := New(t0, time.Hour)
	var calls []string
	at := func(name string) func() {
		return func() { calls = append(calls, name+"@"+f.Now().Sub(t0).String()) }
	}
	f.AfterFunc(2*time.Second, at("b"))
	f.AfterFunc(time.Second, at("a"))
	f.AfterFunc(2*time.Second, at("c")) // due with b, made after it
	stopped := f.AfterFunc(time.Second, at("stopped"))
	f.AfterFunc(time.Minute, at("later"))
	assert.True(t, stopped.Stop())
	assert.False(t, stopped.Stop())
	assert.Equal(t, 4, f.PendingTimers(), "a, b, c and later")
	f.Advance(3 * time.Second)
	assert.Equal(t, []string{"a@1s", "b@2s", "c@2s"}, calls)
	assert.Equal(t, t0.Add(3*time.Second), f.Now())
	assert.Equal(t, 1, f.PendingTimers())
}

func TestATimerMayScheduleATimerDueInTheSameAdvance(t *testing.T) {
	f := New(t0, 0)
	var fired []time.Duration
	f.AfterFunc(time.Second, func() {
		fired = append(fired, f.Monotonic())
		f.AfterFunc(time.Second, func() { fired = append(fired, f.Monotonic()) })
	})
	f.Advance(5 * time.Second)
	assert.Equal(t, []time.Duration{time.Second, 2 * time.Second}, fired)
}

func TestAutoAdvanceEndsWaitsAtOnceInFakeTime(t *testing.T) {
	f := New(t0, 0)
	f.AutoAdvance()
	require.NoError(t, clock.Sleep(context.Background(), f, 3*time.Second))
	require.NoError(t, clock.Sleep(context.Background(), f, time.Millisecond))
	assert.Equal(t, t0.Add(3*time.Second+time.Millisecond), f.Now())
}

func TestWaitTickersSeesAWaitThatNeverEnds(t *testing.T) {
	f := New(t0, 0)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error)
	go func() { errc <- clock.Sleep(ctx, f, time.Minute) }()
	assert.Equal(t, time.Minute, f.WaitTickers(t, 1)[0].Period())
	cancel()
	require.ErrorIs(t, <-errc, context.Canceled)
	assert.Equal(t, t0, f.Now(), "time did not move")
}

func TestNewTickerPanicsOnANonPositivePeriod(t *testing.T) {
	assert.Panics(t, func() { New(t0, 0).NewTicker(0) })
}
