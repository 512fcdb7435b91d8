package e2e_test

import (
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
)

// The shipped agent and gateway configs (testdata/deploy/), run as shipped
// with only endpoints remapped: test client → agent (fanout by trace ID to
// the gateways the DNS server names, persistent queue) → gateways
// (redmetrics and spanlogs on every span, tail sampling) → the stores in
// the test process: a countingServer per gateway for sampled traces, one
// storeSink for remote write and OTLP/HTTP logs.

// gatewayStack is the stores, the gateways and the agent of one test.
type gatewayStack struct {
	stores   *storeSink
	traces   []*countingServer // gateway i's trace store
	gateways []*gateway
	dns      gatewayDNS
	agent    *agent
}

func startGateways(t *testing.T, n int) *gatewayStack {
	t.Helper()
	st := &gatewayStack{stores: startStoreSink(t)}
	var endpoints []string
	for i := range n {
		store := startCountingServer(t, fmt.Sprintf("trace-store-%d", i))
		gw := startWithFreshPorts(t, func() *gateway {
			return newGateway(t, fmt.Sprintf("gateway-%d", i), store.addr, st.stores.remoteWriteURL(), st.stores.logStoreURL())
		})
		st.traces = append(st.traces, store)
		st.gateways = append(st.gateways, gw)
		endpoints = append(endpoints, gw.endpoint())
	}
	st.dns = startGatewayDNS(t, endpoints...)
	return st
}

// gatewaySum adds up one of the gateways' own metrics over all of them.
func (st *gatewayStack) gatewaySum(name string, labels ...string) float64 {
	sum := 0.0
	for _, g := range st.gateways {
		sum += g.metricSum(name, labels...)
	}
	return sum
}

// dump is every process's output, for a failure message.
func (st *gatewayStack) dump() string {
	var sb strings.Builder
	if st.agent != nil {
		fmt.Fprintf(&sb, "---- agent\n%s\n", lastLines(st.agent.output(), 40))
	}
	for _, g := range st.gateways {
		fmt.Fprintf(&sb, "---- %s\n%s\n", g.name, lastLines(g.output(), 40))
	}
	fmt.Fprintf(&sb, "---- stores: %s\n", st.stores)
	return sb.String()
}

func (st *gatewayStack) stopAll(t *testing.T) {
	t.Helper()
	if st.agent != nil {
		st.agent.stop() // first: it drains to the gateways
	}
	for _, g := range st.gateways {
		g.stop()
	}
}

// traceTally is what arrived of each trace of a load at the trace stores.
type traceTally struct {
	errorWhole, errorPartial, errorAbsent int // traces with an error span
	otherWhole, otherPartial, otherAbsent int // the others
	split                                 int // traces whose spans reached more than one store
	foreign                               int // span IDs at the stores that are not the load's
}

func tallyTraces(l load, d delivery) traceTally {
	var tt traceTally
	want := map[pcommon.SpanID]bool{}
	for tr := range l.traces {
		hasError, present := false, 0
		for j := range l.spansPerTrace {
			g := tr*l.spansPerTrace + j
			want[l.spanID(g)] = true
			hasError = hasError || isError(g)
			if d.Spans[l.spanID(g)] > 0 {
				present++
			}
		}
		switch {
		case hasError && present == l.spansPerTrace:
			tt.errorWhole++
		case hasError && present > 0:
			tt.errorPartial++
		case hasError:
			tt.errorAbsent++
		case present == l.spansPerTrace:
			tt.otherWhole++
		case present > 0:
			tt.otherPartial++
		default:
			tt.otherAbsent++
		}
	}
	for _, homes := range d.TraceHomes {
		if homes > 1 {
			tt.split++
		}
	}
	for id := range d.Spans {
		if !want[id] {
			tt.foreign++
		}
	}
	return tt
}

