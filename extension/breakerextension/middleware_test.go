// Copyright The otelcsp Authors
// SPDX-License-Identifier: Apache-2.0

package breakerextension

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/configmiddleware"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/exporter/exporterhelper"
	"go.opentelemetry.io/collector/exporter/exportertest"
	"go.opentelemetry.io/collector/exporter/otlpexporter"
	"go.opentelemetry.io/collector/exporter/otlphttpexporter"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
)

// failingOTLP is a real gRPC OTLP traces server that answers Unavailable.
type failingOTLP struct {
	ptraceotlp.UnimplementedGRPCServer
	calls atomic.Int64
}

func (s *failingOTLP) Export(context.Context, ptraceotlp.ExportRequest) (ptraceotlp.ExportResponse, error) {
	s.calls.Add(1)
	return ptraceotlp.NewExportResponse(), status.Error(codes.Unavailable, "backend overloaded")
}

func startFailingOTLP(t *testing.T) (*failingOTLP, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := grpc.NewServer()
	impl := &failingOTLP{}
	ptraceotlp.RegisterGRPCServer(srv, impl)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(ln)
	}()
	t.Cleanup(func() {
		srv.Stop()
		<-done
	})
	return impl, ln.Addr().String()
}

func someTraces() ptrace.Traces {
	td := ptrace.NewTraces()
	span := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans().AppendEmpty()
	span.SetName("op")
	span.SetTraceID([16]byte{1})
	span.SetSpanID([8]byte{1})
	return td
}

func startedBreaker(t *testing.T) (*breakerExtension, *statusHost, component.ID) {
	t.Helper()
	id := component.MustNewID("breaker")
	cfg := createDefaultConfig()
	cfg.Jitter = 0
	cfg.OpenDuration = time.Minute // stays open for the whole test
	e, _ := newTestExtension(t, cfg, nil)
	host := &statusHost{exts: map[component.ID]component.Component{id: e}}
	require.NoError(t, e.Start(context.Background(), host))
	t.Cleanup(func() { require.NoError(t, e.Shutdown(context.Background())) })
	return e, host, id
}

// TestOTLPExporterWithMiddleware attaches the breaker to the core otlp
// exporter by configuration only and points it at a failing server: after
// consecutive_failures calls the breaker opens and later exports are
// rejected without reaching the server.
func TestOTLPExporterWithMiddleware(t *testing.T) {
	backend, addr := startFailingOTLP(t)
	e, _, id := startedBreaker(t)

	f := otlpexporter.NewFactory()
	cfg := f.CreateDefaultConfig().(*otlpexporter.Config)
	cfg.ClientConfig.Endpoint = addr
	cfg.ClientConfig.TLS.Insecure = true
	cfg.ClientConfig.Middlewares = []configmiddleware.Config{{ID: id}}
	cfg.RetryConfig.Enabled = false
	cfg.QueueConfig = configoptional.None[exporterhelper.QueueBatchConfig]()
	cfg.TimeoutConfig.Timeout = 5 * time.Second
	exp, err := f.CreateTraces(context.Background(), exportertest.NewNopSettings(f.Type()), cfg)
	require.NoError(t, err)
	host := &statusHost{exts: map[component.ID]component.Component{id: e}}
	require.NoError(t, exp.Start(context.Background(), host))
	defer func() { require.NoError(t, exp.Shutdown(context.Background())) }()

	for i := range 5 {
		err := exp.ConsumeTraces(context.Background(), someTraces())
		require.Error(t, err, "export %d", i)
		assert.NotErrorIs(t, err, ErrOpen, "export %d reached the backend", i)
	}
	require.Equal(t, int64(5), backend.calls.Load())
	snaps := e.Snapshot()
	require.Len(t, snaps, 1)
	assert.Equal(t, addr, snaps[0].Key, "keyed by the connection's target")
	assert.Equal(t, "open", snaps[0].State)

	for range 10 {
		err := exp.ConsumeTraces(context.Background(), someTraces())
		require.Error(t, err)
		assert.Contains(t, err.Error(), "breaker open for "+addr)
	}
	assert.Equal(t, int64(5), backend.calls.Load(), "rejected exports never reached the server")
	assert.Equal(t, uint64(10), e.Snapshot()[0].Rejected)
}

