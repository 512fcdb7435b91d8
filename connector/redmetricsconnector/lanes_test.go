package redmetricsconnector

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// laneBatch is one batch of the lane tests: four operations of two
// services, durations from 0 to 5 s (exact in binary, so sums do not depend
// on the order of additions), events on some spans, trace IDs for exemplars.
func laneBatch(round, part int) ptrace.Traces {
	var specs []spanSpec
	for i := range 12 {
		s := spanSpec{
			service:  fmt.Sprintf("svc-%d", i%2),
			name:     fmt.Sprintf("op-%d", (i+part)%4),
			kind:     ptrace.SpanKindServer,
			durMs:    float64((i*37+round*11+part*5)%5000) + 0.5*float64(i%2),
			attrs:    map[string]any{"http.method": []string{"GET", "POST"}[i%2]},
			traceID:  byte(1 + i + 16*part),
			status:   ptrace.StatusCode(i % 3),
			events:   nil,
			resAttrs: nil,
		}
		if i%3 == 0 {
			s.events = []map[string]any{{"exception.type": "E"}}
		}
		if i%5 == 0 {
			s.durMs = 0 // the zero bucket of an exponential histogram
		}
		specs = append(specs, s)
	}
	return buildTraces(specs...)
}

func laneConfigs() map[string]func(*Config) {
	return map[string]func(*Config){
		"cumulative": func(*Config) {},
		"delta":      func(c *Config) { c.AggregationTemporality = Delta },
		"exponential": func(c *Config) {
			c.Histogram.Exponential = &ExponentialHistogramConfig{MaxSize: 8}
		},
		"exemplars and events": func(c *Config) {
			c.Exemplars = ExemplarsConfig{Enabled: true, MaxPerDataPoint: 1000}
			c.Events = EventsConfig{Enabled: true, Dimensions: []Dimension{{Name: "exception.type"}}}
		},
		"cardinality limit": func(c *Config) { c.CardinalityLimit = 5 },
		"expiry shorter than a flush": func(c *Config) {
			c.SeriesExpiration = time.Second
		},
	}
}

// A caller that finds primary taken counts its spans in a lane; at the
// next flush the output is what one caller sending every batch in turn
// produces: the same points, counts, buckets, exemplars, overflow and
// start times, over rounds that reuse, expire and recreate series.
func TestLanesMatchDirectUpdates(t *testing.T) {
	for name, mod := range laneConfigs() {
		t.Run(name, func(t *testing.T) {
			cfg := createDefaultConfig()
			cfg.Dimensions = []Dimension{{Name: "http.method"}}
			mod(cfg)
			direct, directSink, directClk := newTestConnector(t, cfg)
			laned, lanedSink, lanedClk := newTestConnector(t, cfg)
			ctx := context.Background()
			for round := range 4 {
				for part := range 3 {
					require.NoError(t, direct.ConsumeTraces(ctx, laneBatch(round, part)))
					if part == 0 {
						// Straight into the shards, as the lone caller.
						require.NoError(t, laned.ConsumeTraces(ctx, laneBatch(round, part)))
						continue
					}
					laned.primary.Lock() // another caller holds primary
					require.NoError(t, laned.ConsumeTraces(ctx, laneBatch(round, part)))
					laned.primary.Unlock()
				}
				// Past series_expiration in one case: the series expire
				// at this flush (lane entries with them) and are created
				// again in the next round.
				directClk.Advance(1500 * time.Millisecond)
				lanedClk.Advance(1500 * time.Millisecond)
				// A fresh series per service keeps the resources alive,
				// so the next round finds its lane entries by resource.
				keepers := buildTraces(spanSpec{service: "svc-0", name: "keeper"}, spanSpec{service: "svc-1", name: "keeper"})
				require.NoError(t, direct.ConsumeTraces(ctx, keepers))
				require.NoError(t, laned.ConsumeTraces(ctx, keepers))
				direct.flush(ctx)
				laned.flush(ctx)
			}
			require.Equal(t, normalize(t, allMetrics(directSink)), normalize(t, allMetrics(lanedSink)))
			require.Positive(t, allMetrics(lanedSink).DataPointCount())
		})
	}
}

// The exponential histograms of a lane and of its series join at the
// finest scale both fit in: as if every value had been recorded in one.
func TestExpoMergeEqualsRecording(t *testing.T) {
	for _, tc := range []struct {
		name string
		a, b []float64
		max  int32
	}{
		{"disjoint ranges", []float64{1, 2, 3}, []float64{1000, 5000}, 8},
		{"b empty", []float64{1, 2}, nil, 8},
		{"a empty", nil, []float64{7, 0, 9}, 8},
		{"overlapping, fine", []float64{1.5, 1.6}, []float64{1.55, 1.7}, 160},
		{"wide", []float64{1e-6, 0.3}, []float64{1e6, 42}, 4},
		{"below one", []float64{0.001, 0.002}, []float64{0.5, 0.0001}, 16},
	} {
		t.Run(tc.name, func(t *testing.T) {
			all, a, b := newExpoHist(), newExpoHist(), newExpoHist()
			for _, v := range tc.a {
				a.record(v, 2, tc.max)
				all.record(v, 2, tc.max)
			}
			for _, v := range tc.b {
				b.record(v, 3, tc.max)
				all.record(v, 3, tc.max)
			}
			a.merge(b, tc.max)
			require.Equal(t, *all, *a)
		})
	}
}

// Many callers at once, with flushes in between: every span is counted
// once, whichever lane counted it.
func TestLanesConcurrentCallersLoseNothing(t *testing.T) {
	cfg := createDefaultConfig()
	cfg.AggregationTemporality = Delta
	c, sink, _ := newTestConnector(t, cfg)
	ctx := context.Background()
	const callers, batches = 6, 60
	var wg sync.WaitGroup
	for g := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range batches {
				if err := c.ConsumeTraces(ctx, laneBatch(i, g%3)); err != nil {
					t.Error(err)
					return
				}
				if i%10 == 0 {
					c.flush(ctx)
				}
			}
		}()
	}
	// One caller stuck on primary for a while: the others must use lanes.
	c.primary.Lock()
	for i := range batches {
		require.NoError(t, c.ConsumeTraces(ctx, laneBatch(i, 1)))
	}
	c.primary.Unlock()
	wg.Wait()
	c.flush(ctx) // Shutdown flushes only a started connector

	var calls int64
	for _, md := range sink.AllMetrics() {
		rms := md.ResourceMetrics()
		for i := 0; i < rms.Len(); i++ {
			sms := rms.At(i).ScopeMetrics()
			for j := 0; j < sms.Len(); j++ {
				ms := sms.At(j).Metrics()
				for k := 0; k < ms.Len(); k++ {
					if m := ms.At(k); m.Name() == "traces.span.metrics.calls" && m.Type() == pmetric.MetricTypeSum {
						for p := 0; p < m.Sum().DataPoints().Len(); p++ {
							calls += m.Sum().DataPoints().At(p).IntValue()
						}
					}
				}
			}
		}
	}
	require.Equal(t, int64((callers+1)*batches*12), calls)
}
