package fanoutexporter

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/mem"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/exporterhelper"
	"go.opentelemetry.io/collector/exporter/exportertest"
	"go.opentelemetry.io/collector/exporter/otlpexporter"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/otelcsp/otelcsp/exporter/fanoutexporter/internal/metadata"
	"github.com/otelcsp/otelcsp/internal/otlptest"
)

// nopTracesFanout is a started fanout over n backends whose exporters
// drop what they get, so the benchmark measures routing alone.
func nopTracesFanout(b *testing.B, n int, key string) *fanout[ptrace.Traces] {
	cfg := createDefaultConfig().(*Config)
	cfg.RoutingKey = key
	static := StaticResolverConfig{}
	for i := range n {
		static.Endpoints = append(static.Endpoints, fmt.Sprintf("backend-%d:4317", i))
	}
	cfg.Resolver.Static = configoptional.Some(static)
	ops := tracesOps(cfg, key, subExporter{})
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
func BenchmarkFanoutTraces(b *testing.B) { benchmarkFanoutTraces(b, keyTraceID) }

// BenchmarkFanoutTracesByService is BenchmarkFanoutTraces with
// routing_key service: every scope goes to one backend whole.
func BenchmarkFanoutTracesByService(b *testing.B) { benchmarkFanoutTraces(b, keyService) }

func benchmarkFanoutTraces(b *testing.B, key string) {
	f := nopTracesFanout(b, 10, key)
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
// gRPC, once through the fanout to three OTLP servers (impl=fanout3) and
// once through the core otlp exporter to one (impl=otlp), to measure what
// routing costs on top of exporting. Both exporters run without queue or
// retry and with the same connection settings (no compression), so the
// difference is the fanout's. The servers either decode each request as
// an OTLP receiver would (sink=otlp) or take its bytes and discard them
// (sink=discard): with sinks that cost nothing, what is left is the
// senders' own cost, three requests' transport included.
func BenchmarkEndToEnd(b *testing.B) {
	template := genTraces(rand.New(rand.NewPCG(3, 4)), 250, 4)
	spans := template.SpanCount()
	run := func(b *testing.B, exp exporter.Traces) {
		require.NoError(b, exp.Start(context.Background(), componenttest.NewNopHost()))
		defer func() { require.NoError(b, exp.Shutdown(context.Background())) }()
		b.ReportAllocs()
		cpu := startCPU(b)
		b.ResetTimer()
		for b.Loop() {
			// A fresh batch each time, as a receiver decodes one per
			// request: refilling one batch would favour the exporter that
			// leaves it intact (otlp) over the one that moves its spans
			// out (the fanout), whose refill must allocate again.
			b.StopTimer()
			batch := ptrace.NewTraces()
			template.CopyTo(batch)
			b.StartTimer()
			if err := exp.ConsumeTraces(context.Background(), batch); err != nil {
				b.Fatal(err)
			}
		}
		reportPerSpan(b, spans)
		cpu.report(b, spans)
	}
	conn := defaultOTLPConfig()
	conn.TLS.Insecure = true
	conn.Compression = "none"

	for _, sink := range []struct {
		name  string
		start func(testing.TB) string
	}{{"otlp", startSink}, {"discard", startDiscardSink}} {
		b.Run("sink="+sink.name+"/impl=fanout3", func(b *testing.B) {
			addrs := []string{sink.start(b), sink.start(b), sink.start(b)}
			cfg := createDefaultConfig().(*Config)
			cfg.Resolver.Static = configoptional.Some(StaticResolverConfig{Endpoints: addrs})
			cfg.Protocol.OTLP = configoptional.Some(conn)
			cfg.RetryConfig.Enabled = false
			exp, err := NewFactory().CreateTraces(context.Background(), exportertest.NewNopSettings(metadata.Type), cfg)
			require.NoError(b, err)
			run(b, exp)
		})
		b.Run("sink="+sink.name+"/impl=otlp", func(b *testing.B) {
			run(b, otlpTraces(b, conn, sink.start(b)))
		})
		// The floor of fanning out: three core otlp exporters, each sent
		// its third of the batch (split by trace ID with the fanout's own
		// splitter before the timer starts, so that the parts lie in
		// memory as the fanout's do), in parallel. What the fanout costs
		// above this is its own; what this costs above impl=otlp is three
		// requests instead of one.
		b.Run("sink="+sink.name+"/impl=otlp3", func(b *testing.B) {
			var exps [3]exporter.Traces
			for i := range exps {
				exps[i] = otlpTraces(b, conn, sink.start(b))
				require.NoError(b, exps[i].Start(context.Background(), componenttest.NewNopHost()))
				defer func() { require.NoError(b, exps[i].Shutdown(context.Background())) }()
			}
			b.ReportAllocs()
			cpu := startCPU(b)
			b.ResetTimer()
			for b.Loop() {
				b.StopTimer()
				batch := ptrace.NewTraces()
				template.CopyTo(batch)
				thirds := splitByTraceID(batch, len(exps))
				b.StartTimer()
				var wg sync.WaitGroup
				errs := make([]error, len(exps))
				for i := 1; i < len(exps); i++ {
					wg.Go(func() { errs[i] = exps[i].ConsumeTraces(context.Background(), thirds[i]) })
				}
				errs[0] = exps[0].ConsumeTraces(context.Background(), thirds[0])
				wg.Wait()
				if err := errors.Join(errs...); err != nil {
					b.Fatal(err)
				}
			}
			reportPerSpan(b, spans)
			cpu.report(b, spans)
		})
	}
}

// cpuClock reads the CPU time of the whole process (every thread: the
// senders, the servers, the runtime), which on a shared machine moves much
// less from run to run than wall time does.
type cpuClock struct{ start time.Duration }

func startCPU(b *testing.B) cpuClock { return cpuClock{processCPU(b)} }

// report adds the CPU time per span since start, the untimed refill of
// each batch included (the same in every variant).
func (c cpuClock) report(b *testing.B, spansPerOp int) {
	b.ReportMetric(float64((processCPU(b)-c.start).Nanoseconds())/float64(b.N)/float64(spansPerOp), "cpu-ns/span")
}

func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	require.NoError(b, syscall.Getrusage(syscall.RUSAGE_SELF, &ru))
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// otlpTraces is the core otlp exporter to endpoint, without queue or
// retry, with conn's connection settings.
func otlpTraces(b *testing.B, conn OTLPConfig, endpoint string) exporter.Traces {
	f := otlpexporter.NewFactory()
	cfg := f.CreateDefaultConfig().(*otlpexporter.Config)
	cfg.TimeoutConfig = conn.TimeoutConfig
	cfg.ClientConfig = conn.ClientConfig
	cfg.ClientConfig.Endpoint = endpoint
	cfg.QueueConfig = configoptional.None[exporterhelper.QueueBatchConfig]()
	cfg.RetryConfig.Enabled = false
	exp, err := f.CreateTraces(context.Background(), exportertest.NewNopSettings(f.Type()), cfg)
	require.NoError(b, err)
	return exp
}

// splitByTraceID moves the spans of td into n new batches by trace ID,
// with the fanout's own splitter, so that they are shaped as the fanout's.
func splitByTraceID(td ptrace.Traces, n int) []ptrace.Traces {
	sp := tracesSplitter{tracesSplit: newSplit(tracesShape, n), key: spanKeyFunc(keyTraceID, nil)}
	sp.add(td, func(h uint64, _ int) int { return int(h % uint64(n)) })
	out := make([]ptrace.Traces, n)
	for i, part := range sp.finish()[:n] {
		out[i] = ptrace.NewTraces()
		part.ResourceSpans().MoveAndAppendTo(out[i].ResourceSpans())
	}
	return out
}

// startSink starts an OTLP gRPC server that decodes each request, as an
// OTLP receiver does, and records nothing.
func startSink(tb testing.TB) string { return otlptest.Start(tb, otlptest.Discard()).Addr() }

// startDiscardSink starts a gRPC server that answers every call with an
// empty message (an empty ExportTraceServiceResponse) without decoding
// the request: a backend that costs nothing but the transport.
func startDiscardSink(tb testing.TB) string {
	srv := grpc.NewServer(grpc.ForceServerCodecV2(discardCodec{}),
		grpc.UnknownServiceHandler(func(_ any, stream grpc.ServerStream) error {
			var req struct{}
			if err := stream.RecvMsg(&req); err != nil {
				return err
			}
			return stream.SendMsg(&req)
		}))
	return serve(tb, srv)
}

func serve(tb testing.TB, srv *grpc.Server) string {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(tb, err)
	go func() { _ = srv.Serve(lis) }()
	tb.Cleanup(srv.Stop)
	return lis.Addr().String()
}

// discardCodec reads nothing from a request and writes an empty message.
type discardCodec struct{}

func (discardCodec) Marshal(any) (mem.BufferSlice, error) { return nil, nil }
func (discardCodec) Unmarshal(mem.BufferSlice, any) error { return nil }
func (discardCodec) Name() string                         { return "proto" }
