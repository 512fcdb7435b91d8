// Copyright The otelcsp Authors
// SPDX-License-Identifier: Apache-2.0

package breakerextension

import (
	"errors"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/otelcsp/otelcsp/internal/clock"
)

// benchProvider is the public API over a started engine, as in the
// extension (the coarse clock ticks).
func benchProvider(b *testing.B, cfg *Config) *provider {
	p := newProvider(cfg, clock.Real{}, zap.NewNop(), 1)
	p.reg.Start()
	b.Cleanup(p.reg.Stop)
	return p
}

// BenchmarkAllowDone is the closed path: Allow then Done(nil).
func BenchmarkAllowDone(b *testing.B) {
	br := benchProvider(b, createDefaultConfig()).Breaker("backend:4317")
	b.ReportAllocs()
	for b.Loop() {
		p, err := br.Allow()
		if err != nil {
			b.Fatal(err)
		}
		p.Done(nil)
	}
}

// BenchmarkAllowDoneSlowWatch is the closed path with slow_call_duration set
// (two clock reads and in-flight cohort accounting).
func BenchmarkAllowDoneSlowWatch(b *testing.B) {
	cfg := createDefaultConfig()
	cfg.SlowCallDuration = 1e9
	c := benchProvider(b, cfg)
	br := c.Breaker("backend:4317")
	b.ReportAllocs()
	for b.Loop() {
		p, err := br.Allow()
		if err != nil {
			b.Fatal(err)
		}
		p.Done(nil)
	}
}

// BenchmarkAllowDoneOutlierDetection is the closed path with
// outlier_detection on: the same code, the detector reads the counters
// once per interval.
func BenchmarkAllowDoneOutlierDetection(b *testing.B) {
	cfg := createDefaultConfig()
	cfg.OutlierDetection.GetOrInsertDefault()
	c := benchProvider(b, cfg)
	br := c.Breaker("backend:4317")
	b.ReportAllocs()
	for b.Loop() {
		p, err := br.Allow()
		if err != nil {
			b.Fatal(err)
		}
		p.Done(nil)
	}
}

func BenchmarkAllowDoneParallel(b *testing.B) {
	br := benchProvider(b, createDefaultConfig()).Breaker("backend:4317")
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			p, err := br.Allow()
			if err != nil {
				b.Error(err)
				return
			}
			p.Done(nil)
		}
	})
}

// BenchmarkAllowDoneParallelKeys gives each goroutine its own key, as a
// fanout over several backends does: per-key state means no shared writes.
func BenchmarkAllowDoneParallelKeys(b *testing.B) {
	c := benchProvider(b, createDefaultConfig())
	var n atomic.Int64
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		br := c.Breaker("backend-" + strconv.FormatInt(n.Add(1), 10))
		for pb.Next() {
			p, err := br.Allow()
			if err != nil {
				b.Error(err)
				return
			}
			p.Done(nil)
		}
	})
}

func openBreaker(b *testing.B) Breaker {
	cfg := createDefaultConfig()
	cfg.OpenDuration, cfg.MaxOpenDuration = time.Hour, time.Hour // open for the whole run
	c := benchProvider(b, cfg)
	br := c.Breaker("backend:4317")
	for range 5 {
		p, _ := br.Allow()
		p.Done(errors.New("boom"))
	}
	if br.State() != StateOpen {
		b.Fatal("breaker did not open")
	}
	return br
}

// BenchmarkAllowOpen is the rejection path.
func BenchmarkAllowOpen(b *testing.B) {
	br := openBreaker(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := br.Allow(); err == nil {
			b.Fatal("admitted")
		}
	}
}

func BenchmarkAllowOpenParallel(b *testing.B) {
	br := openBreaker(b)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := br.Allow(); err == nil {
				b.Error("admitted")
				return
			}
		}
	})
}

// BenchmarkProviderBreaker is the key lookup callers do per call.
func BenchmarkProviderBreaker(b *testing.B) {
	c := benchProvider(b, createDefaultConfig())
	c.Breaker("backend:4317")
	key := "backend:4317"
	b.ReportAllocs()
	for b.Loop() {
		_ = c.Breaker(key)
	}
}
