package fanoutexporter

import (
	"math/rand/v2"
	"testing"

	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pipeline"
)

// fuzzSplit splits data by every routing key of signal over r and fails
// unless every item comes out exactly once.
func fuzzSplit[T any](t *testing.T, data T, signal pipeline.Signal, r *ring,
	ops func(*Config, string, subExporter) signalOps[T], copyOf func(T) T, attrs []string,
) {
	for _, key := range routingKeys[signal] {
		o := ops(&Config{RoutingKey: key, RoutingAttributes: attrs}, key, subExporter{})
		want := o.count(data)
		sp := o.newSplit(r.size())
		sp.add(copyOf(data), func(h uint64, _ int) int { return r.owner(r.slot(h)) })
		got := 0
		for _, p := range sp.finish() {
			got += o.count(p)
		}
		if got != want {
			t.Fatalf("%s by %s: %d items in, %d out", signal, key, want, got)
		}
	}
}

// FuzzSplitTraces feeds arbitrary OTLP trace payloads through the splitter
// for every routing key: whatever arrives, nothing crashes and every span
// comes out exactly once.
func FuzzSplitTraces(f *testing.F) {
	seed, _ := (&ptrace.ProtoMarshaler{}).MarshalTraces(genTraces(rand.New(rand.NewPCG(1, 1)), 5, 3))
	f.Add(seed, uint8(3))
	f.Add([]byte{}, uint8(1))
	rings := []*ring{newRing(nil), newRing(endpoints(1)), newRing(endpoints(3)), newRing(endpoints(7))}
	f.Fuzz(func(t *testing.T, payload []byte, backends uint8) {
		td, err := (&ptrace.ProtoUnmarshaler{}).UnmarshalTraces(payload)
		if err != nil {
			return
		}
		fuzzSplit(t, td, pipeline.SignalTraces, rings[int(backends)%len(rings)], tracesOps, func(td ptrace.Traces) ptrace.Traces {
			out := ptrace.NewTraces()
			td.CopyTo(out)
			return out
		}, []string{"a", "b"})
	})
}

func FuzzSplitMetrics(f *testing.F) {
	md := pmetric.NewMetrics()
	m := md.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
	m.SetName("m")
	m.SetEmptyGauge()
	for i := range 5 {
		m.Gauge().DataPoints().AppendEmpty().Attributes().PutInt("i", int64(i))
	}
	seed, _ := (&pmetric.ProtoMarshaler{}).MarshalMetrics(md)
	f.Add(seed)
	r := newRing(endpoints(4))
	f.Fuzz(func(t *testing.T, payload []byte) {
		md, err := (&pmetric.ProtoUnmarshaler{}).UnmarshalMetrics(payload)
		if err != nil {
			return
		}
		fuzzSplit(t, md, pipeline.SignalMetrics, r, metricsOps, func(md pmetric.Metrics) pmetric.Metrics {
			out := pmetric.NewMetrics()
			md.CopyTo(out)
			return out
		}, []string{"i"})
	})
}

func FuzzSplitLogs(f *testing.F) {
	ld := plog.NewLogs()
	ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords().AppendEmpty().Body().SetStr("x")
	seed, _ := (&plog.ProtoMarshaler{}).MarshalLogs(ld)
	f.Add(seed)
	r := newRing(endpoints(4))
	f.Fuzz(func(t *testing.T, payload []byte) {
		ld, err := (&plog.ProtoUnmarshaler{}).UnmarshalLogs(payload)
		if err != nil {
			return
		}
		fuzzSplit(t, ld, pipeline.SignalLogs, r, logsOps, func(ld plog.Logs) plog.Logs {
			out := plog.NewLogs()
			ld.CopyTo(out)
			return out
		}, []string{"a"})
	})
}

func FuzzParseBackendList(f *testing.F) {
	f.Add([]byte("a:4317\nb:4317 2\n# comment\n"))
	f.Add([]byte("[::1]:4317 0.5"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		specs, err := parseBackendList(raw, "f")
		if err != nil {
			return
		}
		for _, s := range specs {
			if validateEndpoint(s.endpoint) != nil || validateWeight(s.weight) != nil {
				t.Fatalf("accepted an invalid backend %+v", s)
			}
		}
		_ = newRing(specs)
	})
}
