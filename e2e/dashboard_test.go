package e2e_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/otelcsp/otelcsp/deploy"
	"github.com/otelcsp/otelcsp/internal/collectortest"
)

// The Grafana dashboard (deploy/grafana/otelcsp.json) asks Prometheus for
// metrics by name. Here the shipped agent and gateways run with load and
// a fault, and every metric name (and label name) the dashboard's queries
// use must be one they actually expose: on the collectors' own Prometheus
// endpoints (:8888, scraped by Prometheus in a cluster) or in the RED
// metrics the gateways write by remote write. A renamed metric or label
// then fails this test instead of leaving a panel empty.

// exposedSeries is, per metric name, the label names its series carry.
type exposedSeries map[string]map[string]bool

func (e exposedSeries) add(name string, labels []string) {
	if e[name] == nil {
		e[name] = map[string]bool{}
	}
	for _, l := range labels {
		e[name][l] = true
	}
}

// addExposition adds the series of a Prometheus text exposition.
func (e exposedSeries) addExposition(body string) {
	for _, line := range strings.Split(body, "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, rest, _ := strings.Cut(line, "{")
		if i := strings.IndexByte(name, ' '); i >= 0 {
			e.add(name[:i], nil)
			continue
		}
		var labels []string
		for _, pair := range splitLabels(rest[:strings.LastIndex(rest, "}")]) {
			if k, _, ok := strings.Cut(pair, "="); ok {
				labels = append(labels, k)
			}
		}
		e.add(name, labels)
	}
}

// splitLabels splits `a="x",b="y,z"` at the commas outside quotes.
func splitLabels(s string) []string {
	var out []string
	inQuote, start := false, 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case '"':
			inQuote = !inQuote
		case ',':
			if !inQuote {
				out = append(out, s[start:i])
				start = i + 1
			}
		}
	}
	if start < len(s) {
		out = append(out, s[start:])
	}
	return out
}

// scrape adds what a collector exposes on its own metrics endpoint.
func (e exposedSeries) scrape(c *collector) {
	_, body := collectortest.HTTPGet(fmt.Sprintf("http://127.0.0.1:%d/metrics", c.metrics))
	e.addExposition(body)
}

// addRemoteWrite adds the series the store sink received.
func (e exposedSeries) addRemoteWrite(s *storeSink) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range s.series {
		var labels []string
		for k := range p.labels {
			if k != "__name__" {
				labels = append(labels, k)
			}
		}
		e.add(p.labels["__name__"], labels)
	}
}

// Labels Prometheus adds to every series it scrapes or receives, which no
// exposition carries.
var targetLabels = map[string]bool{"job": true, "instance": true, "le": true}

// canaryTrace is one numbered canary trace as the synthetic receiver makes
// it (resource synthetic.generator, root span synthetic.sequence), its
// root span ending at end.
func canaryTrace(generator string, seq int64, end time.Time) ptrace.Traces {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "otelcsp-canary")
	rs.Resource().Attributes().PutStr("synthetic.generator", generator)
	sp := rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
	sp.SetName("canary")
	sp.SetTraceID(pcommon.TraceID{0xca, 0xfe, byte(seq >> 8), byte(seq)})
	sp.SetSpanID(pcommon.SpanID{0xca, byte(seq >> 8), byte(seq), 1})
	sp.SetStartTimestamp(pcommon.NewTimestampFromTime(end.Add(-time.Millisecond)))
	sp.SetEndTimestamp(pcommon.NewTimestampFromTime(end))
	sp.Attributes().PutInt("synthetic.sequence", seq)
	return td
}

// sendCanaryFaults sends a gateway canary traces with a gap, a duplicate
// and a restart of their generator: sequence 1, 3, 3 again, then 1 again
// generated later. The restart declares the open gap (2) lost at once,
// so loss shows without waiting for loss_after.
func sendCanaryFaults(t *testing.T, endpoint string) {
	t.Helper()
	conn, err := grpc.NewClient(endpoint, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close() }()
	client := ptraceotlp.NewGRPCClient(conn)
	t0 := time.Now().Add(-time.Minute)
	for i, step := range []struct {
		seq int64
		end time.Time
	}{{1, t0}, {3, t0.Add(time.Second)}, {3, t0.Add(time.Second)}, {1, t0.Add(2 * time.Second)}} {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err := client.Export(ctx, ptraceotlp.NewExportRequestFromTraces(canaryTrace("e2e-dashboard", step.seq, step.end)))
		cancel()
		if err != nil {
			t.Fatalf("canary batch %d: %v", i+1, err)
		}
	}
}

