package fanoutexporter

import (
	"math/rand/v2"
	"testing"

	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pipeline"
)

// FuzzSplitTraces feeds arbitrary OTLP trace payloads through the splitter
// for every routing key: whatever arrives, nothing crashes and every span
// comes out exactly once.
func FuzzSplitTraces(f *testing.F) {
	seed, _ := (&ptrace.ProtoMarshaler{}).MarshalTraces(genTraces(rand.New(rand.NewPCG(1, 1)), 5, 3))
	f.Add(seed, uint8(3))
	f.Add([]byte{}, uint8(1))
	r := []*ring{newRing(nil), newRing(endpoints(1)), newRing(endpoints(3)), newRing(endpoints(7))}
	f.Fuzz(func(t *testing.T, payload []byte, backends uint8) {
		td, err := (&ptrace.ProtoUnmarshaler{}).UnmarshalTraces(payload)
		if err != nil {
			return
		}
		ring := r[int(backends)%len(r)]
		want := td.SpanCount()
		for _, key := range routingKeys[pipeline.SignalTraces] {
			in := ptrace.NewTraces()
			td.CopyTo(in)
			cfg := &Config{RoutingKey: key, RoutingAttributes: []string{"a", "b"}}
			sp := tracesOps(cfg, key, subExporter{}).newSplit(ring.size())
			sp.add(in, func(h uint64) int { return ring.owner(ring.slot(h)) })
			got := 0
			for _, p := range sp.finish() {
				got += p.SpanCount()
			}
			if got != want {
				t.Fatalf("%s: %d spans in, %d out", key, want, got)
			}
		}
	})
}

func FuzzSplitMetrics(f *testing.F) {
	md := pmetric.NewMetrics()
	m := md.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
	m.SetName("m")
	for i := range 5 {
		m.SetEmptyGauge()
		m.Gauge().DataPoints().AppendEmpty().Attributes().PutInt("i", int64(i))
	}
	seed, _ := (&pmetric.ProtoMarshaler{}).MarshalMetrics(md)
	f.Add(seed)
	ring := newRing(endpoints(4))
	f.Fuzz(func(t *testing.T, payload []byte) {
		md, err := (&pmetric.ProtoUnmarshaler{}).UnmarshalMetrics(payload)
		if err != nil {
			return
		}
		want := md.DataPointCount()
		for _, key := range routingKeys[pipeline.SignalMetrics] {
			in := pmetric.NewMetrics()
			md.CopyTo(in)
			cfg := &Config{RoutingKey: key, RoutingAttributes: []string{"i"}}
			sp := metricsOps(cfg, key, subExporter{}).newSplit(ring.size())
			sp.add(in, func(h uint64) int { return ring.owner(ring.slot(h)) })
			got := 0
			for _, p := range sp.finish() {
				got += p.DataPointCount()
			}
			if got != want {
				t.Fatalf("%s: %d points in, %d out", key, want, got)
			}
		}
	})
}

func FuzzSplitLogs(f *testing.F) {
	ld := plog.NewLogs()
	ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords().AppendEmpty().Body().SetStr("x")
	seed, _ := (&plog.ProtoMarshaler{}).MarshalLogs(ld)
	f.Add(seed)
	ring := newRing(endpoints(4))
	f.Fuzz(func(t *testing.T, payload []byte) {
		ld, err := (&plog.ProtoUnmarshaler{}).UnmarshalLogs(payload)
		if err != nil {
			return
		}
		want := ld.LogRecordCount()
		for _, key := range routingKeys[pipeline.SignalLogs] {
			in := plog.NewLogs()
			ld.CopyTo(in)
			cfg := &Config{RoutingKey: key, RoutingAttributes: []string{"a"}}
			sp := logsOps(cfg, key, subExporter{}).newSplit(ring.size())
			sp.add(in, func(h uint64) int { return ring.owner(ring.slot(h)) })
			got := 0
			for _, p := range sp.finish() {
				got += p.LogRecordCount()
			}
			if got != want {
				t.Fatalf("%s: %d records in, %d out", key, want, got)
			}
		}
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
