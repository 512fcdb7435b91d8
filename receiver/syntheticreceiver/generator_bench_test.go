package syntheticreceiver

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/featuregate"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/xpdata/pref"
	"go.opentelemetry.io/collector/receiver/receivertest"
)

// BenchmarkGenerate measures the generator alone on the default topology:
// one trace per batch, and 100 as a loaded receiver sends them. Each batch
// is a new ptrace.Traces that the pipeline then owns, so a span costs what
// pdata allocates for it: the span, its attribute slice and one value per
// attribute (5.7 on average here).
//
// pooled is batch=100 with pdata's pdata.useProtoPooling feature gate on,
// and each batch released as the collector's pipeline releases it once
// every consumer is done with it (pref.UnrefTraces): pdata then reuses the
// spans and values of released batches, which is the only safe way to
// reuse them, as the receiver cannot know when the pipeline is done.
//
// Run it with -cpu 1 for the one-core figure: spans/cpu-s then counts the
// garbage collector's work too.
func BenchmarkGenerate(b *testing.B) {
	for _, bc := range []struct {
		name   string
		batch  int
		pooled bool
	}{
		{"batch=1", 1, false},
		{"batch=100", 100, false},
		{"pooled", 100, true},
	} {
		b.Run(bc.name, func(b *testing.B) {
			if bc.pooled {
				setProtoPooling(b, true)
				defer setProtoPooling(b, false)
			}
			g := newTestGenerator(b, nil, 1, true)
			now := time.Unix(1_700_000_000, 0)
			spans := 0
			batch := func() {
				td, n := g.generate(bc.batch, now)
				spans += n
				if bc.pooled {
					release(td)
				}
			}
			b.ReportAllocs()
			cpu0, cpuOK := processCPU()
			for b.Loop() {
				batch()
			}
			sec := b.Elapsed().Seconds()
			if cpu1, ok := processCPU(); ok && cpuOK {
				b.ReportMetric(float64(spans)/(cpu1-cpu0).Seconds(), "spans/cpu-s")
			}
			b.ReportMetric(float64(spans)/sec, "spans/s")
			b.ReportMetric(float64(b.N*bc.batch)/sec, "traces/s")
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(spans), "ns/span")

			// -benchmem reports allocations per batch; per span they are
			// counted on the side, outside the timed loop.
			b.StopTimer()
			spans = 0
			allocs := testing.AllocsPerRun(20, batch) // 21 runs: one warm-up
			b.ReportMetric(allocs*21/float64(spans), "allocs/span")
		})
	}
}

// release does what the collector's pipeline does with a batch once every
// consumer has returned and none kept a reference: with the pooling gate
// on, pdata takes the batch's objects back for reuse.
func release(td ptrace.Traces) {
	if pref.MarkPipelineOwnedTraces(td) {
		pref.UnrefTraces(td)
	}
}

// setProtoPooling turns pdata's pooling gate on or off for the whole
// process (pdata reads it on every allocation).
func setProtoPooling(tb testing.TB, on bool) {
	require.NoError(tb, featuregate.GlobalRegistry().Set(pref.UseProtoPooling.ID(), on))
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
