package syntheticreceiver

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/receiver/receivertest"
)

// BenchmarkGenerate measures the generator alone on the default topology,
// one trace per batch and 100 as a loaded receiver would send them. Run it
// with -cpu 1 for the one-core figure: spans/cpu-s then counts the garbage
// collector's work too, and is what the README quotes.
func BenchmarkGenerate(b *testing.B) {
	for _, batch := range []int{1, 100} {
		b.Run(benchName(batch), func(b *testing.B) {
			g := newTestGenerator(b, nil, 1, true)
			now := time.Unix(1_700_000_000, 0)
			spans := 0
			b.ReportAllocs()
			cpu0, cpuOK := processCPU()
			for b.Loop() {
				_, n := g.generate(batch, now)
				spans += n
			}
			sec := b.Elapsed().Seconds()
			if cpu1, ok := processCPU(); ok && cpuOK {
				b.ReportMetric(float64(spans)/(cpu1-cpu0).Seconds(), "spans/cpu-s")
			}
			b.ReportMetric(float64(spans)/sec, "spans/s")
			b.ReportMetric(float64(b.N*batch)/sec, "traces/s")
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(spans), "ns/span")
			b.ReportMetric(allocsPerSpan(b, g, batch), "allocs/span")
		})
	}
}

func benchName(batch int) string {
	if batch == 1 {
		return "batch=1"
	}
	return "batch=100"
}

// allocsPerSpan measures allocations per span outside the timed loop, as
// -benchmem reports them per batch only.
func allocsPerSpan(b *testing.B, g *generator, batch int) float64 {
	b.StopTimer()
	defer b.StartTimer()
	now := time.Unix(1_700_000_000, 0)
	spans := 0
	allocs := testing.AllocsPerRun(20, func() {
		_, n := g.generate(batch, now)
		spans += n
	})
	return allocs * 21 / float64(spans)
}

// BenchmarkEmit measures one batch of 100 traces through the receiver's
// emit path: generation, own metrics, obsreport, a traces and a logs
// consumer that drop what they get.
func BenchmarkEmit(b *testing.B) {
	cfg := testConfig(1e9, 100, 0)
	r, err := newReceiver(cfg, receivertest.NewNopSettings(typ), newFakeClock())
	require.NoError(b, err)
	r.nextTraces = consumertest.NewNop()
	r.nextLogs = consumertest.NewNop()
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		r.emit(ctx, cfg.BatchSize)
	}
	// Spans per batch of the default topology, measured on the side.
	_, spans := newTestGenerator(b, nil, 1, false).generate(10000, time.Now())
	perBatch := float64(spans) / 100
	b.ReportMetric(float64(b.N)*perBatch/b.Elapsed().Seconds(), "spans/s")
}