// errorShape counts a load's traces that contain an error span, and its
// error spans.
func errorShape(l load) (errorTraces, errorSpans int) {
	for tr := range l.traces {
		has := false
		for j := range l.spansPerTrace {
			if isError(tr*l.spansPerTrace + j) {
				errorSpans++
				has = true
			}
		}
		if has {
			errorTraces++
		}
	}
	return errorTraces, errorSpans
}

// TestE2EAgentToGateways sends 4,250 traces (21,250 spans) through one
// agent and two gateways, all on the shipped configs, and accounts for
// every trace, RED count and log record at the stores.
//
// The load: 5 spans a trace over 3 services (a server root, 4 client
// children), none longer than 54ms (far under the 2s latency policy);
// span g is an error when g%17 == 3, so exactly 5 traces in 17 hold one
// error span: 1,250 error traces, 3,000 others.
func TestE2EAgentToGateways(t *testing.T) {
	began := time.Now()
	st := startGateways(t, 2)
	st.agent = startWithFreshPorts(t, func() *agent { return newAgent(t, st.dns, t.TempDir()) })

	l := load{run: 21, traces: 4250, spansPerTrace: 5, tracesPerBatch: 10, workers: 4,
		interval: 8 * time.Millisecond, maxAttempts: 5, backoff: 200 * time.Millisecond, callTimeout: 20 * time.Second}
	errorTraces, errorSpans := errorShape(l)
	otherTraces := l.traces - errorTraces
	if errorTraces != 1250 || errorSpans != 1250 {
		t.Fatalf("load shape: %d error traces, %d error spans; want 1250 of each", errorTraces, errorSpans)
	}
	res := sendLoad(t, st.agent.otlpEndpoint(), l.withSDKTraceIDs()).wait(time.Minute)
	if a, _, _ := res.counts(); a != l.batches() {
		t.Fatalf("with no fault every batch must be accepted: %s\n%s", res, st.dump())
	}
	sentAt := time.Now()

	// Tail sampling decides each trace decision_wait (10s) after its first
	// span, then hands the kept ones to the trace exporter: wait until the
	// gateways decided every trace, the stores hold as many traces as were
	// kept, and as many spans as the trace exporters sent.
	decided := func() float64 {
		return st.gatewaySum("otelcol_processor_tail_sampling_global_count_traces_sampled")
	}
	kept := func() float64 {
		return st.gatewaySum("otelcol_processor_tail_sampling_global_count_traces_sampled", `sampled="true"`)
	}
	sent := func() float64 { return st.gatewaySum("otelcol_exporter_sent_spans", `exporter="otlp_grpc/traces"`) }
	if !pollFor(60*time.Second, func() bool {
		d := collect(st.traces...)
		return decided() >= float64(l.traces) && float64(len(d.TraceHomes)) >= kept() && sent() == float64(d.Total())
	}) {
		d := collect(st.traces...)
		t.Errorf("after 60s the gateways decided %v of %d traces and kept %v, their trace exporters sent %v spans; the trace stores hold %d spans of %d traces",
			decided(), l.traces, kept(), sent(), d.Total(), len(d.TraceHomes))
	}
	t.Logf("traces decided and delivered %.1fs after the last batch was accepted", time.Since(sentAt).Seconds())
	// A trace whose spans reached both gateways is decided by each: the
	// decisions add up to the traces exactly only if none was split (kept
	// or not).
	if got := decided(); got != float64(l.traces) {
		t.Errorf("the gateways made %v sampling decisions for %d traces: a trace decided twice was split in time or across gateways", got, l.traces)
	}

	// Every error trace whole; every kept trace whole and on one gateway;
	// the share of the others kept is 10% within 4σ of a binomial:
	// σ = √(3000 · 0.1 · 0.9) ≈ 16.4 traces, so 300 ± 66 (10% ± 2.2 points).
	// The trace IDs are the same every run, so is the count (286): the
	// bound says the policy's hash treats them as a fair 10% coin would.
	d := collect(st.traces...)
	tt := tallyTraces(l, d)
	t.Logf("trace stores: %d distinct spans, %d duplicates; error traces %d whole, %d partial, %d absent; others %d whole, %d partial, %d absent; %d split, %d foreign spans",
		len(d.Spans), d.Duplicates(), tt.errorWhole, tt.errorPartial, tt.errorAbsent, tt.otherWhole, tt.otherPartial, tt.otherAbsent, tt.split, tt.foreign)
	if tt.errorWhole != errorTraces {
		t.Errorf("%d of %d error traces arrived whole (%d partial, %d absent); the errors policy keeps every one", tt.errorWhole, errorTraces, tt.errorPartial, tt.errorAbsent)
	}
	if tt.otherPartial > 0 || tt.split > 0 || tt.foreign > 0 {
		t.Errorf("%d kept traces without an error arrived partial, %d traces reached both gateways' stores, %d spans are not the load's: want none",
			tt.otherPartial, tt.split, tt.foreign)
	}
	sigma := math.Sqrt(float64(otherTraces) * 0.1 * 0.9)
	share := float64(tt.otherWhole) / float64(otherTraces)
	t.Logf("kept %d of %d traces without an error: %.2f%% (want 10%% ± %.2f points, 4σ)", tt.otherWhole, otherTraces, 100*share, 400*sigma/float64(otherTraces))
	if math.Abs(float64(tt.otherWhole)-0.1*float64(otherTraces)) > 4*sigma {
		t.Errorf("kept %d of %d traces without an error (%.2f%%), want %.0f ± %.0f (10%% ± 4σ)",
			tt.otherWhole, otherTraces, 100*share, 0.1*float64(otherTraces), 4*sigma)
	}
	if dup := d.Duplicates(); float64(dup) > 0.005*float64(len(d.Spans)) {
		t.Errorf("%d duplicate spans at the trace stores of %d distinct, want at most 0.5%%", dup, len(d.Spans))
	}
	for i, s := range st.traces {
		t.Logf("%s (behind %s): %d spans", s.name, st.gateways[i].name, s.spanCount())
	}

	// RED metrics are computed before sampling: the calls counter, as
	// remote write delivers it (latest value per series, series told apart
	// by every label, collector_instance_id included), sums to every span
	// sent, error calls to the error spans, and each gateway's share to
	// the spans it received.
	var calls, errCalls float64
	var byInstance map[string]float64
	if !pollFor(60*time.Second, func() bool {
		calls, errCalls, byInstance = st.stores.redSums()
		return calls == float64(l.spans()) && errCalls == float64(errorSpans)
	}) {
		t.Errorf("RED %s: %v calls, %v errors after 60s; want %d calls, %d errors (%s)",
			redCallsSeries, calls, errCalls, l.spans(), errorSpans, st.stores)
	}
	t.Logf("RED %s: %v calls, %v error calls, by collector_instance_id %v; labels %v", redCallsSeries, calls, errCalls, byInstance, st.stores.redLabels())
	for _, g := range st.gateways {
		// The canary processor takes the agent's canary traces (one span
		// each) out before redmetrics.
		got := g.metricSum("otelcol_receiver_accepted_spans") - g.metricSum("otelcol_canary_received")
		if byInstance[g.name] != got {
			t.Errorf("RED calls of collector_instance_id %q = %v, but that gateway accepted %v spans", g.name, byInstance[g.name], got)
		}
		if share := got / float64(l.spans()); share < 0.3 || share > 0.7 {
			t.Errorf("%s accepted %.1f%% of the spans; traceID routing over 2 gateways should give each about half", g.name, 100*share)
		}
	}

	// Span logs: the errors rule makes one record per error span, but the
	// shipped config keeps spanlogs' default rate limit (1 record a second
	// per fingerprint, burst 5; a fingerprint is service + rule + span
	// name), so every error span is either a record at the logs store or a
	// suppression the gateway counted, never both, never neither; the
	// exceptions and slow rules match nothing in this load.
	emitted := func() float64 { return st.gatewaySum("otelcol_spanlogs_records_emitted", `rule="errors"`) }
	suppressed := func() float64 { return st.gatewaySum("otelcol_spanlogs_records_suppressed", `rule="errors"`) }
	if !pollFor(60*time.Second, func() bool {
		return emitted()+suppressed() == float64(errorSpans) && float64(st.stores.logSnapshot().records) == emitted()
	}) {
		t.Errorf("spanlogs after 60s: %v records emitted + %v suppressed by the errors rule, want %d error spans; the logs store holds %d records",
			emitted(), suppressed(), errorSpans, st.stores.logSnapshot().records)
	}
	logs := st.stores.logSnapshot()
	wrong := 0
	for g := range l.spans() {
		if n := logs.bySpan[l.spanID(g)]; n > 1 || (n == 1 && !isError(g)) {
			wrong++
		}
	}
	if wrong > 0 || len(logs.bySpan) != logs.records {
		t.Errorf("log records: %d spans with a wrong record count (a record for a span without error, or two for one span); %d records for %d spans",
			wrong, logs.records, len(logs.bySpan))
	}
	if logs.bodies["errors"] != logs.records || logs.severity[plog.SeverityNumberError] != logs.records {
		t.Errorf("log records by body %v, by severity %v: want every one an error-rule record at severity ERROR", logs.bodies, logs.severity)
	}
	for _, rule := range []string{"exceptions", "slow"} {
		if n := st.gatewaySum("otelcol_spanlogs_records_emitted", `rule="`+rule+`"`) + st.gatewaySum("otelcol_spanlogs_records_suppressed", `rule="`+rule+`"`); n != 0 {
			t.Errorf("spanlogs rule %s matched %v spans; the load has no exception event and no span over 2s", rule, n)
		}
	}
	if float64(logs.suppressed) > suppressed() {
		t.Errorf("records carry spanlogs.suppressed_count summing to %d, more than the %v suppressions counted", logs.suppressed, suppressed())
	}
	t.Logf("span logs: %d error spans → %d records at the logs store (%d requests) + %v suppressed by the rate limit (%d of them reported on later records' spanlogs.suppressed_count)",
		errorSpans, logs.records, logs.requests, suppressed(), logs.suppressed)

	// The agent's side: it accepted every span and refused none.
	if got := st.agent.metricSum("otelcol_receiver_accepted_spans", `receiver="otlp"`); got != float64(l.spans()) {
		t.Errorf("agent otelcol_receiver_accepted_spans = %v, want %d", got, l.spans())
	}
	if got := st.agent.metricSum("otelcol_fanout_items_refused"); got != 0 {
		t.Errorf("agent otelcol_fanout_items_refused = %v, want 0", got)
	}
	if t.Failed() {
		t.Log(st.dump())
	}
	st.stopAll(t)
	t.Logf("%d spans sent; test took %.1fs", l.spans(), time.Since(began).Seconds())
}

