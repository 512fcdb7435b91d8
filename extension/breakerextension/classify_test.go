// Copyright The otelcsp Authors
// SPDX-License-Identifier: Apache-2.0

package breakerextension

import (
	"context"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/exporter/exporterhelper"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
)

func retryInfo(d time.Duration) *errdetails.RetryInfo {
	return &errdetails.RetryInfo{RetryDelay: durationpb.New(d)}
}

type partialErr struct{}

func (partialErr) Error() string        { return "2 spans rejected" }
func (partialErr) PartialSuccess() bool { return true }

func TestClassify(t *testing.T) {
	withRetry, err := status.New(codes.Unavailable, "later").WithDetails(retryInfo(3 * time.Second))
	require.NoError(t, err)
	opErr := &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}
	for _, tc := range []struct {
		name string
		err  error
		want Outcome
		hold time.Duration
	}{
		{"nil", nil, OutcomeSuccess, 0},
		{"permanent", consumererror.NewPermanent(errors.New("bad data")), OutcomeIgnored, 0},
		{"wrapped permanent", fmt.Errorf("export: %w", consumererror.NewPermanent(errBackend)), OutcomeIgnored, 0},
		{"canceled", context.Canceled, OutcomeIgnored, 0},
		{"wrapped canceled", fmt.Errorf("x: %w", context.Canceled), OutcomeIgnored, 0},
		{"partial success", partialErr{}, OutcomeIgnored, 0},
		{"ErrOpen", ErrOpen, OutcomeIgnored, 0},
		{"grpc unavailable", status.Error(codes.Unavailable, ""), OutcomeFailure, 0},
		{"grpc deadline", status.Error(codes.DeadlineExceeded, ""), OutcomeFailure, 0},
		{"grpc resource exhausted", status.Error(codes.ResourceExhausted, ""), OutcomeFailure, 0},
		{"grpc internal", status.Error(codes.Internal, ""), OutcomeFailure, 0},
		{"grpc invalid argument", status.Error(codes.InvalidArgument, ""), OutcomeIgnored, 0},
		{"grpc unauthenticated", status.Error(codes.Unauthenticated, ""), OutcomeIgnored, 0},
		{"grpc canceled", status.Error(codes.Canceled, ""), OutcomeIgnored, 0},
		{"grpc retry info", withRetry.Err(), OutcomeFailure, 3 * time.Second},
		{"exporterhelper throttle", exporterhelper.NewThrottleRetry(errBackend, 5*time.Second), OutcomeFailure, 5 * time.Second},
		{"wrapped throttle", fmt.Errorf("a: %w", exporterhelper.NewThrottleRetry(errors.New("x"), time.Second)), OutcomeFailure, time.Second},
		{"joined throttle", errors.Join(errors.New("a"), exporterhelper.NewThrottleRetry(errors.New("x"), time.Minute)), OutcomeFailure, time.Minute},
		{"http 503", &HTTPStatusError{StatusCode: 503}, OutcomeFailure, 0},
		{"http 503 retry-after", &HTTPStatusError{StatusCode: 503, RetryAfter: 2 * time.Second}, OutcomeFailure, 2 * time.Second},
		{"http 429 retry-after", &HTTPStatusError{StatusCode: 429, RetryAfter: 9 * time.Second}, OutcomeFailure, 9 * time.Second},
		{"http 500", &HTTPStatusError{StatusCode: 500}, OutcomeFailure, 0},
		{"http 400", &HTTPStatusError{StatusCode: 400}, OutcomeIgnored, 0},
		{"http 404", &HTTPStatusError{StatusCode: 404}, OutcomeIgnored, 0},
		{"otlphttp 502", consumererror.NewOTLPHTTPError(errors.New("x"), 502), OutcomeFailure, 0},
		{"otlphttp 400", consumererror.NewOTLPHTTPError(errors.New("x"), 400), OutcomeIgnored, 0},
		{"otlpgrpc unavailable", consumererror.NewOTLPGRPCError(errors.New("x"), status.New(codes.Unavailable, "")), OutcomeFailure, 0},
		{"retryable", consumererror.NewRetryableError(errors.New("x")), OutcomeFailure, 0},
		{"deadline exceeded", context.DeadlineExceeded, OutcomeFailure, 0},
		{"transport", opErr, OutcomeFailure, 0},
		{"unknown", errors.New("mystery"), OutcomeFailure, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o, hold := Classify(tc.err)
			assert.Equal(t, tc.want, o)
			assert.Equal(t, tc.hold, hold)
		})
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	assert.Equal(t, 5*time.Second, parseRetryAfter("5", now))
	assert.Equal(t, time.Duration(0), parseRetryAfter("-1", now))
	assert.Equal(t, time.Duration(0), parseRetryAfter("", now))
	assert.Equal(t, time.Duration(0), parseRetryAfter("soon", now))
	assert.Equal(t, 90*time.Second, parseRetryAfter(now.Add(90*time.Second).Format(time.RFC1123), now))
	assert.Equal(t, time.Duration(0), parseRetryAfter(now.Add(-time.Hour).Format(time.RFC1123), now))
}

func TestOutcomeString(t *testing.T) {
	assert.Equal(t, "success", OutcomeSuccess.String())
	assert.Equal(t, "failure", OutcomeFailure.String())
	assert.Equal(t, "ignored", OutcomeIgnored.String())
	assert.Equal(t, "half_open", StateHalfOpen.String())
	assert.Equal(t, "metrics_only", ManualMetricsOnly.String())
	m, err := ParseManualState("forced_open")
	require.NoError(t, err)
	assert.Equal(t, ManualForcedOpen, m)
	_, err = ParseManualState("forced-open")
	assert.Error(t, err)
}
