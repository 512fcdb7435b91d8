// Package otlptest is the loopback OTLP/gRPC backend of the module's tests
// (the fanout exporter's and the e2e suite's): a real server on a 127.0.0.1
// port that records every span it accepted and can fail, stall, slow down,
// stop and restart on the same port while data flows.
package otlptest // import "github.com/otelcsp/otelcsp/internal/otlptest"

import (
	"context"
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
	_ "google.golang.org/grpc/encoding/gzip" // the collector's exporters compress with gzip by default
	"google.golang.org/grpc/status"
)

// Mode is how the server answers a traces export.
type Mode int32

const (
	// OK records the spans and answers success.
	OK Mode = iota
	// Fail answers Unavailable at once, recording nothing.
	Fail
	// Stall accepts the call and never answers until the mode changes
	// (then Unavailable) or the caller gives up, recording nothing.
	Stall
)

// maxRecvMsgSize lets a test send far larger batches than the 4 MiB gRPC
// default: the server is a sink, not the limit under test.
const maxRecvMsgSize = 64 << 20

// Server is an OTLP/gRPC server on a 127.0.0.1 port. Its traces service
// records what it accepted (span IDs, trace IDs); the metrics and logs
// services, registered when an Option asks for them, hand each accepted
// request to the test.
type Server struct {
	name      string
	t         testing.TB
	onTraces  func(ptrace.Traces)
	onMetrics func(pmetric.Metrics)
	onLogs    func(plog.Logs)
	discard   bool

	mode     atomic.Int32
	delay    atomic.Int64 // added to every traces export, in ns
	requests atomic.Int64 // traces exports received, whatever their outcome

	mu      sync.Mutex
	addr    string
	srv     *grpc.Server
	release chan struct{}
	spans   map[pcommon.SpanID]int // accepted count per span ID
	traces  map[pcommon.TraceID]struct{}
}

// Option configures a Server.
type Option func(*Server)

// Named names the server in failures and logs ("backend" by default).
func Named(name string) Option { return func(s *Server) { s.name = name } }

// Discard makes the server record nothing it accepts (it still counts
// requests): a sink for benchmarks, which should not pay for accounting.
func Discard() Option { return func(s *Server) { s.discard = true } }

// OnTraces calls fn with every traces export the server accepted, after
// recording it (fn must not keep td).
func OnTraces(fn func(td ptrace.Traces)) Option { return func(s *Server) { s.onTraces = fn } }

// OnMetrics registers the metrics service: fn gets every export (fn must
// not keep md), which is always answered success.
func OnMetrics(fn func(md pmetric.Metrics)) Option { return func(s *Server) { s.onMetrics = fn } }

// OnLogs registers the logs service: fn gets every export (fn must not
// keep ld), which is always answered success.
func OnLogs(fn func(ld plog.Logs)) Option { return func(s *Server) { s.onLogs = fn } }

// Start listens on a free 127.0.0.1 port and serves until the test ends.
func Start(t testing.TB, opts ...Option) *Server {
	t.Helper()
	s := &Server{
		name: "backend", t: t, release: make(chan struct{}),
		spans: map[pcommon.SpanID]int{}, traces: map[pcommon.TraceID]struct{}{},
	}
	for _, o := range opts {
		o(s)
	}
	s.listen("127.0.0.1:0")
	t.Cleanup(func() {
		s.SetMode(OK) // free stalled handlers so Stop returns
		s.Stop()
	})
	return s
}

// Name is the server's name (Named).
func (s *Server) Name() string { return s.name }

// Addr is the server's host:port; Restart keeps it.
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addr
}

