package e2e_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/otelcsp/otelcsp/internal/collectortest"
)

// front is the first tier: otlp receiver → fanout (traceID routing, breaker
// extension) over a static list of backends.
type front struct {
	*collector
	grpc, http, breakers int
}

func (f *front) otlpEndpoint() string { return fmt.Sprintf("127.0.0.1:%d", f.grpc) }

// frontBreaker is the breaker policy of the front tier, tuned so a dead or
// stalled backend is cut off well within 2 s: three failures in a row, or
// three calls stalled past 500ms, trip it; it probes again after 500ms (up
// to 2s with backoff) and closes after two good probes.
//
// Stall detection, not the call timeout, is what cuts off a backend that
// never answers, so the fanout's timeout can stay at 2s: with 1s, a machine
// hiccup of a second (two shared cores, the race-enabled test process,
// four collectors) timed out calls to healthy backends that had in fact
// delivered, and their re-sending showed up as duplicates.
const frontBreaker = `
    consecutive_failures: 3
    failure_ratio: 0
    slow_call_duration: 500ms
    slow_call_ratio: 0
    open_duration: 500ms
    max_open_duration: 2s
    success_threshold: 2`

// newFront configures the front over the backends. retryFor is the
// fanout's retry budget (retry_on_failure.max_elapsed_time): what no backend
// took within it is refused to the client. Its internal retries resend only
// the part that failed, whereas a refused client re-sends its whole batch,
// parts already delivered included; so the fault tests give it room
// (10s), and only the test of all backends down keeps it short.
func newFront(t *testing.T, backends []string, retryFor time.Duration) *front {
	t.Helper()
	f := &front{grpc: collectortest.FreePort(t), http: collectortest.FreePort(t), breakers: collectortest.FreePort(t)}
	health, metrics := collectortest.FreePort(t), collectortest.FreePort(t)
	config := fmt.Sprintf(`
extensions:
  health_check:
    endpoint: 127.0.0.1:%d
  breaker:%s
    http:
      endpoint: 127.0.0.1:%d
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:%d
        max_recv_msg_size_mib: 4
      http:
        endpoint: 127.0.0.1:%d
        max_request_body_size: 4194304
exporters:
  fanout:
    routing_key: traceID
    resolver:
      static:
        endpoints: [%s]
    protocol:
      otlp:
        timeout: 2s
        tls:
          insecure: true
    breaker: breaker
    retry_on_failure:
      initial_interval: 100ms
      max_interval: 500ms
      max_elapsed_time: %s
service:
  extensions: [health_check, breaker]
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [fanout]
  telemetry:
    metrics:
      readers:
        - pull:
            exporter:
              prometheus:
                host: 127.0.0.1
                port: %d
`, health, frontBreaker, f.breakers, f.grpc, f.http, strings.Join(backends, ", "), retryFor, metrics)
	f.collector = newCollector(t, "front", config, health, metrics)
	return f
}

// backend is the second tier: otlp receiver → traces to an otlp exporter
// pointed at a counting server, and through redmetrics and spanlogs to the
// same server's metrics and logs services.
type backend struct {
	*collector
	grpc int
	sink *countingServer
}

func (b *backend) endpoint() string { return fmt.Sprintf("127.0.0.1:%d", b.grpc) }

func newBackend(t *testing.T, name string, sink *countingServer) *backend {
	t.Helper()
	b := &backend{grpc: collectortest.FreePort(t), sink: sink}
	health, metrics := collectortest.FreePort(t), collectortest.FreePort(t)
	// The traces exporter has no sending queue: the backend acknowledges a
	// batch only once the counting server has it, so a SIGKILLed backend
	// loses nothing the front was told was delivered. The derived metrics
	// and logs go through their own exporter with the default queue: with
	// no queue they would be exported under the front's request context
	// and lost whenever the front gave up on a call. Every error span
	// makes one log record (no rate limit) so records can be matched to
	// spans.
	config := fmt.Sprintf(`
extensions:
  health_check:
    endpoint: 127.0.0.1:%[1]d
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:%[2]d
connectors:
  redmetrics:
    dimensions:
      - name: http.request.method
    metrics_flush_interval: 1s
  spanlogs:
    rules:
      - name: errors
        type: errors
        rate_per_fingerprint: 0
exporters:
  otlp_grpc:
    endpoint: %[3]s
    tls:
      insecure: true
    timeout: 5s
    sending_queue:
      enabled: false
    retry_on_failure:
      enabled: true
      initial_interval: 100ms
      max_interval: 1s
      max_elapsed_time: 5s
  otlp_grpc/derived:
    endpoint: %[3]s
    tls:
      insecure: true
service:
  extensions: [health_check]
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [otlp_grpc, redmetrics, spanlogs]
    metrics:
      receivers: [redmetrics]
      exporters: [otlp_grpc/derived]
    logs:
      receivers: [spanlogs]
      exporters: [otlp_grpc/derived]
  telemetry:
    metrics:
      readers:
        - pull:
            exporter:
              prometheus:
                host: 127.0.0.1
                port: %[4]d
`, health, b.grpc, sink.addr, metrics)
	b.collector = newCollector(t, name, config, health, metrics)
	return b
}

// twoTiers is the topology: three backends behind one front process. The
// first `processes` backends are otelcsp processes, each exporting to its
// own counting server; the others are counting servers the front talks to
// directly (so a test can stall or stop them). sinks[i] is backend i's
// counting server either way.
type twoTiers struct {
	front    *front
	backends []*backend // the backend processes
	sinks    []*countingServer
}

func startTwoTiers(t *testing.T, processes int) *twoTiers {
	t.Helper()
	return startTopology(t, processes, 10*time.Second)
}

func startTopology(t *testing.T, processes int, retryFor time.Duration) *twoTiers {
	t.Helper()
	tt := &twoTiers{}
	var endpoints []string
	for i := range 3 {
		sink := startCountingServer(t, fmt.Sprintf("sink-%d", i))
		tt.sinks = append(tt.sinks, sink)
		if i >= processes {
			endpoints = append(endpoints, sink.addr)
			continue
		}
		// The backends listen before the front starts: a front that finds
		// its backends refusing connections opens their breakers and gRPC
		// backs off reconnecting, which would blur what the tests measure.
		b := startWithFreshPorts(t, func() *backend { return newBackend(t, fmt.Sprintf("backend-%d", i), sink) })
		tt.backends = append(tt.backends, b)
		endpoints = append(endpoints, b.endpoint())
	}
	tt.front = startWithFreshPorts(t, func() *front { return newFront(t, endpoints, retryFor) })
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("front output:\n%s", tt.front.output())
			for _, b := range tt.backends {
				t.Logf("%s output:\n%s", b.name, b.output())
			}
		}
	})
	return tt
}

// stopAll stops every process with SIGTERM and requires exit status 0.
func (tt *twoTiers) stopAll() {
	if tt.front.running() {
		tt.front.stop()
	}
	for _, b := range tt.backends {
		if b.running() {
			b.stop()
		}
	}
}
