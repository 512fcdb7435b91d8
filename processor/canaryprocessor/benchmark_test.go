package canaryprocessor

import (
	"context"
	"fmt"
	"testing"
	"time"

	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/processor/processortest"

	"github.com/otelcsp/otelcsp/internal/clock"
	"github.com/otelcsp/otelcsp/processor/canaryprocessor/internal/metadata"
	"github.com/otelcsp/otelcsp/processor/canaryprocessor/internal/metadatatest"
)

// BenchmarkNonCanary is the cost the processor adds to ordinary traffic:
// one attribute lookup per resource (eight attributes each here), nothing
// per span. Reported per span; it must stay at 0 allocations.
func BenchmarkNonCanary(b *testing.B) {
	for _, shape := range []struct{ resources, spans int }{
		{12, 50}, // a typical batch: a dozen resources, 600 spans
		{1, 1000},
		{100, 1}, // the worst case: one span per resource
	} {
		b.Run(fmt.Sprintf("resources=%d/spans_per_resource=%d", shape.resources, shape.spans), func(b *testing.B) {
			p, err := newTracesProcessor(processortest.NewNopSettings(metadata.Type), createDefaultConfig(), consumertest.NewNop(), clock.Real{})
			if err != nil {
				b.Fatal(err)
			}
			td := appTraces(shape.resources, shape.spans)
			spans := td.SpanCount()
			ctx := context.Background()
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if err := p.ConsumeTraces(ctx, td); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*spans), "ns/span")
			b.ReportMetric(float64(b.N*spans)/b.Elapsed().Seconds(), "spans/s")
		})
	}
}

// BenchmarkCanary is the cost of one canary trace (two resources, the
// numbered root and a child), counted with the SDK's meter; drop: false so
// the batch can be reused, each time with the next sequence number.
func BenchmarkCanary(b *testing.B) {
	tel := componenttest.NewTelemetry()
	defer func() { _ = tel.Shutdown(context.Background()) }()
	cfg := createDefaultConfig()
	cfg.Drop = false
	p, err := newTracesProcessor(metadatatest.NewSettings(tel), cfg, consumertest.NewNop(), clock.Real{})
	if err != nil {
		b.Fatal(err)
	}
	td := ptrace.NewTraces()
	appendCanary(td, canaryTrace{gen: "agent-0123456789abcdef", seq: int64(1), end: time.Now()})
	seq, _ := td.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0).Attributes().Get(attrSequence)
	ctx := context.Background()
	b.ReportAllocs()
	n := int64(1)
	for b.Loop() {
		n++
		seq.SetInt(n)
		if err := p.ConsumeTraces(ctx, td); err != nil {
			b.Fatal(err)
		}
	}
}
