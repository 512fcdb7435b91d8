package e2e_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	_ "google.golang.org/grpc/encoding/gzip" // the collectors export gzip-compressed OTLP by default
	"google.golang.org/grpc/status"
)

// What a counting server does with a traces export while data flows.
const (
	modeOK    int32 = iota
	modeFail        // answer Unavailable at once
	modeStall       // accept the call, never answer until released (or the caller gives up)
)

const redCallsMetric = "traces.span.metrics.calls"

// countingServer is an OTLP/gRPC server (traces, metrics and logs services)
// on a 127.0.0.1 port that counts what it accepted: every span by span ID,
// the trace IDs it saw, the RED calls series and the log records. It can
// fail, stall, slow down, stop and restart on the same port.
type countingServer struct {
	t    *testing.T
	name string
	addr string

	mode  atomic.Int32
	delay atomic.Int64 // added to every traces export, in ns

	mu      sync.Mutex
	srv     *grpc.Server
	release chan struct{}
	spans   map[uint64]int32 // accepted count per span ID
	traces  map[pcommon.TraceID]struct{}
	red     map[string]redPoint // latest calls point per series
	logs    map[uint64]int32    // log records per span ID
	logSev  map[plog.SeverityNumber]int
	exports atomic.Int64
}

type redPoint struct {
	ts    pcommon.Timestamp
	value int64
	error bool
}

func startCountingServer(t *testing.T, name string) *countingServer {
	t.Helper()
	s := &countingServer{
		t: t, name: name, release: make(chan struct{}),
		spans: map[uint64]int32{}, traces: map[pcommon.TraceID]struct{}{},
		red: map[string]redPoint{}, logs: map[uint64]int32{}, logSev: map[plog.SeverityNumber]int{},
	}
	s.listen("127.0.0.1:0")
	t.Cleanup(func() {
		s.setMode(modeOK) // free stalled handlers so Stop returns
		s.stop()
	})
	return s
}

func (s *countingServer) listen(addr string) {
	s.t.Helper()
	var lis net.Listener
	var err error
	// A restarted server reuses its port; the old socket may linger briefly.
	for range 100 {
		if lis, err = net.Listen("tcp", addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		s.t.Fatalf("%s: listen %s: %v", s.name, addr, err)
	}
	srv := grpc.NewServer(grpc.MaxRecvMsgSize(64 << 20))
	ptraceotlp.RegisterGRPCServer(srv, &tracesService{countingServer: s})
	pmetricotlp.RegisterGRPCServer(srv, &metricsService{countingServer: s})
	plogotlp.RegisterGRPCServer(srv, &logsService{countingServer: s})
	s.mu.Lock()
	s.addr, s.srv = lis.Addr().String(), srv
	s.mu.Unlock()
	go func() { _ = srv.Serve(lis) }()
}

// stop closes the listener and every connection: calls in flight fail.
func (s *countingServer) stop() {
	s.mu.Lock()
	srv := s.srv
	s.srv = nil
	s.mu.Unlock()
	if srv != nil {
		srv.Stop()
	}
}

// restart listens again on the same port after stop.
//
//nolint:unused // part of the counting server's API for tests that stop a sink; none does at the moment
func (s *countingServer) restart() { s.listen(s.addr) }

// setMode switches behaviour; leaving modeStall releases the stalled calls
// (they answer Unavailable, having recorded nothing).
func (s *countingServer) setMode(m int32) {
	if s.mode.Swap(m) == modeStall && m != modeStall {
		s.mu.Lock()
		close(s.release)
		s.release = make(chan struct{})
		s.mu.Unlock()
	}
}

type tracesService struct {
	ptraceotlp.UnimplementedGRPCServer
	*countingServer
}

func (s tracesService) Export(ctx context.Context, req ptraceotlp.ExportRequest) (ptraceotlp.ExportResponse, error) {
	s.exports.Add(1)
	if d := time.Duration(s.delay.Load()); d > 0 {
		select {
		case <-time.After(d):
		case <-ctx.Done():
			return ptraceotlp.NewExportResponse(), status.FromContextError(ctx.Err()).Err()
		}
	}
	switch s.mode.Load() {
	case modeFail:
		return ptraceotlp.NewExportResponse(), status.Error(codes.Unavailable, s.name+" failing on purpose")
	case modeStall:
		s.mu.Lock()
		release := s.release
		s.mu.Unlock()
		select {
		case <-ctx.Done():
			return ptraceotlp.NewExportResponse(), status.FromContextError(ctx.Err()).Err()
		case <-release:
			return ptraceotlp.NewExportResponse(), status.Error(codes.Unavailable, s.name+" released from stall")
		}
	}
	s.recordSpans(req.Traces())
	return ptraceotlp.NewExportResponse(), nil
}

func (s *countingServer) recordSpans(td ptrace.Traces) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, rs := range td.ResourceSpans().All() {
		for _, ss := range rs.ScopeSpans().All() {
			for _, sp := range ss.Spans().All() {
				id := sp.SpanID()
				s.spans[binary.BigEndian.Uint64(id[:])]++
				s.traces[sp.TraceID()] = struct{}{}
			}
		}
	}
}