// TestOTLPHTTPExporterWithMiddleware does the same with otlphttp and a
// server answering 503 with Retry-After: the throttle holds it open.
func TestOTLPHTTPExporterWithMiddleware(t *testing.T) {
	var calls atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		calls.Add(1)
		w.Header().Set("Retry-After", "30")
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	e, _, id := startedBreaker(t)

	f := otlphttpexporter.NewFactory()
	cfg := f.CreateDefaultConfig().(*otlphttpexporter.Config)
	cfg.ClientConfig.Endpoint = srv.URL
	cfg.ClientConfig.Middlewares = []configmiddleware.Config{{ID: id}}
	cfg.RetryConfig.Enabled = false
	cfg.QueueConfig = configoptional.None[exporterhelper.QueueBatchConfig]()
	exp, err := f.CreateTraces(context.Background(), exportertest.NewNopSettings(f.Type()), cfg)
	require.NoError(t, err)
	host := &statusHost{exts: map[component.ID]component.Component{id: e}}
	require.NoError(t, exp.Start(context.Background(), host))
	defer func() { require.NoError(t, exp.Shutdown(context.Background())) }()

	require.Error(t, exp.ConsumeTraces(context.Background(), someTraces()))
	require.Equal(t, int64(1), calls.Load())
	snaps := e.Snapshot()
	require.Len(t, snaps, 1)
	assert.Equal(t, "open", snaps[0].State, "one 503 with Retry-After holds it open")
	assert.Equal(t, "throttled", snaps[0].LastReason)
	for range 3 {
		err := exp.ConsumeTraces(context.Background(), someTraces())
		require.Error(t, err)
	}
	assert.Equal(t, int64(1), calls.Load())
}

type rtFunc func(*http.Request) (*http.Response, error)

