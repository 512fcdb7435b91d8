package fanoutexporter

import (
	"context"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/exporter/exportertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/otelcsp/otelcsp/exporter/fanoutexporter/internal/metadata"
	"github.com/otelcsp/otelcsp/internal/otlptest"
)

// handoverRun sends traces of spansPer spans, one span of every trace a
// batch, to a fanout over a file resolver, and changes the backend set from
// the first servers to the second halfway through (once the fanout routes
// over the new set), so that every trace straddles the change. It returns
// how many traces reached more than one backend.
func handoverRun(t *testing.T, handover time.Duration, from, to []*otlptest.Server, all []*otlptest.Server) (split, traces int) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "backends.txt")
	write := func(ss []*otlptest.Server) {
		var lines []string
		for _, s := range ss {
			lines = append(lines, s.Addr())
		}
		require.NoError(t, os.WriteFile(path+".tmp", []byte(strings.Join(lines, "\n")), 0o600))
		require.NoError(t, os.Rename(path+".tmp", path))
	}
	write(from)
	cfg := testConfig(from...)
	cfg.Resolver.Static = configoptional.None[StaticResolverConfig]()
	cfg.Resolver.File = configoptional.Some(FileResolverConfig{Path: path, Interval: 10 * time.Millisecond})
	cfg.Handover = handover
	f, err := newFanout(exportertest.NewNopSettings(metadata.Type), cfg, tracesOps(cfg, keyTraceID, newSubExporter(cfg.Protocol)))
	require.NoError(t, err)
	require.NoError(t, f.start(context.Background(), componenttest.NewNopHost()))
	t.Cleanup(func() { require.NoError(t, f.shutdown(context.Background())) })

	const tracesN, spansPer = 400, 10
	ids := make([]pcommon.TraceID, tracesN)
	for i := range ids {
		binary.BigEndian.PutUint64(ids[i][:8], uint64(i+1)*0x9e3779b97f4a7c15)
		binary.BigEndian.PutUint64(ids[i][8:], uint64(i+1)*0xbf58476d1ce4e5b9)
	}
	for round := range spansPer {
		if round == spansPer/2 {
			write(to)
			require.Eventually(t, func() bool { return f.backends.current().ring.size() == len(to) }, 5*time.Second, time.Millisecond,
				"the file resolver applies the new set")
		}
		td := ptrace.NewTraces()
		spans := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans()
		for i, id := range ids {
			s := spans.AppendEmpty()
			s.SetTraceID(id)
			var sid pcommon.SpanID
			binary.BigEndian.PutUint64(sid[:], uint64(i*spansPer+round+1))
			s.SetSpanID(sid)
		}
		require.NoError(t, f.push(context.Background(), td))
	}
	d := otlptest.Collect(all...)
	require.Len(t, d.Spans, tracesN*spansPer)
	for _, homes := range d.TraceHomes {
		if homes > 1 {
			split++
		}
	}
	return split, len(d.TraceHomes)
}

func TestHandoverKeepsTracesWholeAcrossSetChanges(t *testing.T) {
	for _, tc := range []struct {
		name     string
		handover time.Duration
		grow     bool
	}{
		// A minute, not tail sampling's usual seconds: the handover must
		// outlast the second half of the run, which on a loaded machine
		// under -race took more than 5 s once (and split 269 traces).
		{"3to4/handover", time.Minute, true},
		{"4to3/handover", time.Minute, false},
		{"3to4/without", 0, true},
		{"4to3/without", 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			servers := []*otlptest.Server{otlptest.Start(t), otlptest.Start(t), otlptest.Start(t), otlptest.Start(t)}
			from, to := servers[:3], servers
			if !tc.grow {
				from, to = servers, servers[:3]
			}
			split, traces := handoverRun(t, tc.handover, from, to, servers)
			t.Logf("%s: %d of %d traces split across backends", tc.name, split, traces)
			if tc.handover > 0 {
				assert.Zero(t, split, "with handover every trace stays whole")
			} else {
				assert.Positive(t, split, "without handover a set change splits traces in flight")
			}
		})
	}
}