type metricsService struct {
	pmetricotlp.UnimplementedGRPCServer
	*countingServer
}

// Export keeps, per RED calls series (resource, attributes and start time:
// a restarted connector starts new series), the latest cumulative value.
func (s metricsService) Export(_ context.Context, req pmetricotlp.ExportRequest) (pmetricotlp.ExportResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, rm := range req.Metrics().ResourceMetrics().All() {
		res := fmt.Sprint(rm.Resource().Attributes().AsRaw())
		for _, sm := range rm.ScopeMetrics().All() {
			for _, m := range sm.Metrics().All() {
				if m.Name() != redCallsMetric || m.Type() != pmetric.MetricTypeSum {
					continue
				}
				delta := m.Sum().AggregationTemporality() == pmetric.AggregationTemporalityDelta
				for _, dp := range m.Sum().DataPoints().All() {
					attrs := dp.Attributes().AsRaw()
					key := fmt.Sprint(res, attrs, dp.StartTimestamp())
					code, _ := dp.Attributes().Get("status.code")
					p := s.red[key]
					if delta {
						key = fmt.Sprint(key, dp.Timestamp())
						p = redPoint{}
					}
					if dp.Timestamp() >= p.ts {
						s.red[key] = redPoint{ts: dp.Timestamp(), value: dp.IntValue(), error: code.Str() == "STATUS_CODE_ERROR"}
					}
				}
			}
		}
	}
	return pmetricotlp.NewExportResponse(), nil
}

type logsService struct {
	plogotlp.UnimplementedGRPCServer
	*countingServer
}

func (s logsService) Export(_ context.Context, req plogotlp.ExportRequest) (plogotlp.ExportResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, rl := range req.Logs().ResourceLogs().All() {
		for _, sl := range rl.ScopeLogs().All() {
			for _, lr := range sl.LogRecords().All() {
				id := lr.SpanID()
				s.logs[binary.BigEndian.Uint64(id[:])]++
				s.logSev[lr.SeverityNumber()]++
			}
		}
	}
	return plogotlp.NewExportResponse(), nil
}

// redCalls sums the latest value of every RED calls series: all calls, and
// those with status.code = STATUS_CODE_ERROR.
func (s *countingServer) redCalls() (calls, errors int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range s.red {
		calls += p.value
		if p.error {
			errors += p.value
		}
	}
	return calls, errors
}

// delivery is what a set of counting servers accepted, summed.
type delivery struct {
	spans      map[uint64]int32 // span ID → times accepted
	traceHomes map[pcommon.TraceID]int
	logs       map[uint64]int32 // span ID → log records
	redCalls   int64
	redErrors  int64
}

func collect(servers ...*countingServer) delivery {
	d := delivery{spans: map[uint64]int32{}, traceHomes: map[pcommon.TraceID]int{}, logs: map[uint64]int32{}}
	for _, s := range servers {
		calls, errs := s.redCalls()
		d.redCalls += calls
		d.redErrors += errs
		s.mu.Lock()
		for id, c := range s.spans {
			d.spans[id] += c
		}
		for id := range s.traces {
			d.traceHomes[id]++
		}
		for id, c := range s.logs {
			d.logs[id] += c
		}
		s.mu.Unlock()
	}
	return d
}

// total is the number of span deliveries, duplicates included.
func (d delivery) total() int {
	n := 0
	for _, c := range d.spans {
		n += int(c)
	}
	return n
}

func (d delivery) duplicates() int { return d.total() - len(d.spans) }

func (s *countingServer) spanCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, c := range s.spans {
		n += int(c)
	}
	return n
}
