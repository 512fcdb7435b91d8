package otlptest

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// client is a gRPC connection to s, closed at the end of the test.
func client(t *testing.T, s *Server) *grpc.ClientConn {
	t.Helper()
	cc, err := grpc.NewClient(s.Addr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { _ = cc.Close() })
	return cc
}

// traces is one trace of n spans, span IDs first..first+n-1.
func traces(traceID byte, first, n int) ptrace.Traces {
	td := ptrace.NewTraces()
	spans := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans()
	for i := range n {
		sp := spans.AppendEmpty()
		sp.SetTraceID(pcommon.TraceID{traceID})
		sp.SetSpanID(pcommon.SpanID{byte(first + i)})
	}
	return td
}

func export(ctx context.Context, cc *grpc.ClientConn, td ptrace.Traces) error {
	_, err := ptraceotlp.NewGRPCClient(cc).Export(ctx, ptraceotlp.NewExportRequestFromTraces(td))
	return err
}

func TestServerRecordsWhatItAccepted(t *testing.T) {
	var seen atomic.Int64 // OnTraces runs in the server's handler
	a := Start(t, OnTraces(func(td ptrace.Traces) { seen.Add(int64(td.SpanCount())) }))
	b := Start(t)
	ctx := context.Background()
	require.NoError(t, export(ctx, client(t, a), traces(1, 1, 3)))
	require.NoError(t, export(ctx, client(t, a), traces(1, 3, 1))) // span 3 again
	require.NoError(t, export(ctx, client(t, b), traces(1, 4, 1))) // trace 1 on b as well
	assert.Equal(t, 4, a.SpanCount())
	assert.Equal(t, int64(4), seen.Load(), "OnTraces sees every accepted export")
	assert.Equal(t, int64(2), a.Requests())
	assert.Equal(t, map[pcommon.SpanID]int{{1}: 1, {2}: 1, {3}: 2}, a.Spans())

	d := Collect(a, b)
	assert.Len(t, d.Spans, 4)
	assert.Equal(t, 5, d.Total())
	assert.Equal(t, 1, d.Duplicates())
	assert.Equal(t, map[pcommon.TraceID]int{{1}: 2}, d.TraceHomes)
}

func TestServerModes(t *testing.T) {
	s := Start(t, Named("b0"))
	cc := client(t, s)
	ctx := context.Background()

	s.SetMode(Fail)
	err := export(ctx, cc, traces(1, 1, 1))
	assert.Equal(t, codes.Unavailable, status.Code(err))
	assert.ErrorContains(t, err, "b0 failing on purpose")

	s.SetMode(Stall)
	stalled := make(chan error, 1)
	go func() { stalled <- export(ctx, cc, traces(1, 2, 1)) }()
	require.Eventually(t, func() bool { return s.Requests() == 2 }, 5*time.Second, time.Millisecond, "the stalled call arrives")
	select {
	case err := <-stalled:
		t.Fatalf("a stalled call was answered: %v", err)
	default:
	}
	s.SetMode(OK) // releases it
	assert.Equal(t, codes.Unavailable, status.Code(<-stalled))

	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	s.SetDelay(time.Minute)
	assert.Equal(t, codes.DeadlineExceeded, status.Code(export(short, cc, traces(1, 3, 1))))
	s.SetDelay(0)

	require.NoError(t, export(ctx, cc, traces(1, 4, 1)))
	assert.Equal(t, map[pcommon.SpanID]int{{4}: 1}, s.Spans(), "only the call answered OK is recorded")
}

func TestServerStopAndRestart(t *testing.T) {
	s := Start(t)
	addr := s.Addr()
	s.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	assert.Error(t, export(ctx, client(t, s), traces(1, 1, 1)), "a stopped server answers nothing")
	s.Restart()
	assert.Equal(t, addr, s.Addr(), "a restarted server keeps its address")
	require.NoError(t, export(context.Background(), client(t, s), traces(1, 2, 1)))
	assert.Equal(t, 1, s.SpanCount())
}

func TestServerMetricsAndLogsOnlyWhenAsked(t *testing.T) {
	var points, records atomic.Int64 // the handlers run in the server's goroutines
	with := Start(t,
		OnMetrics(func(md pmetric.Metrics) { points.Add(int64(md.DataPointCount())) }),
		OnLogs(func(ld plog.Logs) { records.Add(int64(ld.LogRecordCount())) }))
	without := Start(t)
	md := pmetric.NewMetrics()
	md.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty().Metrics().AppendEmpty().SetEmptyGauge().DataPoints().AppendEmpty()
	ld := plog.NewLogs()
	ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords().AppendEmpty()
	ctx := context.Background()
	for _, s := range []*Server{with, without} {
		cc := client(t, s)
		_, merr := pmetricotlp.NewGRPCClient(cc).Export(ctx, pmetricotlp.NewExportRequestFromMetrics(md))
		_, lerr := plogotlp.NewGRPCClient(cc).Export(ctx, plogotlp.NewExportRequestFromLogs(ld))
		if s == with {
			require.NoError(t, merr)
			require.NoError(t, lerr)
		} else {
			assert.Equal(t, codes.Unimplemented, status.Code(merr))
			assert.Equal(t, codes.Unimplemented, status.Code(lerr))
		}
	}
	assert.Equal(t, int64(1), points.Load())
	assert.Equal(t, int64(1), records.Load())
}