// TestE2EAgentPersistentQueue: with every gateway down, the agent accepts
// spans into its persistent queue (file_storage); SIGKILLed and started
// again on the same queue directory, it delivers every span it accepted
// once a gateway is up where the DNS names one.
//
// The load is 1,000 traces of 17 spans: span g is an error when g%17 == 3,
// so every trace holds exactly one error span and the gateway's errors
// policy keeps every trace. That makes the count exact by span ID at the
// trace store: every span the client was told OK for must arrive, and
// duplicates are seen as such. (Counting through RED calls instead would
// count a duplicate as a span and could not say which span is missing.)
func TestE2EAgentPersistentQueue(t *testing.T) {
	began := time.Now()
	st := &gatewayStack{stores: startStoreSink(t)}
	store := startCountingServer(t, "trace-store-0")
	st.traces = []*countingServer{store}
	// The gateway is configured but not started: nobody listens where the
	// DNS sends the agent.
	gw := newGateway(t, "gateway-0", store.addr, st.stores.remoteWriteURL(), st.stores.logStoreURL())
	st.dns = startGatewayDNS(t, gw.endpoint())
	queueDir := t.TempDir()
	st.agent = startWithFreshPorts(t, func() *agent { return newAgent(t, st.dns, queueDir) })
	ag := st.agent

	l := load{run: 22, traces: 1000, spansPerTrace: 17, tracesPerBatch: 5, workers: 4,
		interval: 5 * time.Millisecond, maxAttempts: 5, backoff: 200 * time.Millisecond, callTimeout: 20 * time.Second}
	for g := range l.spansPerTrace {
		if isError(g) != (g == 3) {
			t.Fatalf("load shape: span %d of each trace must be its only error span", g)
		}
	}
	res := sendLoad(t, ag.otlpEndpoint(), l.withSDKTraceIDs()).wait(time.Minute)
	accepted := res.acceptedSpans()
	n := len(accepted)
	t.Logf("gateways down: the agent accepted %d of %d spans (%s)", n, l.spans(), res)
	// The queue holds 200,000 items: with room in it, the agent answers
	// OK to every batch, gateways or not.
	if n != l.spans() {
		t.Errorf("the agent accepted %d of %d spans with its queue far from full; want all", n, l.spans())
	}
	if got := ag.metricSum("otelcol_receiver_accepted_spans", `receiver="otlp"`); got != float64(n) {
		t.Errorf("agent otelcol_receiver_accepted_spans = %v, the client was told OK for %d", got, n)
	}
	queued := func() float64 { return ag.metricSum("otelcol_exporter_queue_size", `exporter="fanout/traces"`) }
	if !pollFor(10*time.Second, func() bool { return queued() == float64(n) }) {
		t.Errorf("agent otelcol_exporter_queue_size{exporter=\"fanout/traces\"} = %v, want the %d accepted spans queued", queued(), n)
	}
	t.Logf("queued before SIGKILL: %v", queued())
	if got := store.spanCount(); got != 0 {
		t.Fatalf("%d spans reached the trace store with no gateway up", got)
	}

	ag.kill()
	ag.start() // same ports, same queue directory
	ag.waitHealthy(30 * time.Second)
	if !pollFor(10*time.Second, func() bool { return queued() == float64(n) }) {
		t.Errorf("after the restart the agent's queue holds %v items, want the %d accepted before SIGKILL", queued(), n)
	}
	t.Logf("queued after the restart, gateways still down: %v", queued())

	// Now a gateway where the DNS points (on other ports if those were
	// taken meanwhile: the DNS then names those).
	first := true
	gw = startWithFreshPorts(t, func() *gateway {
		if first {
			first = false
			return gw
		}
		g := newGateway(t, "gateway-0", store.addr, st.stores.remoteWriteURL(), st.stores.logStoreURL())
		st.dns.setGateways(t, g.endpoint())
		return g
	})
	st.gateways = []*gateway{gw}
	upAt := time.Now()

	// Tail sampling holds each trace for decision_wait (10s).
	waitDelivered(res, 60*time.Second, store)
	t.Logf("delivered %.1fs after the gateway started", time.Since(upAt).Seconds())
	d := checkDelivered(t, res, 0.005, store)
	if len(d.Spans) != n {
		t.Errorf("%d distinct spans at the trace store, the agent accepted %d", len(d.Spans), n)
	}
	if !pollFor(10*time.Second, func() bool { return queued() == 0 }) {
		t.Errorf("agent queue still holds %v items after delivery", queued())
	}
	if got := ag.metricSum("otelcol_fanout_items_dropped"); got != 0 {
		t.Errorf("agent otelcol_fanout_items_dropped = %v, want 0", got)
	}
	if t.Failed() {
		t.Log(st.dump())
	}
	st.stopAll(t)
	t.Logf("%d spans accepted, %d distinct delivered, %d duplicates; test took %.1fs", n, len(d.Spans), d.Duplicates(), time.Since(began).Seconds())
}
