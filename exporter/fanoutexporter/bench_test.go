package fanoutexporter

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/exportertest"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/otelcsp/otelcsp/exporter/fanoutexporter/internal/metadata"
	"github.com/otelcsp/otelcsp/internal/otlptest"
)

// nopTracesFanout is a started fanout over n backends whose exporters
// drop what they get, so the benchmark measures routing alone.
func nopTracesFanout(b *testing.B, n int) *fanout[ptrace.Traces] {
	cfg := createDefaultConfig().(*Config)
	static := StaticResolverConfig{}
	for i := range n {
		static.Endpoints = append(static.Endpoints, fmt.Sprintf("backend-%d:4317", i))
	}
	cfg.Resolver.Static = configoptional.Some(static)
	ops := tracesOps(cfg, keyTraceID, subExporter{})
	ops.newSub = func(context.Context, exporter.Settings, string) (component.Component, func(context.Context, ptrace.Traces) error, error) {
		return nopComponent{}, func(context.Context, ptrace.Traces) error { return nil }, nil
	}
	f, err := newFanout(exportertest.NewNopSettings(metadata.Type), cfg, ops)
	if err != nil {
		b.Fatal(err)
	}
	if err := f.start(context.Background(), componenttest.NewNopHost()); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = f.shutdown(context.Background()) })
	return f
}

type nopComponent struct {
	component.StartFunc
	component.ShutdownFunc
}

// BenchmarkFanoutTraces routes batches of 1,000 spans (250 traces of 4
// spans, over 3 resources and 2 scopes) by trace ID to 10 backends.
func BenchmarkFanoutTraces(b *testing.B) {
	f := nopTracesFanout(b, 10)
	template := genTraces(rand.New(rand.NewPCG(1, 2)), 250, 4)
	spans := template.SpanCount()
	batch := ptrace.NewTraces()
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		b.StopTimer()
		template.CopyTo(batch)
		b.StartTimer()
		if err := f.push(ctx, batch); err != nil {
			b.Fatal(err)
		}
	}
	reportPerSpan(b, spans)
}

func reportPerSpan(b *testing.B, spansPerOp int) {
	ns := float64(b.Elapsed().Nanoseconds()) / float64(b.N) / float64(spansPerOp)
	b.ReportMetric(ns, "ns/span")
	b.ReportMetric(1e9/ns, "spans/s")
}

// BenchmarkEndToEnd sends the same 1,000-span batches over real loopback
// gRPC, once through the fanout to three OTLP servers and once through the
// core otlp exporter to one, to measure what routing costs on top of
// exporting. Both exporters run without queue or retry and with the same
// connection settings (no compression), so the difference is the fanout's.
func BenchmarkEndToEnd(b *testing.B) {
	template := genTraces(rand.New(rand.NewPCG(3, 4)), 250, 4)
	spans := template.SpanCount()
	run := func(b *testing.B, exp exporter.Traces) {
		require.NoError(b, exp.Start(context.Background(), componenttest.NewNopHost()))
		defer func() { require.NoError(b, exp.Shutdown(context.Background())) }()
		batch := ptrace.NewTraces()
		b.ReportAllocs()
		b.ResetTimer()
		for b.Loop() {
			b.StopTimer()
			template.CopyTo(batch)
			b.StartTimer()
			if err := exp.ConsumeTraces(context.Background(), batch); err != nil {
				b.Fatal(err)
			}
		}
		reportPerSpan(b, spans)
	}
	conn := defaultOTLPConfig()
	conn.TLS.Insecure = true
	conn.Compression = "none"

	b.Run("impl=fanout3", func(b *testing.B) {
		servers := []*otlptest.Server{otlptest.Start(b, otlptest.Discard()), otlptest.Start(b, otlptest.Discard()), otlptest.Start(b, otlptest.Discard())}
		cfg := createDefaultConfig().(*Config)
		cfg.Resolver.Static = configoptional.Some(StaticResolverConfig{Endpoints: []string{servers[0].Addr(), servers[1].Addr(), servers[2].Addr()}})
		cfg.Protocol.OTLP = configoptional.Some(conn)
		cfg.RetryConfig.Enabled = false
		exp, err := NewFactory().CreateTraces(context.Background(), exportertest.NewNopSettings(metadata.Type), cfg)
		require.NoError(b, err)
		run(b, exp)
	})
	b.Run("impl=otlp", func(b *testing.B) {
		server := otlptest.Start(b, otlptest.Discard())
		sub := newSubExporter(ProtocolConfig{OTLP: configoptional.Some(conn)})
		exp, err := sub.traces(context.Background(), exportertest.NewNopSettings(metadata.Type), server.Addr())
		require.NoError(b, err)
		run(b, exp)
	})
}
