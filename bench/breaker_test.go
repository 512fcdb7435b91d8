package bench

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/failsafe-go/failsafe-go/circuitbreaker"
	"github.com/sony/gobreaker/v2"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/extension/extensiontest"

	"github.com/otelcsp/otelcsp/extension/breakerextension"
)

// The peers are configured as close as their models allow to the breaker
// extension's default policy: trip on 5 consecutive failures or on a 50%
// failure ratio over a 10 s sliding window (10 buckets) once 20 calls were
// seen, 1 s open, 1 half-open probe. Only the closed path (admit a call,
// record its success) is measured: it is what every call pays while the
// backend is healthy.
const (
	backendKey     = "backend-1:4317"
	window         = 10 * time.Second
	windowBuckets  = 10
	minCalls       = 20
	failureRatio   = 0.5
	consecutive    = 5
	openDuration   = time.Second
	breakerTimeout = 10 * time.Second
)

// extHost is the smallest component.Host that carries extensions.
type extHost map[component.ID]component.Component

func (h extHost) GetExtensions() map[component.ID]component.Component { return h }

// otelcspBreaker creates the breaker extension through its factory with
// its default config (HTTP endpoint off), starts it and returns the breaker
// for one key, obtained through FromHost as a component would.
func otelcspBreaker(tb testing.TB) breakerextension.Breaker {
	tb.Helper()
	f := breakerextension.NewFactory()
	id := component.NewID(f.Type())
	ext, err := f.Create(context.Background(), extensiontest.NewNopSettings(f.Type()), f.CreateDefaultConfig())
	if err != nil {
		tb.Fatal(err)
	}
	host := extHost{id: ext}
	if err := ext.Start(context.Background(), host); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = ext.Shutdown(context.Background()) })
	p, err := breakerextension.FromHost(host, id)
	if err != nil {
		tb.Fatal(err)
	}
	return p.Breaker(backendKey)
}

func gobreakerSettings() gobreaker.Settings {
	return gobreaker.Settings{
		Name:         backendKey,
		MaxRequests:  1,
		Interval:     window,
		BucketPeriod: window / windowBuckets,
		Timeout:      openDuration,
		ReadyToTrip: func(c gobreaker.Counts) bool {
			return c.ConsecutiveFailures >= consecutive ||
				(c.Requests >= minCalls && float64(c.TotalFailures) >= failureRatio*float64(c.Requests))
		},
	}
}

// failsafeBreaker uses failsafe-go's time-based failure rate threshold,
// its closest model: it takes one thresholding mode, so the consecutive
// failure condition is left out.
func failsafeBreaker() circuitbreaker.CircuitBreaker[any] {
	return circuitbreaker.NewBuilder[any]().
		WithFailureRateThreshold(failureRatio, minCalls, window).
		WithDelay(openDuration).
		WithSuccessThreshold(1).
		Build()
}

// call is one admitted call on the closed path: ask, then report success.
type call func() error

var errRefused = errors.New("refused")

// breakerImpls lists each breaker with a constructor, so every
// sub-benchmark starts from a fresh, closed breaker.
var breakerImpls = []struct {
	name string
	make func(testing.TB) call
}{
	{"otelcsp", func(tb testing.TB) call {
		br := otelcspBreaker(tb)
		return func() error {
			p, err := br.Allow()
			if err != nil {
				return err
			}
			p.Done(nil)
			return nil
		}
	}},
	{"gobreaker", func(testing.TB) call {
		cb := gobreaker.NewCircuitBreaker[struct{}](gobreakerSettings())
		return func() error {
			_, err := cb.Execute(func() (struct{}, error) { return struct{}{}, nil })
			return err
		}
	}},
	{"gobreaker-twostep", func(testing.TB) call {
		cb := gobreaker.NewTwoStepCircuitBreaker[struct{}](gobreakerSettings())
		return func() error {
			done, err := cb.Allow()
			if err != nil {
				return err
			}
			done(nil)
			return nil
		}
	}},
	{"failsafe", func(testing.TB) call {
		cb := failsafeBreaker()
		return func() error {
			if !cb.TryAcquirePermit() {
				return errRefused
			}
			cb.RecordSuccess()
			return nil
		}
	}},
}

// BenchmarkBreaker measures one admitted, successful call through each
// breaker on one key: serially, and from GOMAXPROCS goroutines sharing
// the breaker (the contended case: all calls to one backend).
func BenchmarkBreaker(b *testing.B) {
	for _, mode := range []string{"serial", "parallel"} {
		for _, im := range breakerImpls {
			b.Run("mode="+mode+"/impl="+im.name, func(b *testing.B) {
				call := im.make(b)
				if err := call(); err != nil {
					b.Fatal(err)
				}
				b.ReportAllocs()
				if mode == "serial" {
					for b.Loop() {
						if err := call(); err != nil {
							b.Fatal(err)
						}
					}
					return
				}
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						if err := call(); err != nil {
							b.Error(err)
							return
						}
					}
				})
			})
		}
	}
}
