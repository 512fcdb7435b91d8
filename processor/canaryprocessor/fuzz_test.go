package canaryprocessor

import (
	"context"
	"encoding/binary"
	"math"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/processor/processortest"

	"github.com/otelcsp/otelcsp/internal/fuzzconfig"
	"github.com/otelcsp/otelcsp/processor/canaryprocessor/internal/metadata"
)

// FuzzConfig: whatever the config, unmarshalling and validation return
// errors rather than panic, and a config that validates builds a traces
// and a logs processor that start, take canary data and shut down.
func FuzzConfig(f *testing.F) {
	fuzzconfig.Run(f, fuzzconfig.Target[*Config]{
		NewConfig: NewFactory().CreateDefaultConfig,
		Seeds: []string{
			"loss_after: 1ns",
			"loss_after: 99999999999999999999h",
			"window: 9223372036854775807",
			"window: 1000000\nmax_generators: 268",
			"max_generators: -9223372036854775808",
			"resource_attributes: [a, a]",
			"resource_attributes: {a: b}",
			"resource_attributes: " + strings.Repeat("[", 200) + strings.Repeat("]", 200),
			"drop: 0",
		},
		Build: func(ctx context.Context, t *testing.T, cfg *Config) (fuzzconfig.Built, bool) {
			set := processortest.NewNopSettings(metadata.Type)
			tp, err := NewFactory().CreateTraces(ctx, set, cfg, consumertest.NewNop())
			if err != nil {
				t.Fatalf("create with a valid config: %v", err)
			}
			lp, err := NewFactory().CreateLogs(ctx, set, cfg, consumertest.NewNop())
			if err != nil {
				t.Fatalf("create logs with a valid config: %v", err)
			}
			return fuzzconfig.Built{
				Components: []component.Component{tp, lp},
				Use: func(ctx context.Context) error {
					for _, td := range []ptrace.Traces{canaries("g", 1, 3, 2, 2), appTraces(1, 1), canaries("h", 5)} {
						if err := tp.ConsumeTraces(ctx, td); err != nil {
							return err
						}
					}
					return lp.ConsumeLogs(ctx, canaryLogs("g"))
				},
			}, true
		},
	})
}

// fuzzValue turns fuzz bytes into an attribute value of any type.
func fuzzValue(v pcommon.Value, kind byte, b []byte) {
	var n uint64
	if len(b) >= 8 {
		n = binary.LittleEndian.Uint64(b)
	}
	switch kind % 8 {
	case 0:
		v.SetStr(string(b))
	case 1:
		v.SetInt(int64(n))
	case 2:
		v.SetDouble(math.Float64frombits(n))
	case 3:
		v.SetBool(n%2 == 0)
	case 4:
		v.SetEmptyBytes().FromRaw(b)
	case 5:
		s := v.SetEmptySlice()
		for _, c := range b {
			s.AppendEmpty().SetInt(int64(c))
		}
	case 6:
		m := v.SetEmptyMap()
		m.PutStr("k", string(b))
		m.PutEmptyMap("nested").PutInt("n", int64(n))
	case 7:
		v.SetInt(int64(n%64) + 1) // a plausible number
	}
}

// FuzzCanaryAttributes feeds the processor canary traces whose
// synthetic.generator, synthetic.sequence, end time and resource attribute
// take any value, in batches, with the clock moving: never a panic, and the
// memory stays bounded (generators at most max_generators, each holding
// its window, its key and tag cut to maxValueLen per value).
func FuzzCanaryAttributes(f *testing.F) {
	f.Add([]byte("\x00\x07gen-one\x07\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"))
	f.Add([]byte(strings.Repeat("\x04\x05\xff\xfe\xfd\xfc\x80\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f\x10", 20)))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg := createDefaultConfig()
		cfg.MaxGenerators = 4
		cfg.Window = 64
		cfg.LossAfter = time.Second
		cfg.ResourceAttributes = []string{"k8s.pod.name"}
		clk := newManualClock()
		p, err := newTracesProcessor(processortest.NewNopSettings(metadata.Type), cfg, newTraceRecorder(), clk)
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		for len(data) >= 18 {
			kinds, l := data[0], int(data[1])%64
			chunk := data[2:18]
			data = data[18:]
			var gen []byte
			if l <= len(data) {
				gen, data = data[:l], data[l:]
			}
			td := ptrace.NewTraces()
			for _, big := range []bool{false, true} {
				rs := td.ResourceSpans().AppendEmpty()
				ra := rs.Resource().Attributes()
				g := gen
				if big {
					g = []byte(strings.Repeat(string(gen)+"x", 300)) // longer than maxValueLen
				}
				fuzzValue(ra.PutEmpty(attrGenerator), kinds, g)
				fuzzValue(ra.PutEmpty("k8s.pod.name"), kinds>>3, chunk[8:])
				s := rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
				fuzzValue(s.Attributes().PutEmpty(attrSequence), kinds>>5|kinds<<3, chunk[:8])
				s.SetEndTimestamp(pcommon.Timestamp(binary.LittleEndian.Uint64(chunk[8:])))
			}
			if err := p.ConsumeTraces(ctx, td); err != nil {
				t.Fatal(err)
			}
			clk.StepWall(time.Duration(chunk[0]) * 10 * time.Millisecond)
			if chunk[1]%4 == 0 {
				p.sweep(ctx)
			}
			if n := p.tracker.Len(); n > cfg.MaxGenerators {
				t.Fatalf("%d generators followed, max %d", n, cfg.MaxGenerators)
			}
			if len(p.key) > 2*(maxValueLen+10) {
				t.Fatalf("key buffer of %d bytes", len(p.key))
			}
		}
		if err := p.Shutdown(ctx); err != nil {
			t.Fatal(err)
		}
	})
}

// TestValueString: values are cut at maxValueLen, on a rune boundary.
func TestValueString(t *testing.T) {
	v := pcommon.NewValueStr(strings.Repeat("é", 200)) // 400 bytes
	s := valueString(v)
	if len(s) > maxValueLen || len(s)%2 != 0 {
		t.Fatalf("cut to %d bytes", len(s))
	}
	if got := valueString(pcommon.NewValueInt(42)); got != "42" {
		t.Fatalf("int: %q", got)
	}
}

func TestSequenceOf(t *testing.T) {
	for _, tt := range []struct {
		v    pcommon.Value
		want int64
		ok   bool
	}{
		{pcommon.NewValueInt(7), 7, true},
		{pcommon.NewValueInt(0), 0, false},
		{pcommon.NewValueInt(-1), 0, false},
		{pcommon.NewValueDouble(12), 12, true},
		{pcommon.NewValueDouble(1.5), 0, false},
		{pcommon.NewValueDouble(math.Inf(1)), 0, false},
		{pcommon.NewValueDouble(math.NaN()), 0, false},
		{pcommon.NewValueDouble(math.Exp2(63)), 0, false},
		{pcommon.NewValueStr("99"), 99, true},
		{pcommon.NewValueStr(" 99"), 0, false},
		{pcommon.NewValueStr("99999999999999999999"), 0, false},
		{pcommon.NewValueBool(true), 0, false},
	} {
		got, ok := sequenceOf(tt.v)
		if ok != tt.ok || (ok && got != tt.want) {
			t.Errorf("%s: got %d, %v; want %d, %v", tt.v.AsString(), got, ok, tt.want, tt.ok)
		}
	}
}
