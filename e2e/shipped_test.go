package e2e_test

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"testing"

	"github.com/otelcsp/otelcsp/internal/collectortest"
)

// The configs we ship run here exactly as shipped: they take every listen
// address, port, peer and directory from OTELCSP_* environment variables
// with defaults, and the tests set only those.

// shippedConfig is the text of a config file of the repository.
func shippedConfig(t *testing.T, rel string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", rel))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// listenEnv is the environment that puts a shipped config's own endpoints
// on the given loopback ports.
func listenEnv(grpc, http, health, metrics int) []string {
	return []string{
		"OTELCSP_LISTEN_HOST=127.0.0.1",
		fmt.Sprintf("OTELCSP_OTLP_GRPC_PORT=%d", grpc),
		fmt.Sprintf("OTELCSP_OTLP_HTTP_PORT=%d", http),
		fmt.Sprintf("OTELCSP_HEALTH_PORT=%d", health),
		fmt.Sprintf("OTELCSP_METRICS_PORT=%d", metrics),
	}
}

// shippedProcess is the process of a shipped config, receiving OTLP on
// 127.0.0.1 ports grpc and http.
type shippedProcess struct {
	*collector
	grpc, http int
}

func (p *shippedProcess) endpoint() string { return fmt.Sprintf("127.0.0.1:%d", p.grpc) }

// newShipped is the process of a shipped config (rel, from the repository's
// root), not started: its OTLP gRPC and HTTP receivers, health check and own
// metrics on fresh loopback ports (listenEnv), plus env.
func newShipped(t *testing.T, name, rel string, env ...string) *shippedProcess {
	t.Helper()
	p := &shippedProcess{grpc: collectortest.FreePort(t), http: collectortest.FreePort(t)}
	health, metrics := collectortest.FreePort(t), collectortest.FreePort(t)
	p.collector = newCollector(t, name, shippedConfig(t, rel), health, metrics)
	p.env = append(listenEnv(p.grpc, p.http, health, metrics), env...)
	return p
}

// gatewaysSRV is the SRV name the agent asks the test's DNS server for, as
// it would ask for a headless Service's named port in Kubernetes.
const gatewaysSRV = "_otlp-grpc._tcp.gateways.e2e.test"

// gatewayDNS is the test's DNS server for the agent: SetGateways changes the
// gateway set the agent's fanout resolves (it re-resolves every 5s).
type gatewayDNS struct{ *collectortest.DNSServer }

func startGatewayDNS(t *testing.T, endpoints ...string) gatewayDNS {
	d := gatewayDNS{collectortest.StartDNSServer(t)}
	d.setGateways(t, endpoints...)
	return d
}

func (d gatewayDNS) setGateways(t *testing.T, endpoints ...string) {
	t.Helper()
	d.setSRV(t, gatewaysSRV, endpoints...)
}

// aggregatorsSRV is the SRV name delta gateways (gateway-delta.yaml) ask
// the test's DNS server for to find the aggregators.
const aggregatorsSRV = "_otlp-grpc._tcp.aggregators.e2e.test"

// setSRV sets the SRV records of one name to the endpoints (host:port).
func (d gatewayDNS) setSRV(t *testing.T, name string, endpoints ...string) {
	t.Helper()
	records := make([]net.SRV, 0, len(endpoints))
	for _, e := range endpoints {
		host, port, err := net.SplitHostPort(e)
		if err != nil {
			t.Fatal(err)
		}
		var p uint16
		if _, err := fmt.Sscan(port, &p); err != nil {
			t.Fatal(err)
		}
		// An SRV target must be a host name: Go's resolver rejects the
		// whole answer when one is an IP address ("DNS response contained
		// records which contain invalid names"). The fanout then dials the
		// target through the system's resolver, not this server, so
		// loopback is named "localhost" (/etc/hosts).
		if host == "127.0.0.1" {
			host = "localhost"
		}
		records = append(records, net.SRV{Target: host + ".", Port: p, Weight: 1})
	}
	d.Set(func(s *collectortest.DNSServer) { s.SRV[name] = records })
}

// agent is testdata/deploy/agent.yaml: otlp → memory_limiter → fanout
// (traceID, breaker, persistent queue on file_storage) to the gateways the
// DNS server names.
type agent struct {
	*shippedProcess
	breakers int
	queueDir string
}

func (a *agent) otlpEndpoint() string { return a.endpoint() }

// newAgent configures an agent; queueDir is its persistent queue (reuse it
// across restarts to test persistence).
func newAgent(t *testing.T, dns gatewayDNS, queueDir string) *agent {
	t.Helper()
	a := &agent{breakers: collectortest.FreePort(t), queueDir: queueDir}
	a.shippedProcess = newShipped(t, "agent", "testdata/deploy/agent.yaml",
		fmt.Sprintf("OTELCSP_BREAKER_PORT=%d", a.breakers),
		"OTELCSP_GATEWAYS="+gatewaysSRV,
		"OTELCSP_DNS_SERVER="+dns.Addr(),
		"OTELCSP_QUEUE_DIR="+queueDir,
	)
	return a
}

// gateway is testdata/deploy/gateway.yaml, sending sampled traces, RED
// metrics (remote write) and span logs (OTLP/HTTP) to the test's sinks.
type gateway struct{ *shippedProcess }

func newGateway(t *testing.T, name, traceStore, remoteWriteURL, logStoreURL string) *gateway {
	t.Helper()
	return &gateway{newShipped(t, name, "testdata/deploy/gateway.yaml",
		"OTELCSP_TRACE_STORE="+traceStore,
		"OTELCSP_REMOTE_WRITE="+remoteWriteURL,
		"OTELCSP_LOG_STORE="+logStoreURL,
		"HOSTNAME="+name,
	)}
}

// newDeltaGateway is testdata/deploy/gateway-delta.yaml: as newGateway, but
// its RED metrics are deltas routed by stream (fanout, routing_key
// streamID) to the aggregators the DNS server names under aggregatorsSRV.
func newDeltaGateway(t *testing.T, name, traceStore, logStoreURL string, dns gatewayDNS) *gateway {
	t.Helper()
	return &gateway{newShipped(t, name, "testdata/deploy/gateway-delta.yaml",
		"OTELCSP_TRACE_STORE="+traceStore,
		"OTELCSP_LOG_STORE="+logStoreURL,
		"OTELCSP_AGGREGATORS="+aggregatorsSRV,
		"OTELCSP_DNS_SERVER="+dns.Addr(),
		"HOSTNAME="+name,
	)}
}

// aggregator is testdata/deploy/aggregator.yaml: otlp → deltamerge →
// prometheus_remote_write to remoteWriteURL.
type aggregator struct{ *shippedProcess }

func newAggregator(t *testing.T, name, remoteWriteURL string) *aggregator {
	t.Helper()
	return &aggregator{newShipped(t, name, "testdata/deploy/aggregator.yaml", "OTELCSP_REMOTE_WRITE="+remoteWriteURL)}
}