// TestE2EDashboardMetricsExist runs the shipped agent and two gateways
// with load (errors included, so spanlogs emits and suppresses), kills a
// gateway halfway (the agent's breaker opens, its fanouts fail and
// re-route), sends a gateway canary traces with a gap, a duplicate and a
// restart, waits until the RED metrics reached the remote-write store,
// then checks the dashboard's every metric and label against what was
// exposed.
func TestE2EDashboardMetricsExist(t *testing.T) {
	queries, err := deploy.DashboardQueries(filepath.Join("..", deploy.DashboardPath))
	if err != nil {
		t.Fatal(err)
	}
	st := startGateways(t, 2)
	st.agent = startWithFreshPorts(t, func() *agent { return newAgent(t, st.dns, t.TempDir()) })

	l := load{run: 31, traces: 3000, spansPerTrace: 5, tracesPerBatch: 10, workers: 4,
		interval: 10 * time.Millisecond, maxAttempts: 5, backoff: 200 * time.Millisecond, callTimeout: 20 * time.Second}
	run := sendLoad(t, st.agent.otlpEndpoint(), l.withSDKTraceIDs())
	if !pollFor(30*time.Second, func() bool { return st.agent.metricSum("otelcol_fanout_items_sent") >= float64(l.spans()/3) }) {
		t.Fatalf("the agent sent %v items of a third of the load in 30s\n%s", st.agent.metricSum("otelcol_fanout_items_sent"), st.dump())
	}
	dead := st.gateways[1]
	dead.kill()
	res := run.wait(time.Minute)
	if a, _, _ := res.counts(); a != l.batches() {
		t.Fatalf("the agent must accept every batch (its queue holds what the dead gateway cannot take): %s\n%s", res, st.dump())
	}
	live := st.gateways[0]
	sendCanaryFaults(t, live.endpoint())

	// What the dashboard needs to have seen: the dead gateway's breaker
	// open and items re-routed around it, span logs suppressed, canary
	// loss, and the RED metrics of the load at the store.
	waits := []struct {
		what string
		cond func() bool
	}{
		{"agent otelcol_fanout_items_rerouted", func() bool { return st.agent.metricSum("otelcol_fanout_items_rerouted") > 0 }},
		{"agent otelcol_breaker_state open", func() bool { return st.agent.metricSum("otelcol_breaker_state") >= 2 }},
		{"gateway otelcol_spanlogs_records_suppressed", func() bool { return live.metricSum("otelcol_spanlogs_records_suppressed") > 0 }},
		{"gateway otelcol_canary_lost", func() bool { return live.metricSum("otelcol_canary_lost") > 0 }},
		{"remote write traces_span_metrics_calls_total", func() bool { calls, _, _ := st.stores.redSums(); return calls > 0 }},
	}
	for _, w := range waits {
		if !pollFor(60*time.Second, w.cond) {
			t.Fatalf("after 60s, still no %s\n%s", w.what, st.dump())
		}
	}

	exposed := exposedSeries{}
	exposed.scrape(st.agent.collector)
	exposed.scrape(live.collector)
	exposed.addRemoteWrite(st.stores)
	names := make([]string, 0, len(exposed))
	for n := range exposed {
		names = append(names, n)
	}
	sort.Strings(names)
	t.Logf("%d metric names exposed by the agent, a gateway and the remote-write store", len(names))

	checked := 0
	for _, q := range queries {
		sels, err := deploy.Selectors(q.Expr)
		if err != nil {
			t.Errorf("%s: %v", q.Where, err)
			continue
		}
		if len(sels) == 0 {
			t.Errorf("%s: %q selects no metric", q.Where, q.Expr)
		}
		grouping := deploy.GroupingLabels(q.Expr)
		for _, s := range sels {
			checked++
			labels, ok := exposed[s.Metric]
			if !ok {
				t.Errorf("%s: metric %s is exposed by none of agent, gateway, remote write (%s)", q.Where, s.Metric, nearest(s.Metric, names))
				continue
			}
			for _, l := range append(s.Labels, grouping...) {
				// A grouping label may belong to another selector of the
				// query; it must be on at least one of them.
				if targetLabels[l] || labels[l] || (slicesContain(grouping, l) && anyHas(exposed, sels, l)) {
					continue
				}
				t.Errorf("%s: label %s is on no series of %s (labels: %v)", q.Where, l, s.Metric, sortedKeys(labels))
			}
		}
	}
	t.Logf("%d queries, %d metric selectors checked", len(queries), checked)
	if t.Failed() {
		var sb strings.Builder
		for _, n := range names {
			fmt.Fprintf(&sb, "\n  %s %v", n, sortedKeys(exposed[n]))
		}
		t.Logf("exposed:%s", sb.String())
	}
	st.agent.stop()
	live.stop()
}

func slicesContain(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func anyHas(exposed exposedSeries, sels []deploy.Selector, label string) bool {
	for _, s := range sels {
		if exposed[s.Metric][label] {
			return true
		}
	}
	return false
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// nearest names the exposed metrics that share the missing one's prefix,
// for the failure message.
func nearest(name string, names []string) string {
	prefix := name
	if i := strings.LastIndexByte(name, '_'); i > 0 {
		prefix = name[:i]
	}
	var near []string
	for _, n := range names {
		if strings.HasPrefix(n, prefix) {
			near = append(near, n)
		}
	}
	if len(near) == 0 {
		return "nothing with its prefix"
	}
	return "exposed with its prefix: " + strings.Join(near, ", ")
}
