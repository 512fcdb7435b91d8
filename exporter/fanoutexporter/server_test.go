package fanoutexporter

import (
	"context"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Backend behaviours a test can switch between while data flows.
const (
	modeOK int32 = iota
	modeFail
	modeStall // accept the call, never answer until released or cancelled
)

// otlpServer is a real OTLP/gRPC traces server on loopback that records
// every span it accepted, and can fail, stall, stop and restart on the same
// address.
type otlpServer struct {
	ptraceotlp.UnimplementedGRPCServer
	t    *testing.T
	addr string
	mode atomic.Int32

	mu       sync.Mutex
	srv      *grpc.Server
	spans    map[pcommon.SpanID]int // accepted count per span
	traces   map[pcommon.TraceID]bool
	release  chan struct{}
	requests atomic.Int64
}

func startOTLPServer(t *testing.T) *otlpServer {
	s := &otlpServer{t: t, spans: map[pcommon.SpanID]int{}, traces: map[pcommon.TraceID]bool{}, release: make(chan struct{})}
	s.listen("127.0.0.1:0")
	t.Cleanup(s.stop)
	return s
}

func (s *otlpServer) listen(addr string) {
	var lis net.Listener
	var err error
	// A restarted server reuses its port; the old socket may linger briefly.
	for range 50 {
		if lis, err = net.Listen("tcp", addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	require.NoError(s.t, err)
	srv := grpc.NewServer()
	ptraceotlp.RegisterGRPCServer(srv, s)
	s.mu.Lock()
	s.addr, s.srv = lis.Addr().String(), srv
	s.mu.Unlock()
	go func() { _ = srv.Serve(lis) }()
}

// stop kills the server: connections drop, calls in flight fail.
func (s *otlpServer) stop() {
	s.mu.Lock()
	srv := s.srv
	s.srv = nil
	s.mu.Unlock()
	if srv != nil {
		srv.Stop()
	}
}

func (s *otlpServer) restart() { s.listen(s.addr) }

func (s *otlpServer) setMode(m int32) {
	if s.mode.Swap(m) == modeStall && m != modeStall {
		s.mu.Lock()
		close(s.release)
		s.release = make(chan struct{})
		s.mu.Unlock()
	}
}

func (s *otlpServer) Export(ctx context.Context, req ptraceotlp.ExportRequest) (ptraceotlp.ExportResponse, error) {
	s.requests.Add(1)
	switch s.mode.Load() {
	case modeFail:
		return ptraceotlp.NewExportResponse(), status.Error(codes.Unavailable, "backend failing on purpose")
	case modeStall:
		s.mu.Lock()
		release := s.release
		s.mu.Unlock()
		select {
		case <-ctx.Done():
			return ptraceotlp.NewExportResponse(), ctx.Err()
		case <-release:
			return ptraceotlp.NewExportResponse(), status.Error(codes.Unavailable, "released from stall")
		}
	}
	s.record(req.Traces())
	return ptraceotlp.NewExportResponse(), nil
}

func (s *otlpServer) record(td ptrace.Traces) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rss := td.ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		sss := rss.At(i).ScopeSpans()
		for j := 0; j < sss.Len(); j++ {
			spans := sss.At(j).Spans()
			for k := 0; k < spans.Len(); k++ {
				s.spans[spans.At(k).SpanID()]++
				s.traces[spans.At(k).TraceID()] = true
			}
		}
	}
}

func (s *otlpServer) spanCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, c := range s.spans {
		n += c
	}
	return n
}

// delivery sums what a set of servers accepted.
type delivery struct {
	spans      map[pcommon.SpanID]int
	traceHomes map[pcommon.TraceID]int // number of servers a trace's spans reached
}

func collect(servers ...*otlpServer) delivery {
	d := delivery{spans: map[pcommon.SpanID]int{}, traceHomes: map[pcommon.TraceID]int{}}
	for _, s := range servers {
		s.mu.Lock()
		for id, c := range s.spans {
			d.spans[id] += c
		}
		for id := range s.traces {
			d.traceHomes[id]++
		}
		s.mu.Unlock()
	}
	return d
}
