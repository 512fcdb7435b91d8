package e2e_test

import (
	"fmt"
	"sync"
	"testing"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/otelcsp/otelcsp/internal/otlptest"
)

const redCallsMetric = "traces.span.metrics.calls"

// countingServer is the module's loopback OTLP/gRPC backend (otlptest: it
// counts every span by span ID and the trace IDs, and can fail, stall,
// slow down, stop and restart) with the metrics and logs services the
// backends' derived data goes to: the RED calls series and the log records.
type countingServer struct {
	*otlptest.Server
	name, addr string // addr stays across Stop and Restart

	mu   sync.Mutex
	red  map[string]redPoint    // latest calls point per series
	logs map[pcommon.SpanID]int // log records per span ID
}

type redPoint struct {
	ts    pcommon.Timestamp
	value int64
	error bool
}

func startCountingServer(t *testing.T, name string) *countingServer {
	t.Helper()
	s := &countingServer{name: name, red: map[string]redPoint{}, logs: map[pcommon.SpanID]int{}}
	s.Server = otlptest.Start(t, otlptest.Named(name), otlptest.OnMetrics(s.recordRED), otlptest.OnLogs(s.recordLogs))
	s.addr = s.Addr()
	return s
}

func (s *countingServer) spanCount() int { return s.SpanCount() }

// recordRED keeps, per RED calls series (resource, attributes and start
// time: a restarted connector starts new series), the latest cumulative
// value; a delta point is a series of its own.
func (s *countingServer) recordRED(md pmetric.Metrics) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, rm := range md.ResourceMetrics().All() {
		res := fmt.Sprint(rm.Resource().Attributes().AsRaw())
		for _, sm := range rm.ScopeMetrics().All() {
			for _, m := range sm.Metrics().All() {
				if m.Name() != redCallsMetric || m.Type() != pmetric.MetricTypeSum {
					continue
				}
				delta := m.Sum().AggregationTemporality() == pmetric.AggregationTemporalityDelta
				for _, dp := range m.Sum().DataPoints().All() {
					key := fmt.Sprint(res, dp.Attributes().AsRaw(), dp.StartTimestamp())
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
}

func (s *countingServer) recordLogs(ld plog.Logs) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, rl := range ld.ResourceLogs().All() {
		for _, sl := range rl.ScopeLogs().All() {
			for _, lr := range sl.LogRecords().All() {
				s.logs[lr.SpanID()]++
			}
		}
	}
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

// delivery is what a set of counting servers accepted, summed: the spans
// (otlptest.Delivery), the log records and the RED calls.
type delivery struct {
	otlptest.Delivery
	logs      map[pcommon.SpanID]int // span ID → log records
	redCalls  int64
	redErrors int64
}

func collect(servers ...*countingServer) delivery {
	d := delivery{logs: map[pcommon.SpanID]int{}}
	backends := make([]*otlptest.Server, 0, len(servers))
	for _, s := range servers {
		backends = append(backends, s.Server)
		calls, errs := s.redCalls()
		d.redCalls += calls
		d.redErrors += errs
		s.mu.Lock()
		for id, c := range s.logs {
			d.logs[id] += c
		}
		s.mu.Unlock()
	}
	d.Delivery = otlptest.Collect(backends...)
	return d
}
