package e2e_test

import (
	"fmt"
	"maps"
	"math"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// Many writers of the same RED series, on the shipped configs:
//
//	TestE2EManyWritersCumulative: agent → 3 × gateway.yaml → one remote-write
//	store. Every gateway writes its own cumulative series (its
//	collector_instance_id); the store sums them.
//
//	TestE2EManyWritersDeltaMerge: agent → 3 × gateway-delta.yaml (delta RED
//	points, fanout by stream) → 2 × aggregator.yaml (deltamerge) → one
//	remote-write store. Every stream has one writer, an aggregator, whatever
//	the gateways, and counts every span once, across a gateway's SIGKILL
//	and restart.
//
// The remote-write store is a writerSink: one HTTP server in the test
// process, one URL path per writer (/<writer>/api/v1/push), so it knows who
// wrote each series and can tell two writers of one series apart, which
// storeSink (one path, series keyed by labels) cannot.

// writerSink is the remote-write store of many writers.
type writerSink struct {
	httpSink

	mu sync.Mutex
	// series keeps, per writer and per series (all its labels), the
	// sample with the latest timestamp.
	series    map[string]map[string]promSample
	writes    map[string]int // requests decoded, per writer
	staleNaNs int
}

func startWriterSink(t *testing.T) *writerSink {
	t.Helper()
	s := &writerSink{series: map[string]map[string]promSample{}, writes: map[string]int{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /{writer}"+remoteWritePath, s.remoteWrite)
	s.serve(t, "remote-write sink", mux)
	return s
}

// urlFor is the remote-write URL a writer is given.
func (s *writerSink) urlFor(writer string) string { return s.url + "/" + writer + remoteWritePath }

func (s *writerSink) remoteWrite(w http.ResponseWriter, r *http.Request) {
	writer := r.PathValue("writer")
	ts, ok := s.readRemoteWrite(w, r, writer+": ")
	if !ok {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.writes[writer]++
	mine := s.series[writer]
	if mine == nil {
		mine = map[string]promSample{}
		s.series[writer] = mine
	}
	for _, series := range ts {
		key := prwSeriesKey(series.labels)
		for _, smp := range series.samples {
			if math.IsNaN(smp.value) {
				s.staleNaNs++
				continue
			}
			if prev, seen := mine[key]; !seen || smp.ts >= prev.ts {
				mine[key] = promSample{labels: series.labels, ts: smp.ts, value: smp.value}
			}
		}
	}
	w.WriteHeader(http.StatusNoContent)
}

// redSnapshot is what the sink holds of the RED metrics
// (traces_span_metrics_*), latest value per writer and series.
type redSnapshot struct {
	byWriter map[string]map[string]promSample // writer → series key → sample
	writes   map[string]int
	stale    int
}

func (s *writerSink) red() redSnapshot {
	s.mu.Lock()
	defer s.mu.Unlock()
	snap := redSnapshot{byWriter: map[string]map[string]promSample{}, writes: map[string]int{}, stale: s.staleNaNs}
	for w, m := range s.series {
		red := map[string]promSample{}
		for k, p := range m {
			if strings.HasPrefix(p.labels["__name__"], "traces_span_metrics_") {
				red[k] = p
			}
		}
		snap.byWriter[w] = red
	}
	for w, n := range s.writes {
		snap.writes[w] = n
	}
	return snap
}

// callsLabels lists the label names of the calls series.
func (r redSnapshot) callsLabels() []string {
	return callsLabelNames(slices.Collect(maps.Values(r.byWriter))...)
}

// writersOf lists, per RED series (labels), the writers that wrote it.
func (r redSnapshot) writersOf() map[string][]string {
	out := map[string][]string{}
	for w, m := range r.byWriter {
		for k := range m {
			out[k] = append(out[k], w)
		}
	}
	for _, ws := range out {
		sort.Strings(ws)
	}
	return out
}

// redStream is a RED stream as the load makes it: the default dimensions.
// (Every span has http.request.method GET and no status code attribute,
// so the configured dimensions split nothing.)
type redStream struct{ service, span, kind, status string }

func (s redStream) String() string {
	return fmt.Sprintf("%s/%s/%s/%s", s.service, s.span, strings.TrimPrefix(s.kind, "SPAN_KIND_"), strings.TrimPrefix(s.status, "STATUS_CODE_"))
}

func streamOf(labels map[string]string) redStream {
	return redStream{labels["service_name"], labels["span_name"], labels["span_kind"], labels["status_code"]}
}

// expectedCalls is what the loads' spans add up to per RED stream, as
// load.batch builds them.
func expectedCalls(loads ...load) map[redStream]float64 {
	want := map[redStream]float64{}
	for _, l := range loads {
		for g := range l.spans() {
			j := g % l.spansPerTrace
			s := redStream{services[j%len(services)], fmt.Sprintf("op-%d", j%4), "SPAN_KIND_CLIENT", "STATUS_CODE_UNSET"}
			if j == 0 {
				s.kind = "SPAN_KIND_SERVER"
			}
			if isError(g) {
				s.status = "STATUS_CODE_ERROR"
			}
			want[s]++
		}
	}
	return want
}

const (
	redDurationCount = "traces_span_metrics_duration_milliseconds_count"
)

// redTotals adds up, over the given writers (all when none is given), the
// latest value of every calls series per stream, and the histogram's count.
func (r redSnapshot) redTotals(writers ...string) (calls map[redStream]float64, durationCount float64) {
	calls = map[redStream]float64{}
	for w, m := range r.byWriter {
		if len(writers) > 0 && !contains(writers, w) {
			continue
		}
		for _, p := range m {
			switch p.labels["__name__"] {
			case redCallsSeries:
				calls[streamOf(p.labels)] += p.value
			case redDurationCount:
				durationCount += p.value
			}
		}
	}
	return calls, durationCount
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func sumValues(m map[redStream]float64) (total, errs float64) {
	for s, v := range m {
		total += v
		if s.status == "STATUS_CODE_ERROR" {
			errs += v
		}
	}
	return total, errs
}

// diffStreams lists the streams whose got differs from want.
func diffStreams(got, want map[redStream]float64) []string {
	var out []string
	for s, w := range want {
		if got[s] != w {
			out = append(out, fmt.Sprintf("%s: got %v, want %v", s, got[s], w))
		}
	}
	for s, g := range got {
		if _, ok := want[s]; !ok {
			out = append(out, fmt.Sprintf("%s: got %v, want no such stream", s, g))
		}
	}
	sort.Strings(out)
	return out
}

// acceptedAll waits until the agent has accepted n spans and its traces
// queue is empty, and the gateways accepted want spans between them (their
// otelcol_receiver_accepted_spans, since their current start); it returns
// when that was observed.
func acceptedAll(t *testing.T, ag *agent, gateways []*gateway, n, want int, timeout time.Duration) time.Time {
	t.Helper()
	gwSum := func() float64 {
		sum := 0.0
		for _, g := range gateways {
			sum += g.metricSum("otelcol_receiver_accepted_spans") - g.metricSum("otelcol_canary_received")
		}
		return sum
	}
	queued := func() float64 { return ag.metricSum("otelcol_exporter_queue_size", `exporter="fanout/traces"`) }
	if !pollFor(timeout, func() bool {
		return ag.metricSum("otelcol_receiver_accepted_spans", `receiver="otlp"`) >= float64(n) && queued() == 0 && gwSum() >= float64(want)
	}) {
		t.Fatalf("after %s: the agent accepted %v of %d spans and queues %v; the gateways accepted %v, want %d",
			timeout, ag.metricSum("otelcol_receiver_accepted_spans", `receiver="otlp"`), n, queued(), gwSum(), want)
	}
	at := time.Now()
	if got := gwSum(); got != float64(want) {
		t.Errorf("the gateways accepted %v spans, want %d: the agent delivered some twice", got, want)
	}
	return at
}

// TestE2EManyWritersCumulative: one agent (agent.yaml) → three gateways
// (gateway.yaml, HOSTNAME gateway-0…2) → one remote-write store. Every RED
// series arriving at the store is written by one gateway and carries its
// collector_instance_id (three values, no two gateways writing a series
// with identical labels); the calls counter (latest value per series,
// summed over the gateways) equals the spans sent, per stream and in all,
// and each gateway's share equals the spans it accepted.
func TestE2EManyWritersCumulative(t *testing.T) {
	began := time.Now()
	sink := startWriterSink(t)
	stores := startStoreSink(t) // span logs
	traceStore := startCountingServer(t, "trace-store")
	var gateways []*gateway
	var endpoints []string
	for i := range 3 {
		name := fmt.Sprintf("gateway-%d", i)
		gw := startWithFreshPorts(t, func() *gateway {
			return newGateway(t, name, traceStore.addr, sink.urlFor(name), stores.logStoreURL())
		})
		gateways = append(gateways, gw)
		endpoints = append(endpoints, gw.endpoint())
	}
	dns := startGatewayDNS(t, endpoints...)
	ag := startWithFreshPorts(t, func() *agent { return newAgent(t, dns, t.TempDir()) })
	dump := func() string {
		var sb strings.Builder
		fmt.Fprintf(&sb, "---- agent\n%s\n", lastLines(ag.output(), 40))
		for _, g := range gateways {
			fmt.Fprintf(&sb, "---- %s\n%s\n", g.name, lastLines(g.output(), 40))
		}
		return sb.String()
	}

	l := load{run: 31, traces: 3000, spansPerTrace: 5, tracesPerBatch: 10, workers: 4,
		interval: 8 * time.Millisecond, maxAttempts: 5, backoff: 200 * time.Millisecond, callTimeout: 20 * time.Second}
	want := expectedCalls(l)
	wantTotal, wantErrs := sumValues(want)
	if wantTotal != float64(l.spans()) {
		t.Fatalf("expected calls add up to %v, the load has %d spans", wantTotal, l.spans())
	}
	res := sendLoad(t, ag.otlpEndpoint(), l.withSDKTraceIDs()).wait(time.Minute)
	if a, _, _ := res.counts(); a != l.batches() {
		t.Fatalf("with no fault every batch must be accepted: %s\n%s", res, dump())
	}
	acceptedAll(t, ag, gateways, l.spans(), l.spans(), 30*time.Second)
	sentAt := time.Now()

	// Cumulative series are flushed every 15s (metrics_flush_interval).
	var snap redSnapshot
	var calls map[redStream]float64
	if !pollFor(45*time.Second, func() bool {
		snap = sink.red()
		calls, _ = snap.redTotals()
		total, errs := sumValues(calls)
		return total == wantTotal && errs == wantErrs
	}) {
		total, errs := sumValues(calls)
		t.Errorf("after 45s the store's %s add up to %v calls, %v errors; want %v, %v", redCallsSeries, total, errs, wantTotal, wantErrs)
	}
	t.Logf("RED calls complete at the store %.1fs after the agent delivered the last span", time.Since(sentAt).Seconds())

	// One writer per series, and the writer's identity on it.
	instances := map[string]int{}
	for key, ws := range snap.writersOf() {
		if len(ws) != 1 {
			t.Errorf("series %s written by %v: two gateways wrote identical labels", key, ws)
		}
	}
	for w, m := range snap.byWriter {
		for key, p := range m {
			id, ok := p.labels["collector_instance_id"]
			if !ok || id != w {
				t.Errorf("series %s written by %s has collector_instance_id %q (present %v), want the gateway's HOSTNAME", key, w, id, ok)
			}
			instances[id]++
		}
	}
	if len(instances) != len(gateways) {
		t.Errorf("collector_instance_id takes %d values %v, want %d (one per gateway)", len(instances), instances, len(gateways))
	}

	// Exact counts: per stream over all gateways, per gateway against
	// what it accepted, and the histograms' counts.
	if d := diffStreams(calls, want); len(d) > 0 {
		t.Errorf("calls per stream (summed over gateways) differ from the spans sent:\n%s", strings.Join(d, "\n"))
	}
	_, durCount := snap.redTotals()
	if durCount != wantTotal {
		t.Errorf("%s adds up to %v, want %v", redDurationCount, durCount, wantTotal)
	}
	for _, g := range gateways {
		mine, _ := snap.redTotals(g.name)
		got, _ := sumValues(mine)
		accepted := g.metricSum("otelcol_receiver_accepted_spans") - g.metricSum("otelcol_canary_received") // canaries never reach redmetrics
		t.Logf("%s: %d RED series (%d remote-write requests), %v calls, accepted %v spans", g.name, len(snap.byWriter[g.name]), snap.writes[g.name], got, accepted)
		if got != accepted {
			t.Errorf("%s wrote %v calls, it accepted %v spans", g.name, got, accepted)
		}
		if share := accepted / wantTotal; share < 0.2 || share > 0.47 {
			t.Errorf("%s accepted %.1f%% of the spans; traceID routing over 3 gateways should give each about a third", g.name, 100*share)
		}
	}
	total, errs := sumValues(calls)
	callSeries := 0
	for _, m := range snap.byWriter {
		for _, p := range m {
			if p.labels["__name__"] == redCallsSeries {
				callSeries++
			}
		}
	}
	t.Logf("%d spans (%v errors) sent; %d streams; %d RED series at the store (%d of them %s), calls %v, errors %v, duration count %v; series by collector_instance_id %v; %d stale markers",
		l.spans(), wantErrs, len(want), len(snap.writersOf()), callSeries, redCallsSeries, total, errs, durCount, instances, snap.stale)
	t.Logf("%s labels: %v", redCallsSeries, snap.callsLabels())
	if t.Failed() {
		t.Log(dump())
	}
	ag.stop()
	for _, g := range gateways {
		g.stop()
	}
	t.Logf("test took %.1fs", time.Since(began).Seconds())
}

// waitFlushAfter waits until gateway g's redmetrics connector has
// completed a flush that began after since, and says how long that took.
//
// A flush records its duration (otelcol_redmetrics_flush_duration, a
// histogram) at its very end, measured from before it snapshots the
// series; flushes are serialized. So when the count was c at a scrape
// begun at time p and is c+1 at the next scrape, that flush ended after p
// and began after p − d, d being its duration (the increase of the sum);
// when it is c+2 or more, the last flush began after the one before it
// ended, after p.
func waitFlushAfter(t *testing.T, g *gateway, since time.Time, timeout time.Duration) time.Duration {
	t.Helper()
	read := func() (count, sum float64, at time.Time) {
		at = time.Now()
		count = g.metricSum("otelcol_redmetrics_flush_duration_count")
		sum = g.metricSum("otelcol_redmetrics_flush_duration_sum")
		return count, sum, at
	}
	pc, ps, pat := read()
	if pat.Before(since) {
		t.Fatalf("waitFlushAfter: since %s is after the first scrape", since)
	}
	if pollFor(timeout, func() bool {
		c, s, at := read()
		defer func() { pc, ps, pat = c, s, at }()
		if c >= pc+2 {
			return true
		}
		d := time.Duration((s - ps) * float64(time.Second))
		return c == pc+1 && !pat.Add(-d).Before(since)
	}) {
		return time.Since(since)
	}
	t.Fatalf("%s: no redmetrics flush completed that began after %s within %s", g.name, since.Format("15:04:05.000"), timeout)
	return 0
}

// TestE2EManyWritersDeltaMerge: one agent (agent.yaml) → three gateways
// (gateway-delta.yaml: redmetrics delta, fanout by stream ID without
// collector.instance.id) → two aggregators (aggregator.yaml: deltamerge →
// remote write, found by SRV) → one remote-write store that knows which
// aggregator wrote each series.
//
// The load goes in two phases. Between them, gateway-1's phase-1 deltas
// are all flushed and delivered to the aggregators (waited for on its own
// metrics), then it is SIGKILLed and started again: a new process with the
// same collector.instance.id and new start times, a new epoch of the same
// writer for deltamerge. At the end the agent stops, then the gateways
// (SIGTERM: their last deltas flushed), then the aggregators (SIGTERM:
// deltamerge emits once more; its 60s interval is not waited for).
//
// Every stream has exactly one writer (aggregator), no
// collector_instance_id label, and its final cumulative calls equal the
// spans sent for it, exactly.
func TestE2EManyWritersDeltaMerge(t *testing.T) {
	began := time.Now()
	sink := startWriterSink(t)
	stores := startStoreSink(t) // span logs
	traceStore := startCountingServer(t, "trace-store")
	dns := startGatewayDNS(t) // no gateway yet

	var aggs []*aggregator
	var aggEndpoints, aggNames []string
	for i := range 2 {
		name := fmt.Sprintf("agg-%d", i)
		a := startWithFreshPorts(t, func() *aggregator { return newAggregator(t, name, sink.urlFor(name)) })
		aggs = append(aggs, a)
		aggNames = append(aggNames, name)
		aggEndpoints = append(aggEndpoints, a.endpoint())
	}
	dns.setSRV(t, aggregatorsSRV, aggEndpoints...)

	var gateways []*gateway
	var endpoints []string
	for i := range 3 {
		name := fmt.Sprintf("gateway-%d", i)
		gw := startWithFreshPorts(t, func() *gateway { return newDeltaGateway(t, name, traceStore.addr, stores.logStoreURL(), dns) })
		gateways = append(gateways, gw)
		endpoints = append(endpoints, gw.endpoint())
	}
	// Each gateway's fanout finds both aggregators at its first resolution.
	for _, g := range gateways {
		if !pollFor(10*time.Second, func() bool { return g.metricSum("otelcol_fanout_backends") == float64(len(aggs)) }) {
			t.Fatalf("%s: fanout/metrics has %v backends, want %d", g.name, g.metricSum("otelcol_fanout_backends"), len(aggs))
		}
	}
	dns.setGateways(t, endpoints...)
	ag := startWithFreshPorts(t, func() *agent { return newAgent(t, dns, t.TempDir()) })
	dump := func() string {
		var sb strings.Builder
		fmt.Fprintf(&sb, "---- agent\n%s\n", lastLines(ag.output(), 30))
		for _, g := range gateways {
			fmt.Fprintf(&sb, "---- %s\n%s\n", g.name, lastLines(g.output(), 30))
		}
		for _, a := range aggs {
			fmt.Fprintf(&sb, "---- %s\n%s\n", a.name, lastLines(a.output(), 30))
		}
		return sb.String()
	}

	phase1 := load{run: 32, traces: 2000, spansPerTrace: 5, tracesPerBatch: 10, workers: 4,
		interval: 8 * time.Millisecond, maxAttempts: 5, backoff: 200 * time.Millisecond, callTimeout: 20 * time.Second}

	// Phase 1.
	res := sendLoad(t, ag.otlpEndpoint(), phase1.withSDKTraceIDs()).wait(time.Minute)
	if a, _, _ := res.counts(); a != phase1.batches() {
		t.Fatalf("phase 1: with no fault every batch must be accepted: %s\n%s", res, dump())
	}
	deliveredAt := acceptedAll(t, ag, gateways, phase1.spans(), phase1.spans(), 30*time.Second)

	// Gateway G's phase-1 deltas: flushed by a flush that began after the
	// last span arrived (metrics_flush_interval 15s), then delivered: its
	// fanout's in-memory queue counts an item until the aggregator
	// answered for it.
	g := gateways[1]
	gAccepted := g.metricSum("otelcol_receiver_accepted_spans") - g.metricSum("otelcol_canary_received") // canaries: the agent's, not the test's
	waited := waitFlushAfter(t, g, deliveredAt, 35*time.Second)
	queued := func() float64 { return g.metricSum("otelcol_exporter_queue_size", `exporter="fanout/metrics"`) }
	if !pollFor(30*time.Second, func() bool { return queued() == 0 }) {
		t.Fatalf("%s: fanout/metrics still queues %v items 30s after its flush\n%s", g.name, queued(), dump())
	}
	gSent := g.metricSum("otelcol_fanout_items_sent")
	if dropped := g.metricSum("otelcol_fanout_items_dropped"); dropped != 0 || gSent == 0 {
		t.Fatalf("%s: fanout/metrics sent %v points and dropped %v; want some sent, none dropped", g.name, gSent, dropped)
	}
	t.Logf("phase 1: %d spans; %s accepted %v of them, flushed them %.1fs after the agent delivered the last, its fanout delivered %v points",
		phase1.spans(), g.name, gAccepted, waited.Seconds(), gSent)

	// SIGKILL G and start it again (same ports, same HOSTNAME).
	g.kill()
	g.start()
	g.waitHealthy(30 * time.Second)
	if !pollFor(10*time.Second, func() bool { return g.metricSum("otelcol_fanout_backends") == float64(len(aggs)) }) {
		t.Fatalf("%s after restart: fanout/metrics has %v backends, want %d", g.name, g.metricSum("otelcol_fanout_backends"), len(aggs))
	}

	// Phase 2, in parts of 300 traces, each delivered before the next is
	// sent, until the restarted G has taken at least 1,500 spans (at most
	// 40 parts, 30s): the agent's gRPC channels to G are in reconnect
	// backoff after the SIGKILL, so its first calls to G fail fast, its
	// breaker opens and G's keys go to the other gateways until the
	// breaker closes (1s later, at the first good probe) and ramp_up has
	// given G back its share (5s).
	var phase2 []load
	sent := phase1.spans()
	gNow := func() float64 {
		return g.metricSum("otelcol_receiver_accepted_spans") - g.metricSum("otelcol_canary_received")
	}
	phase2Began := time.Now()
	for part := 0; part < 40 && time.Since(phase2Began) < 30*time.Second && gNow() < 1500; part++ {
		l := phase1
		l.run, l.traces = uint64(33+part), 300
		res := sendLoad(t, ag.otlpEndpoint(), l.withSDKTraceIDs()).wait(time.Minute)
		if a, _, _ := res.counts(); a != l.batches() {
			t.Fatalf("phase 2 part %d: with no fault every batch must be accepted: %s\n%s", part, res, dump())
		}
		phase2 = append(phase2, l)
		sent += l.spans()
		// G's counter started again at its restart.
		acceptedAll(t, ag, gateways, sent, sent-int(gAccepted), 30*time.Second)
	}
	if gNow() < 1500 {
		t.Fatalf("phase 2: %s took %v spans in %d parts (%.1fs) after its restart, want at least 1500\n%s",
			g.name, gNow(), len(phase2), time.Since(phase2Began).Seconds(), dump())
	}
	bs, _ := breaker(ag.breakers, strings.Replace(g.endpoint(), "127.0.0.1", "localhost", 1))
	t.Logf("phase 2: %d spans in %d parts over %.1fs; %s took %v of them after its restart (the agent's breaker for it: %s, %d trips)",
		sent-phase1.spans(), len(phase2), time.Since(phase2Began).Seconds(), g.name, gNow(), bs.State, bs.Trips)
	want := expectedCalls(append([]load{phase1}, phase2...)...)
	wantTotal, wantErrs := sumValues(want)
	if wantTotal != float64(sent) {
		t.Fatalf("expected calls add up to %v, the loads have %d spans", wantTotal, sent)
	}

	// Stop the agent, then the gateways: each flushes its last deltas at
	// shutdown and its fanout drains them to the aggregators.
	ag.stop()
	for _, gw := range gateways {
		gw.stop()
	}
	// deltamerge's own metrics, before the aggregators stop.
	type dmStats struct{ streams, merged, dups, ooo, dropped, received float64 }
	stats := map[string]dmStats{}
	for _, a := range aggs {
		st := dmStats{
			streams:  a.metricSum("otelcol_deltamerge_streams"),
			merged:   a.metricSum("otelcol_deltamerge_points_merged"),
			dups:     a.metricSum("otelcol_deltamerge_duplicates_dropped"),
			ooo:      a.metricSum("otelcol_deltamerge_points_out_of_order"),
			dropped:  a.metricSum("otelcol_deltamerge_points_dropped"),
			received: a.metricSum("otelcol_receiver_accepted_metric_points"),
		}
		stats[a.name] = st
		t.Logf("%s deltamerge: %v streams, %v points merged, %v duplicates dropped, %v out of order, %v dropped (receiver accepted %v points)",
			a.name, st.streams, st.merged, st.dups, st.ooo, st.dropped, st.received)
		if st.dropped != 0 {
			t.Errorf("%s: deltamerge dropped %v points, want none", a.name, st.dropped)
		}
	}
	// Then the aggregators: deltamerge emits its totals once more.
	for _, a := range aggs {
		a.stop()
	}

	snap := sink.red()
	perAgg := map[string]int{}
	for key, ws := range snap.writersOf() {
		if len(ws) != 1 {
			t.Errorf("series %s written by %v: want one aggregator per stream", key, ws)
		}
	}
	for w, m := range snap.byWriter {
		if !contains(aggNames, w) {
			t.Errorf("the store got series from %q, which is no aggregator", w)
		}
		for key, p := range m {
			if _, ok := p.labels["collector_instance_id"]; ok {
				t.Errorf("merged series %s (by %s) carries collector_instance_id", key, w)
			}
			if p.labels["__name__"] == redCallsSeries {
				perAgg[w]++
			}
		}
	}
	calls, durCount := snap.redTotals()
	total, errs := sumValues(calls)
	if d := diffStreams(calls, want); len(d) > 0 {
		t.Errorf("final cumulative calls per stream differ from the spans sent:\n%s", strings.Join(d, "\n"))
	}
	if total != wantTotal || errs != wantErrs {
		t.Errorf("calls add up to %v (errors %v), want %v (%v)", total, errs, wantTotal, wantErrs)
	}
	if durCount != wantTotal {
		t.Errorf("%s adds up to %v, want %v", redDurationCount, durCount, wantTotal)
	}
	// 20 metric streams (calls and duration of 10): all on one aggregator
	// would happen by chance about twice in a million runs.
	for _, a := range aggNames {
		if len(snap.byWriter[a]) == 0 {
			t.Errorf("%s wrote no RED series: the streams did not spread over the aggregators", a)
		}
	}
	var merged float64
	for _, st := range stats {
		merged += st.merged
	}
	redByAgg := map[string]int{}
	for w, m := range snap.byWriter {
		redByAgg[w] = len(m)
	}
	t.Logf("%v spans (%v errors) sent; %d streams, calls series by aggregator %v, %d RED series in all (by aggregator %v, requests %v); calls %v, errors %v, duration count %v, each stream exact: %v; %v delta points merged; %d stale markers",
		wantTotal, wantErrs, len(want), perAgg, len(snap.writersOf()), redByAgg, snap.writes, total, errs, durCount, len(diffStreams(calls, want)) == 0, merged, snap.stale)
	t.Logf("%s labels: %v", redCallsSeries, snap.callsLabels())
	if t.Failed() {
		t.Log(dump())
	}
	t.Logf("test took %.1fs", time.Since(began).Seconds())
}