func (s *Server) listen(addr string) {
	s.t.Helper()
	var lis net.Listener
	var err error
	// A restarted server reuses its port, which the old socket may hold
	// for a moment: retry, bounded (2s).
	for range 100 {
		if lis, err = net.Listen("tcp", addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		s.t.Fatalf("%s: listen %s: %v", s.name, addr, err)
	}
	srv := grpc.NewServer(grpc.MaxRecvMsgSize(maxRecvMsgSize))
	ptraceotlp.RegisterGRPCServer(srv, &tracesService{Server: s})
	if s.onMetrics != nil {
		pmetricotlp.RegisterGRPCServer(srv, &metricsService{Server: s})
	}
	if s.onLogs != nil {
		plogotlp.RegisterGRPCServer(srv, &logsService{Server: s})
	}
	s.mu.Lock()
	s.addr, s.srv = lis.Addr().String(), srv
	s.mu.Unlock()
	go func() { _ = srv.Serve(lis) }()
}

// Stop closes the listener and every connection: calls in flight fail, as
// with a killed process.
func (s *Server) Stop() {
	s.mu.Lock()
	srv := s.srv
	s.srv = nil
	s.mu.Unlock()
	if srv != nil {
		srv.Stop()
	}
}

// Restart listens again on the same port after Stop.
func (s *Server) Restart() { s.listen(s.Addr()) }

// SetMode switches behaviour; leaving Stall releases the stalled calls
// (they answer Unavailable, having recorded nothing).
func (s *Server) SetMode(m Mode) {
	if Mode(s.mode.Swap(int32(m))) == Stall && m != Stall {
		s.mu.Lock()
		close(s.release)
		s.release = make(chan struct{})
		s.mu.Unlock()
	}
}

// SetDelay makes every traces export wait d before it is answered (or the
// caller gives up): a slow backend.
func (s *Server) SetDelay(d time.Duration) { s.delay.Store(int64(d)) }

// Requests is the number of traces exports received, whatever the answer.
func (s *Server) Requests() int64 { return s.requests.Load() }

// SpanCount is the number of spans accepted, duplicates included.
func (s *Server) SpanCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, c := range s.spans {
		n += c
	}
	return n
}

// Spans is a copy of how many times each span ID was accepted.
func (s *Server) Spans() map[pcommon.SpanID]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[pcommon.SpanID]int, len(s.spans))
	for id, c := range s.spans {
		out[id] = c
	}
	return out
}

type tracesService struct {
	ptraceotlp.UnimplementedGRPCServer
	*Server
}

func (s *tracesService) Export(ctx context.Context, req ptraceotlp.ExportRequest) (ptraceotlp.ExportResponse, error) {
	s.requests.Add(1)
	if d := time.Duration(s.delay.Load()); d > 0 {
		select {
		case <-time.After(d):
		case <-ctx.Done():
			return ptraceotlp.NewExportResponse(), status.FromContextError(ctx.Err()).Err()
		}
	}
	switch Mode(s.mode.Load()) {
	case Fail:
		return ptraceotlp.NewExportResponse(), status.Error(codes.Unavailable, s.name+" failing on purpose")
	case Stall:
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
	if !s.discard {
		s.record(req.Traces())
	}
	if s.onTraces != nil {
		s.onTraces(req.Traces())
	}
	return ptraceotlp.NewExportResponse(), nil
}

func (s *Server) record(td ptrace.Traces) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, rs := range td.ResourceSpans().All() {
		for _, ss := range rs.ScopeSpans().All() {
			for _, sp := range ss.Spans().All() {
				s.spans[sp.SpanID()]++
				s.traces[sp.TraceID()] = struct{}{}
			}
		}
	}
}

type metricsService struct {
	pmetricotlp.UnimplementedGRPCServer
	*Server
}

func (s *metricsService) Export(_ context.Context, req pmetricotlp.ExportRequest) (pmetricotlp.ExportResponse, error) {
	s.onMetrics(req.Metrics())
	return pmetricotlp.NewExportResponse(), nil
}

type logsService struct {
	plogotlp.UnimplementedGRPCServer
	*Server
}

func (s *logsService) Export(_ context.Context, req plogotlp.ExportRequest) (plogotlp.ExportResponse, error) {
	s.onLogs(req.Logs())
	return plogotlp.NewExportResponse(), nil
}
