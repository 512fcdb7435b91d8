package e2e_test

import (
	"errors"
	"fmt"
	"net"
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
%s`, health, frontBreaker, f.breakers, f.grpc, f.http, strings.Join(backends, ", "), retryFor, ownMetrics(metrics))
	f.collector = newCollector(t, "front", config, health, metrics)
	return f
}

// backend is the second tier: otlp receiver → traces to an otlp exporter
// pointed at a counting server, and through redmetrics and spanlogs to the
// same server's metrics and logs services.
type backend struct {
	*tier
	sink *countingServer
}

// tier is a process of a test config that receives OTLP/gRPC on grpc.
type tier struct {
	*collector
	grpc int
}

func (tr *tier) endpoint() string { return fmt.Sprintf("127.0.0.1:%d", tr.grpc) }

// newTier is a test tier, not started: the health_check extension, the
// otlp receiver and the collector's own metrics on fresh loopback ports,
// around components (the YAML sections of its processors, connectors and
// exporters) and pipelines (the entries of service.pipelines, indented by
// four spaces).
func newTier(t *testing.T, name, components, pipelines string) *tier {
	t.Helper()
	tr := &tier{grpc: collectortest.FreePort(t)}
	health, metrics := collectortest.FreePort(t), collectortest.FreePort(t)
	config := fmt.Sprintf(`
extensions:
  health_check:
    endpoint: 127.0.0.1:%d
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:%d
%s
service:
  extensions: [health_check]
  pipelines:
%s
%s`, health, tr.grpc, strings.Trim(components, "\n"), strings.Trim(pipelines, "\n"), ownMetrics(metrics))
	tr.collector = newCollector(t, name, config, health, metrics)
	return tr
}

func newBackend(t *testing.T, name string, sink *countingServer) *backend {
	t.Helper()
	// The traces exporter has no sending queue: the backend acknowledges a
	// batch only once the counting server has it, so a SIGKILLed backend
	// loses nothing the front was told was delivered. The derived metrics
	// and logs go through their own exporter with the default queue: with
	// no queue they would be exported under the front's request context
	// and lost whenever the front gave up on a call. Every error span
	// makes one log record (no rate limit) so records can be matched to
	// spans. Like the shipped gateways, the backends end the canary the
	// shipped agent sends (one trace a second) with the canary processor,
	// so the sinks and RED see only the test's spans.
	return &backend{sink: sink, tier: newTier(t, name, fmt.Sprintf(`
processors:
  canary:
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
    endpoint: %[1]s
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
    endpoint: %[1]s
    tls:
      insecure: true
`, sink.addr), `
    traces:
      receivers: [otlp]
      processors: [canary]
      exporters: [otlp_grpc, redmetrics, spanlogs]
    metrics:
      receivers: [redmetrics]
      exporters: [otlp_grpc/derived]
    logs:
      receivers: [spanlogs]
      exporters: [otlp_grpc/derived]
`)}
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
	logOnFailure(t, tt.front)
	logOnFailure(t, tt.backends...)
	return tt
}

// stopAll stops every process with SIGTERM and requires exit status 0.
func (tt *twoTiers) stopAll() {
	stopRunning(tt.front)
	stopRunning(tt.backends...)
}

// agentTiers is the topology of the fault tests: the shipped agent
// (testdata/deploy/agent.yaml, only its endpoints, ports and queue directory
// set through OTELCSP_* env) in front of three backend processes, each
// exporting to its own counting server. The agent finds the backends
// through the SRV records of the test's DNS server, as it finds a headless
// Service's pods. A backend listed in proxied is reached through a TCP
// proxy, the network path a test can blackhole: its SRV record names the
// proxy.
type agentTiers struct {
	t        *testing.T
	dns      gatewayDNS
	agent    *agent
	backends []*backend
	sinks    []*countingServer
	proxies  []*proxy // proxies[i] is nil when the agent dials backend i directly
	queueDir string
}

func startAgentTiers(t *testing.T, proxied ...int) *agentTiers {
	t.Helper()
	at := &agentTiers{t: t, queueDir: t.TempDir()}
	builds := make([]func() *backend, 3)
	for i := range 3 {
		sink := startCountingServer(t, fmt.Sprintf("sink-%d", i))
		at.sinks = append(at.sinks, sink)
		builds[i] = func() *backend { return newBackend(t, fmt.Sprintf("backend-%d", i), sink) }
	}
	// The backends listen before the agent starts, so that it does not
	// begin with open breakers and gRPC reconnect backoff.
	at.backends = startAllWithFreshPorts(t, builds)
	at.proxies = make([]*proxy, 3)
	for _, i := range proxied {
		at.proxies[i] = startProxy(t, fmt.Sprintf("proxy-%d", i), at.backends[i].endpoint())
	}
	addrs := make([]string, 3)
	for i := range addrs {
		addrs[i] = at.addr(i)
	}
	at.dns = startGatewayDNS(t, addrs...)
	at.agent = startWithFreshPorts(t, func() *agent { return newAgent(t, at.dns, at.queueDir) })
	logOnFailure(t, at.agent)
	logOnFailure(t, at.backends...)
	return at
}

// addr is the 127.0.0.1 address the agent reaches backend i at: the
// backend's, or its proxy's when proxied.
func (at *agentTiers) addr(i int) string {
	if p := at.proxies[i]; p != nil {
		return p.addr()
	}
	return at.backends[i].endpoint()
}

// key is backend i's endpoint as the agent resolves it from its SRV record
// (setGateways names loopback "localhost"): its fanout backend and its
// breaker key.
func (at *agentTiers) key(i int) string {
	_, port, _ := net.SplitHostPort(at.addr(i))
	return net.JoinHostPort("localhost", port)
}

// restartBackends starts the given backend processes again on their ports
// (all at once) and waits for them to be healthy.
func (at *agentTiers) restartBackends(which ...int) {
	at.t.Helper()
	for _, i := range which {
		at.backends[i].start()
	}
	for _, i := range which {
		at.backends[i].waitHealthy(30 * time.Second)
	}
}

// spans is how many spans the counting servers hold, duplicates included.
func (at *agentTiers) spans() int {
	n := 0
	for _, s := range at.sinks {
		n += s.spanCount()
	}
	return n
}

// stopAll stops every process still running with SIGTERM and requires
// exit status 0.
func (at *agentTiers) stopAll() {
	stopRunning(at.agent)
	stopRunning(at.backends...)
}

// startAllWithFreshPorts is startWithFreshPorts for several collectors at
// once: they start together, so their start-up times overlap.
func startAllWithFreshPorts[C interface{ base() *collector }](t *testing.T, builds []func() C) []C {
	t.Helper()
	out := make([]C, len(builds))
	for i, build := range builds {
		out[i] = build()
		out[i].base().start()
	}
	for i := range out {
		err := out[i].base().healthy(30 * time.Second)
		if err == nil {
			continue
		}
		if !errors.Is(err, errPortTaken) {
			t.Fatalf("%s: %v\n%s", out[i].base().name, err, out[i].base().output())
		}
		t.Logf("%s: %v; again with other ports", out[i].base().name, err)
		out[i] = startWithFreshPorts(t, builds[i])
	}
	return out
}
