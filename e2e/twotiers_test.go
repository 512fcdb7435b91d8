package e2e_test

import (
	"testing"
	"time"
)

// TestE2ETwoTiers sends 30,000 spans (6,000 traces of 5 spans, 6% of them
// errors) spread over about five seconds through the shipped agent
// (testdata/deploy/agent.yaml: fanout by trace ID, breakers, persistent
// queue) to three backend otelcsp processes (otlp, redmetrics, spanlogs),
// and accounts for everything at the counting servers behind them.
func TestE2ETwoTiers(t *testing.T) {
	at := startAgentTiers(t)
	l := load{run: 1, traces: 6000, spansPerTrace: 5, tracesPerBatch: 10, workers: 4,
		interval: 8 * time.Millisecond, maxAttempts: 5, backoff: 200 * time.Millisecond, callTimeout: 20 * time.Second}
	res := sendLoad(t, at.agent.otlpEndpoint(), l).wait(time.Minute)
	if a, _, _ := res.counts(); a != l.batches() {
		t.Errorf("with no fault every batch must be accepted: %s", res)
	}
	waitDelivered(res, 10*time.Second, at.sinks...)
	d := checkDelivered(t, res, 0.005, at.sinks...)
	if len(d.Spans) != l.spans() {
		t.Errorf("%d distinct spans delivered, sent %d", len(d.Spans), l.spans())
	}

	// traceID routing: every trace whole on one backend, and the three
	// backends share the traces.
	split := 0
	for _, homes := range d.TraceHomes {
		if homes != 1 {
			split++
		}
	}
	if split > 0 || len(d.TraceHomes) != l.traces {
		t.Errorf("%d of %d traces reached more than one backend (want 0); %d traces seen", split, l.traces, len(d.TraceHomes))
	}
	for _, s := range at.sinks {
		share := float64(s.spanCount()) / float64(l.spans())
		t.Logf("%s: %d spans (%.1f%%)", s.name, s.spanCount(), 100*share)
		if share < 0.2 || share > 0.47 {
			t.Errorf("%s got %.1f%% of the spans; traceID routing over 3 backends should give each about a third", s.name, 100*share)
		}
	}

	// RED metrics: calls add up to the spans sent, errors to the error spans.
	wantErrors := 0
	for g := range l.spans() {
		if isError(g) {
			wantErrors++
		}
	}
	pollFor(15*time.Second, func() bool {
		d = collect(at.sinks...)
		return d.redCalls == int64(l.spans()) && d.redErrors == int64(wantErrors)
	})
	if d.redCalls != int64(l.spans()) || d.redErrors != int64(wantErrors) {
		t.Errorf("RED %s: %d calls, %d errors; want %d calls, %d errors", redCallsMetric, d.redCalls, d.redErrors, l.spans(), wantErrors)
	}

	// spanlogs: exactly one error log record per error span, none for others.
	pollFor(10*time.Second, func() bool { return len(collect(at.sinks...).logs) >= wantErrors })
	d = collect(at.sinks...)
	wrong := 0
	for g := range l.spans() {
		n := d.logs[l.spanID(g)]
		if (isError(g) && n != 1) || (!isError(g) && n != 0) {
			wrong++
		}
	}
	if wrong > 0 || len(d.logs) != wantErrors {
		t.Errorf("log records: %d spans with the wrong number of records; records for %d spans, want exactly one for each of %d error spans",
			wrong, len(d.logs), wantErrors)
	}
	t.Logf("RED: %d calls, %d errors; %d error log records", d.redCalls, d.redErrors, len(d.logs))

	// The agent's own metrics agree: it accepted every span, sent them all
	// and refused none.
	if got := at.agent.metricSum("otelcol_receiver_accepted_spans", `receiver="otlp"`); got != float64(l.spans()) {
		t.Errorf("agent otelcol_receiver_accepted_spans = %v, want %d", got, l.spans())
	}
	if got := at.agent.metricSum("otelcol_fanout_items_sent"); got < float64(l.spans()) {
		t.Errorf("agent otelcol_fanout_items_sent = %v, want at least %d", got, l.spans())
	}
	if got := at.agent.metricSum("otelcol_fanout_items_refused"); got != 0 {
		t.Errorf("agent otelcol_fanout_items_refused = %v, want 0", got)
	}
	at.stopAll()
}