func (f rtFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestHTTPRoundTripperOutcomes(t *testing.T) {
	cfg := createDefaultConfig()
	cfg.ConsecutiveFailures = 2
	e, _ := newTestExtension(t, cfg, nil)
	wrap, err := e.GetHTTPRoundTripper(context.Background())
	require.NoError(t, err)
	code := 400
	var transportErr error
	next := rtFunc(func(*http.Request) (*http.Response, error) {
		if transportErr != nil {
			return nil, transportErr
		}
		return &http.Response{StatusCode: code, Header: http.Header{}, Body: http.NoBody}, nil
	})
	rt, err := wrap(context.Background(), next)
	require.NoError(t, err)
	do := func() error {
		req, _ := http.NewRequestWithContext(context.Background(), http.MethodPost, "http://backend:4318/v1/traces", http.NoBody)
		resp, err := rt.RoundTrip(req)
		if resp != nil {
			_ = resp.Body.Close()
		}
		return err
	}
	b := e.get("backend:4318")
	for range 5 {
		require.NoError(t, do()) // 400s are the request's fault
	}
	assert.Equal(t, StateClosed, b.State())
	code = 200
	require.NoError(t, do())
	transportErr = errors.New("connection refused")
	require.Error(t, do())
	code, transportErr = 502, nil
	require.NoError(t, do(), "the response is passed through")
	assert.Equal(t, StateOpen, b.State())
	err = do()
	require.ErrorIs(t, err, ErrOpen)
	var rej *RejectedError
	require.ErrorAs(t, err, &rej)
	assert.Positive(t, rej.RetryAfter)
	assert.Equal(t, uint64(5), e.snapshot("backend:4318").Ignored)
}

func TestStreamInterceptor(t *testing.T) {
	e, _ := newTestExtension(t, createDefaultConfig(), nil)
	cc, err := grpc.NewClient("127.0.0.1:1", grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	defer func() { require.NoError(t, cc.Close()) }()
	var opened int
	streamer := func(context.Context, *grpc.StreamDesc, *grpc.ClientConn, string, ...grpc.CallOption) (grpc.ClientStream, error) {
		opened++
		return nil, status.Error(codes.Unavailable, "no")
	}
	for range 5 {
		_, err := e.streamInterceptor(context.Background(), &grpc.StreamDesc{}, cc, "/svc/Stream", streamer)
		require.Error(t, err)
		require.NotErrorIs(t, err, ErrOpen)
	}
	_, err = e.streamInterceptor(context.Background(), &grpc.StreamDesc{}, cc, "/svc/Stream", streamer)
	require.ErrorIs(t, err, ErrOpen)
	assert.Equal(t, 5, opened, "the refused stream was never opened")
	assert.Equal(t, StateOpen, e.Breaker("127.0.0.1:1").State())
	assert.Equal(t, "HTTP status 429 (retry after 2s)", (&HTTPStatusError{StatusCode: 429, RetryAfter: 2 * time.Second}).Error())
}

// TestMiddlewareRecognisesCallAdmittedUpstream: a caller that took the
// half-open probe of a key through the Go API and calls an exporter whose
// middleware guards the same key must reach the backend; the middleware
// neither asks again nor counts the outcome (the caller's permit does). A
// mark from another key's breaker does not count.
func TestMiddlewareRecognisesCallAdmittedUpstream(t *testing.T) {
	cfg := createDefaultConfig()
	cfg.Jitter = 0
	cfg.SuccessThreshold = 1
	e, clk := newTestExtension(t, cfg, nil)
	cc, err := grpc.NewClient("backend:4317", grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	defer func() { require.NoError(t, cc.Close()) }()
	var invoked int
	invoker := func(context.Context, string, any, any, *grpc.ClientConn, ...grpc.CallOption) error {
		invoked++
		return nil
	}
	b := e.Breaker("backend:4317")
	for range 5 {
		call(t, b, errBackend)
	}
	clk.Advance(time.Second)
	require.Equal(t, StateHalfOpen, b.State())

	probe, err := b.Allow()
	require.NoError(t, err)
	ctx := ContextWithAdmitted(context.Background(), b)
	require.NoError(t, e.unaryInterceptor(ctx, "/svc/M", nil, nil, cc, invoker), "the probe admitted upstream goes through")
	assert.Equal(t, 1, invoked)
	other := ContextWithAdmitted(context.Background(), e.Breaker("other:4317"))
	require.ErrorIs(t, e.unaryInterceptor(other, "/svc/M", nil, nil, cc, invoker), ErrOpen, "another key's mark admits nothing here")
	require.ErrorIs(t, e.unaryInterceptor(context.Background(), "/svc/M", nil, nil, cc, invoker), ErrOpen)
	assert.Equal(t, 1, invoked)
	probe.Done(nil)
	assert.Equal(t, StateClosed, b.State())
	snap := e.snapshot("backend:4317")
	assert.Equal(t, uint64(1), snap.Success, "the outcome counted once, by the upstream permit")
	assert.Zero(t, snap.Ignored)

	// The same over HTTP.
	wrap, err := e.GetHTTPRoundTripper(context.Background())
	require.NoError(t, err)
	var sent int
	rt, err := wrap(context.Background(), rtFunc(func(*http.Request) (*http.Response, error) {
		sent++
		return &http.Response{StatusCode: 200, Header: http.Header{}, Body: http.NoBody}, nil
	}))
	require.NoError(t, err)
	hb := e.Breaker("backend:4318")
	e.SetManualState("backend:4318", ManualForcedOpen)
	req, _ := http.NewRequestWithContext(ContextWithAdmitted(context.Background(), hb), http.MethodPost, "http://backend:4318/v1/traces", http.NoBody)
	resp, err := rt.RoundTrip(req)
	require.NoError(t, err, "a call its caller sends despite the breaker (panic mode, drain) is not refused again")
	_ = resp.Body.Close()
	assert.Equal(t, 1, sent)

	// Another implementation of Breaker leaves the context alone.
	assert.Equal(t, context.Background(), ContextWithAdmitted(context.Background(), nil))
}
