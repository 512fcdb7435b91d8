// Copyright The otelcsp Authors
// SPDX-License-Identifier: Apache-2.0

package breakerextension // import "github.com/otelcsp/otelcsp/extension/breakerextension"

import (
	"context"
	"errors"
	"net"
	"reflect"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/collector/consumer/consumererror"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Outcome is how a call's result counts for the breaker.
type Outcome int8

const (
	// OutcomeSuccess: the backend answered well.
	OutcomeSuccess Outcome = iota
	// OutcomeFailure: the backend is unhealthy (unavailable, overloaded,
	// timing out, unreachable).
	OutcomeFailure
	// OutcomeIgnored: the result says nothing about the backend's health
	// (permanent/bad-data errors, cancellation by the caller, partial success).
	OutcomeIgnored
)

func (o Outcome) String() string {
	switch o {
	case OutcomeSuccess:
		return "success"
	case OutcomeFailure:
		return "failure"
	case OutcomeIgnored:
		return "ignored"
	}
	return "unknown"
}

// Classify returns how err counts and, for throttling responses, how long the
// backend asked to be left alone (0 when it did not say).
//
// Order matters: an explicit throttle delay wins (it is the backend speaking),
// then permanence and cancellation (which are the caller's business), then the
// protocol codes, then transport errors. Unknown errors count as failures: an
// exporter that fails for a reason we cannot read is still failing.
func Classify(err error) (Outcome, time.Duration) {
	if err == nil {
		return OutcomeSuccess, 0
	}
	if errors.Is(err, ErrOpen) {
		// A breaker (e.g. a nested middleware) refused the call: the
		// backend was not contacted, so this says nothing about it.
		return OutcomeIgnored, 0
	}
	if d := throttleDelay(err); d > 0 {
		return OutcomeFailure, d
	}
	if consumererror.IsPermanent(err) || errors.Is(err, context.Canceled) {
		return OutcomeIgnored, 0
	}
	var ps interface{ PartialSuccess() bool }
	if errors.As(err, &ps) && ps.PartialSuccess() {
		return OutcomeIgnored, 0
	}
	if st, ok := grpcStatus(err); ok {
		return grpcOutcome(st.Code()), 0
	}
	var he *HTTPStatusError
	if errors.As(err, &he) {
		return httpOutcome(he.StatusCode), he.RetryAfter
	}
	var ce *consumererror.Error
	if errors.As(err, &ce) {
		// otlphttp records the response status here (ToHTTPStatus derives
		// 503 for retryable errors without one, 500 otherwise): a 4xx is
		// about the request, 5xx/429 about the backend.
		if o := httpOutcome(consumererror.ToHTTPStatus(err)); o != OutcomeSuccess {
			return o, 0
		}
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return OutcomeFailure, 0
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return OutcomeFailure, 0
	}
	return OutcomeFailure, 0
}

func grpcStatus(err error) (*status.Status, bool) {
	var se interface{ GRPCStatus() *status.Status }
	if !errors.As(err, &se) {
		return nil, false
	}
	st := se.GRPCStatus()
	if st == nil || st.Code() == codes.OK {
		return nil, false
	}
	return st, true
}

func grpcOutcome(c codes.Code) Outcome {
	switch c {
	case codes.Unavailable, codes.DeadlineExceeded, codes.ResourceExhausted,
		codes.Aborted, codes.Internal, codes.Unknown, codes.DataLoss:
		return OutcomeFailure
	case codes.Canceled:
		return OutcomeIgnored
	}
	// InvalidArgument, Unauthenticated, PermissionDenied, NotFound,
	// Unimplemented, ...: the request or the config is wrong, not the
	// backend's health.
	return OutcomeIgnored
}

func httpOutcome(code int) Outcome {
	switch {
	case code == 429, code == 408, code >= 500:
		return OutcomeFailure
	case code >= 400:
		return OutcomeIgnored
	}
	return OutcomeSuccess
}

// HTTPStatusError is the error the HTTP client middleware returns for a
// response that counts as a failure, so classification and callers see the
// status code and any Retry-After.
type HTTPStatusError struct {
	StatusCode int
	RetryAfter time.Duration
}

func (e *HTTPStatusError) Error() string {
	s := "HTTP status " + strconv.Itoa(e.StatusCode)
	if e.RetryAfter > 0 {
		s += " (retry after " + e.RetryAfter.String() + ")"
	}
	return s
}

// throttleDelay finds a backend-supplied delay in err: exporterhelper's
// throttle retry error, a gRPC status with RetryInfo, or an HTTP 429/503
// Retry-After.
func throttleDelay(err error) time.Duration {
	if d := exporterhelperThrottle(err); d > 0 {
		return d
	}
	if st, ok := grpcStatus(err); ok {
		for _, det := range st.Details() {
			if ri, ok := det.(*errdetails.RetryInfo); ok && ri.GetRetryDelay() != nil {
				if d := ri.GetRetryDelay().AsDuration(); d > 0 {
					return d
				}
			}
		}
	}
	var he *HTTPStatusError
	if errors.As(err, &he) && (he.StatusCode == 429 || he.StatusCode == 503) {
		return he.RetryAfter
	}
	return 0
}

// exporterhelperThrottle reads the delay of exporterhelper.NewThrottleRetry's
// error. Its type is unexported (internal.throttleRetry{err, delay}), so
// errors.As cannot name it; we walk the chain and recognise it by package
// path and type name, then read its delay field by reflection. If a future
// version renames it, this returns 0 and the gRPC/HTTP readers still apply.
func exporterhelperThrottle(err error) time.Duration {
	for i := 0; err != nil && i < 32; i++ {
		t := reflect.TypeOf(err)
		if t.Kind() == reflect.Struct && t.Name() == "throttleRetry" &&
			strings.HasPrefix(t.PkgPath(), "go.opentelemetry.io/collector/exporter/exporterhelper") {
			f := reflect.ValueOf(err).FieldByName("delay")
			if f.IsValid() && f.Kind() == reflect.Int64 {
				return time.Duration(f.Int())
			}
		}
		switch u := err.(type) { //nolint:errorlint // walks the chain by hand: the throttle type is unexported, errors.As cannot name it
		case interface{ Unwrap() error }:
			err = u.Unwrap()
		case interface{ Unwrap() []error }:
			for _, e := range u.Unwrap() {
				if d := exporterhelperThrottle(e); d > 0 {
					return d
				}
			}
			return 0
		default:
			return 0
		}
	}
	return 0
}

// parseRetryAfter reads an HTTP Retry-After header: delay-seconds or an
// HTTP-date relative to now.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil {
		if s <= 0 {
			return 0
		}
		return time.Duration(s) * time.Second
	}
	if t, err := time.Parse(time.RFC1123, v); err == nil {
		if d := t.Sub(now); d > 0 {
			return d
		}
	}
	return 0
}
