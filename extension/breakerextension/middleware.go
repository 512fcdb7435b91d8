// Copyright The otelcsp Authors
// SPDX-License-Identifier: Apache-2.0

package breakerextension // import "github.com/otelcsp/otelcsp/extension/breakerextension"

import (
	"context"
	"net/http"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
)

// RejectedError is what the client middleware returns for a call the breaker
// refused. errors.Is(err, ErrOpen) holds. As a gRPC status it is Unavailable
// with a RetryInfo of the time left until the next probe, so exporterhelper's
// retry waits that long instead of hammering an open breaker.
type RejectedError struct {
	Key        string
	RetryAfter time.Duration
}

func (e *RejectedError) Error() string {
	s := "breaker open for " + e.Key
	if e.RetryAfter > 0 {
		s += ", next probe in " + e.RetryAfter.String()
	}
	return s
}

// Is makes errors.Is(err, ErrOpen) true.
func (*RejectedError) Is(target error) bool { return target == ErrOpen }

// GRPCStatus lets gRPC clients and status.FromError read the rejection.
func (e *RejectedError) GRPCStatus() *status.Status {
	st := status.New(codes.Unavailable, e.Error())
	if e.RetryAfter > 0 {
		if withInfo, err := st.WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(e.RetryAfter)}); err == nil {
			return withInfo
		}
	}
	return st
}

// reject is the middleware's error for a call b refused, with the time
// left until b lets a probe through.
func reject(b *keyBreaker) error {
	return &RejectedError{Key: b.engine().Key(), RetryAfter: b.engine().RetryAfter()}
}

// GetGRPCClientOptions implements extensionmiddleware.GRPCClient: every call
// on the connection goes through the breaker of the connection's target
// (cc.Target(), e.g. "backend-1:4317" or "dns:///backend:4317").
func (e *breakerExtension) GetGRPCClientOptions(context.Context) ([]grpc.DialOption, error) {
	return []grpc.DialOption{
		grpc.WithChainUnaryInterceptor(e.unaryInterceptor),
		grpc.WithChainStreamInterceptor(e.streamInterceptor),
	}, nil
}

func (e *breakerExtension) unaryInterceptor(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	b := e.get(cc.Target())
	if admittedUpstream(ctx, b) {
		return invoker(ctx, method, req, reply, cc, opts...)
	}
	p, err := b.Allow()
	if err != nil {
		return reject(b)
	}
	err = invoker(ctx, method, req, reply, cc, opts...)
	p.Done(err)
	return err
}

// streamInterceptor guards stream creation: a stream's later messages are
// the application's business, but failing to open one is the backend's.
func (e *breakerExtension) streamInterceptor(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	b := e.get(cc.Target())
	if admittedUpstream(ctx, b) {
		return streamer(ctx, desc, cc, method, opts...)
	}
	p, err := b.Allow()
	if err != nil {
		return nil, reject(b)
	}
	cs, err := streamer(ctx, desc, cc, method, opts...)
	p.Done(err)
	return cs, err
}

// GetHTTPRoundTripper implements extensionmiddleware.HTTPClient: each request
// goes through the breaker of its URL's host:port.
func (e *breakerExtension) GetHTTPRoundTripper(context.Context) (func(context.Context, http.RoundTripper) (http.RoundTripper, error), error) {
	return func(_ context.Context, next http.RoundTripper) (http.RoundTripper, error) {
		return &roundTripper{ext: e, next: next}, nil
	}, nil
}

type roundTripper struct {
	ext  *breakerExtension
	next http.RoundTripper
}

func (rt *roundTripper) RoundTrip(req *http.Request) (*http.Response, error) {
	b := rt.ext.get(req.URL.Host)
	if admittedUpstream(req.Context(), b) {
		return rt.next.RoundTrip(req)
	}
	p, err := b.Allow()
	if err != nil {
		if req.Body != nil {
			_ = req.Body.Close() // RoundTrip must close the body, even on error
		}
		return nil, reject(b)
	}
	resp, err := rt.next.RoundTrip(req)
	switch {
	case err != nil:
		p.Done(err)
	case resp.StatusCode >= 400:
		p.Done(&HTTPStatusError{
			StatusCode: resp.StatusCode,
			RetryAfter: parseRetryAfter(resp.Header.Get("Retry-After"), rt.ext.clk.Now()),
		})
	default:
		p.Done(nil)
	}
	return resp, err
}
