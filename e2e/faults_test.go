package e2e_test

import (
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
)

// The fault matrix. Every test runs the shipped agent config
// (testdata/deploy/agent.yaml: otlp → memory_limiter → fanout by trace ID
// with breakers and a persistent, batching sending queue) in front of three
// backend processes (agentTiers), sends it the test client's load and
// accounts for every span by span ID at the counting servers behind the
// backends. Pass criteria, for every fault:
//
//   - no accepted span lost (accepted: the client's last attempt was
//     answered OK);
//   - duplicates at most 0.5% of the distinct spans delivered;
//   - where the fault opens a breaker (a backend killed, frozen or
//     blackholed), it is open within 1s of the fault, as the agent's
//     breaker endpoint shows it for the backend's endpoint as resolved
//     from its SRV record.

const (
	// breakerOpenBudget is how soon after a fault the agent's breaker for
	// the faulty backend must be open.
	breakerOpenBudget = time.Second
	// maxDupRatio is the duplicate budget, of the distinct spans delivered.
	maxDupRatio = 0.005
	// agentDrainTimeout is agent.yaml's drain_timeout.
	agentDrainTimeout = 25 * time.Second
)

// faultLoad is the client's load in the fault tests: 50,000 spans (10,000
// traces of 5) in 1,000 batches of 50 spans, one batch every 16ms from 4
// workers, so about 16s; retryable refusals are retried 10 times, 200ms
// apart.
func faultLoad(run uint64) load {
	return load{run: run, traces: 10000, spansPerTrace: 5, tracesPerBatch: 10, workers: 4,
		interval: 16 * time.Millisecond, maxAttempts: 10, backoff: 200 * time.Millisecond, callTimeout: 20 * time.Second}
}

// waitSpans waits until a counting server holds at least n spans, so a
// fault hits a backend that data was flowing to.
func waitSpans(t *testing.T, s *countingServer, n int, timeout time.Duration) {
	t.Helper()
	if !pollFor(timeout, func() bool { return s.spanCount() >= n }) {
		t.Fatalf("%s holds %d spans after %s, want %d before the fault", s.name, s.spanCount(), timeout, n)
	}
}

// tracesQueue is the agent's traces queue size in spans: accepted, not yet
// delivered (on disk, in the batcher or being sent).
func tracesQueue(a *agent) (float64, bool) {
	return a.metric("otelcol_exporter_queue_size", `exporter="fanout/traces"`)
}

// waitSettled waits (bounded) until every accepted span reached a counting
// server and the agent's queue is empty, and returns how long that took.
func waitSettled(at *agentTiers, res loadResult, timeout time.Duration) time.Duration {
	start := time.Now()
	waitDelivered(res, timeout, at.sinks...)
	pollFor(timeout-time.Since(start), func() bool { q, ok := tracesQueue(at.agent); return ok && q == 0 })
	return time.Since(start)
}

// checkAccounting is checkDelivered with the fault tests' duplicate bound,
// and where any duplicates are (dupBreakdown).
func checkAccounting(t *testing.T, res loadResult, sinks ...*countingServer) delivery {
	t.Helper()
	d := checkDelivered(t, res, maxDupRatio, sinks...)
	if d.Duplicates() > 0 {
		t.Logf("duplicates: %s", dupBreakdown(res.l, sinks))
	}
	return d
}

// spanSet is a copy of the span IDs a counting server holds.
func spanSet(s *countingServer) map[pcommon.SpanID]bool {
	spans := s.Spans()
	out := make(map[pcommon.SpanID]bool, len(spans))
	for id := range spans {
		out[id] = true
	}
	return out
}

// dupBreakdown says where the duplicated spans are: how many at each set
// of counting servers, and the range of their span indexes (the load sends
// about 3,100 spans/s, so the range dates the call they came in).
func dupBreakdown(l load, sinks []*countingServer) string {
	type where struct {
		n      int
		lo, hi int
	}
	by := map[string]*where{}
	held := make([]map[pcommon.SpanID]int, len(sinks))
	for i, s := range sinks {
		held[i] = s.Spans()
	}
	for g := range l.spans() {
		id := l.spanID(g)
		var at []string
		total := 0
		for i, s := range sinks {
			if c := held[i][id]; c > 0 {
				at = append(at, fmt.Sprintf("%s×%d", s.name, c))
				total += c
			}
		}
		if total < 2 {
			continue
		}
		k := strings.Join(at, "+")
		w := by[k]
		if w == nil {
			w = &where{lo: g, hi: g}
			by[k] = w
		}
		w.n++
		w.lo, w.hi = min(w.lo, g), max(w.hi, g)
	}
	var parts []string
	for k, w := range by {
		parts = append(parts, fmt.Sprintf("%d spans at %s (span indexes %d..%d)", w.n, k, w.lo, w.hi))
	}
	return strings.Join(parts, "; ")
}

// logAgentFigures logs the agent's own accounting (since its last start).
func logAgentFigures(t *testing.T, a *agent) {
	t.Helper()
	var b strings.Builder
	for _, m := range []string{
		"otelcol_receiver_accepted_spans", "otelcol_receiver_refused_spans",
		"otelcol_fanout_items_sent", "otelcol_fanout_items_failed", "otelcol_fanout_items_rerouted",
		"otelcol_fanout_items_refused", "otelcol_fanout_items_dropped",
	} {
		v, _ := a.metric(m)
		fmt.Fprintf(&b, " %s=%v", strings.TrimPrefix(m, "otelcol_"), v)
	}
	t.Logf("agent:%s", b.String())
}

// breakerClosed checks that the agent's breaker for backend i is closed
// before a fault, so that the time it takes to open measures the fault.
func breakerClosed(t *testing.T, at *agentTiers, i int) {
	t.Helper()
	waitBreaker(t, at.agent.breakers, at.key(i), 10*time.Second, "closed")
}

// breakerOpens waits for the agent's breaker of backend i to open and
// checks that it did within breakerOpenBudget of faultAt.
func breakerOpens(t *testing.T, at *agentTiers, i int, faultAt time.Time) time.Duration {
	t.Helper()
	waitBreaker(t, at.agent.breakers, at.key(i), 10*time.Second, "open")
	took := time.Since(faultAt)
	s, _ := breaker(at.agent.breakers, at.key(i))
	t.Logf("breaker %s (backend-%d) open %v after the fault (trips %d, last reason %q)",
		at.key(i), i, took.Round(time.Millisecond), s.Trips, s.LastReason)
	if took > breakerOpenBudget {
		t.Errorf("breaker %s (backend-%d) opened %v after the fault, want within %v", at.key(i), i, took.Round(time.Millisecond), breakerOpenBudget)
	}
	return took
}

// breakerCloses waits for the agent's breaker of backend i to close after
// the fault ended at healAt.
func breakerCloses(t *testing.T, at *agentTiers, i int, healAt time.Time) {
	t.Helper()
	waitBreaker(t, at.agent.breakers, at.key(i), 30*time.Second, "closed")
	t.Logf("breaker %s (backend-%d) closed %v after the fault ended", at.key(i), i, time.Since(healAt).Round(time.Millisecond))
}

// backendFault is one fault of one backend, held for a while, then healed.
type backendFault struct {
	run     uint64
	victim  int
	proxied bool // reach the victim through a proxy (to blackhole its path)
	what    string
	hold    time.Duration
	inject  func(at *agentTiers, i int)
	heal    func(at *agentTiers, i int)
}

// testBackendFault sends the fault load through the agent, injects the
// fault once the victim holds 2,000 spans, holds it, heals it, lets the load
// finish and the agent's queue drain, and checks the criteria; the victim
// must get data again once its breaker closed.
func testBackendFault(t *testing.T, f backendFault) {
	var proxied []int
	if f.proxied {
		proxied = []int{f.victim}
	}
	at := startAgentTiers(t, proxied...)
	victim := at.sinks[f.victim]
	run := sendLoad(t, at.agent.otlpEndpoint(), faultLoad(f.run))

	waitSpans(t, victim, 2000, 15*time.Second)
	breakerClosed(t, at, f.victim)
	at.agent.mark("fault: " + f.what)
	atFault := spanSet(victim)
	faultAt := time.Now()
	f.inject(at, f.victim)
	breakerOpens(t, at, f.victim, faultAt)

	// How long the fault lasts is the scenario (f.hold), not a wait for
	// an event: the wait for the breaker to open is above.
	time.Sleep(time.Until(faultAt.Add(f.hold)))
	if s, ok := breaker(at.agent.breakers, at.key(f.victim)); ok {
		t.Logf("after %v of %s: breaker %s, %d trips, last reason %q", f.hold, f.what, s.State, s.Trips, s.LastReason)
	}
	at.agent.mark("fault ends: " + f.what)
	atHeal := spanSet(victim)
	healAt := time.Now()
	f.heal(at, f.victim)
	breakerCloses(t, at, f.victim, healAt)
	closedAt := victim.spanCount()

	res := run.wait(2 * time.Minute)
	settled := waitSettled(at, res, time.Minute)
	t.Logf("load finished; every accepted span delivered and the agent's queue empty %v later", settled.Round(time.Millisecond))
	if after := victim.spanCount(); after <= closedAt {
		t.Errorf("backend-%d got no spans after its breaker closed (%d before, %d after)", f.victim, closedAt, after)
	}
	if d := checkAccounting(t, res, at.sinks...); d.Duplicates() > 0 {
		// When did the victim get its copy of a duplicated span?
		var before, during, after int
		atVictim := victim.Spans()
		for id, n := range d.Spans {
			if n < 2 || atVictim[id] == 0 {
				continue
			}
			switch {
			case atFault[id]:
				before++
			case atHeal[id]:
				during++
			default:
				after++
			}
		}
		t.Logf("duplicated spans backend-%d holds: %d reached it before the fault, %d during it, %d after it ended", f.victim, before, during, after)
	}
	failed := at.agent.metricSum("otelcol_fanout_items_failed", `backend="`+at.key(f.victim)+`"`)
	t.Logf("agent: %v items failed on backend-%d (%s)", failed, f.victim, at.key(f.victim))
	logAgentFigures(t, at.agent)
	at.stopAll()
}

// TestE2EFaultBackendKilled SIGKILLs one backend process while data flows
// and starts it again on its port 2s later.
func TestE2EFaultBackendKilled(t *testing.T) {
	testBackendFault(t, backendFault{
		run: 11, victim: 1, what: "SIGKILL backend-1", hold: 2 * time.Second,
		inject: func(at *agentTiers, i int) { at.backends[i].kill() },
		heal:   func(at *agentTiers, i int) { at.restartBackends(i) },
	})
}

// TestE2EFaultBackendFrozen freezes one backend process with SIGSTOP for
// 6s (its socket still accepts connections and requests, nothing answers),
// then thaws it with SIGCONT: it then works through the requests the agent
// gave up on, which is where duplicates can come from.
func TestE2EFaultBackendFrozen(t *testing.T) {
	testBackendFault(t, backendFault{
		run: 12, victim: 2, what: "SIGSTOP backend-2", hold: 6 * time.Second,
		inject: func(at *agentTiers, i int) { at.backends[i].signal(syscall.SIGSTOP) },
		heal:   func(at *agentTiers, i int) { at.backends[i].signal(syscall.SIGCONT) },
	})
}

// TestE2EFaultBackendBlackholed blackholes the network path to one backend
// for 6s: the proxy between the agent and it forwards nothing and answers
// nothing, new connections included (no RST, unlike a dead process), then
// forwards again.
//
// The calls the agent sends into the blackhole before stall detection opens
// the breaker time out after 5s and are re-routed; when the path heals the
// backend may still read and deliver some of them (each request reaches it
// before the RST_STREAM that cancels it, and the grpc-timeout it carries
// starts again): the one way the fanout delivers twice, bounded by how fast
// the breaker opens (slow_call_duration 250ms in the shipped agent).
func TestE2EFaultBackendBlackholed(t *testing.T) {
	testBackendFault(t, backendFault{
		run: 13, victim: 0, proxied: true, what: "blackhole the path to backend-0", hold: 6 * time.Second,
		inject: func(at *agentTiers, i int) { at.proxies[i].blackhole() },
		heal:   func(at *agentTiers, i int) { at.proxies[i].resume() },
	})
}

// testAllBackendsDown SIGKILLs every backend while data flows and starts
// them again after down: the agent keeps accepting (its queue holds what
// no backend can take), opens every breaker, and delivers everything once
// they are back.
func testAllBackendsDown(t *testing.T, run uint64, down time.Duration) {
	at := startAgentTiers(t)
	r := sendLoad(t, at.agent.otlpEndpoint(), faultLoad(run))
	for i, s := range at.sinks {
		waitSpans(t, s, 500, 15*time.Second)
		breakerClosed(t, at, i)
	}
	at.agent.mark(fmt.Sprintf("fault: SIGKILL every backend for %v", down))
	faultAt := time.Now()
	for _, b := range at.backends {
		b.kill()
	}
	for i := range at.backends {
		breakerOpens(t, at, i, faultAt)
	}

	// The outage's length is the scenario (down), not a wait for an event.
	time.Sleep(time.Until(faultAt.Add(down)))
	q, _ := tracesQueue(at.agent)
	t.Logf("after %v with every backend down: %v spans in the agent's queue, %d delivered so far", down, q, at.spans())
	at.agent.mark("fault ends: restart every backend")
	healAt := time.Now()
	downAt := at.spans()
	at.restartBackends(0, 1, 2)
	// The breakers close on the first calls that succeed, but only while
	// data flows: a load that ended leaves them half-open. What matters is
	// that delivery resumes and the backlog drains.
	resumed := waitResumed(t, at, downAt, time.Minute)
	t.Logf("delivery resumed %v after the backends were restarted (%v after they were healthy)",
		time.Since(healAt).Round(time.Millisecond), resumed.Round(time.Millisecond))

	res := r.wait(2 * time.Minute)
	settled := waitSettled(at, res, time.Minute)
	t.Logf("load finished; every accepted span delivered and the agent's queue empty %v later, %v after the restart",
		settled.Round(time.Millisecond), time.Since(healAt).Round(time.Millisecond))
	for i := range at.backends {
		if s, ok := breaker(at.agent.breakers, at.key(i)); ok {
			t.Logf("breaker %s (backend-%d) now %s, %d trips, last reason %q", at.key(i), i, s.State, s.Trips, s.LastReason)
		}
	}
	// The queue (200,000 spans) has room for the whole load: the agent
	// must not have refused anything.
	if _, refused, _ := res.counts(); refused > 0 {
		t.Errorf("the agent refused %d batches while its queue had room; %s", refused, res)
	}
	checkAccounting(t, res, at.sinks...)
	logAgentFigures(t, at.agent)
	at.stopAll()
}

// waitResumed waits until the counting servers hold more than before
// spans, and returns how long that took.
func waitResumed(t *testing.T, at *agentTiers, before int, timeout time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	if !pollFor(timeout, func() bool { return at.spans() > before }) {
		t.Fatalf("no span delivered %v after the backends came back (%d before)", timeout, before)
	}
	return time.Since(start)
}

// TestE2EFaultAllBackendsDown2s kills every backend for 2s.
func TestE2EFaultAllBackendsDown2s(t *testing.T) { testAllBackendsDown(t, 14, 2*time.Second) }

// TestE2EFaultAllBackendsDown10s kills every backend for 10s.
func TestE2EFaultAllBackendsDown10s(t *testing.T) { testAllBackendsDown(t, 15, 10*time.Second) }

// outputAfter is what a collector wrote after the last test mark naming
// event, at most maxLines lines, for the test log.
func outputAfter(c *collector, event string, maxLines int) string {
	out := c.output()
	if i := strings.LastIndex(out, ": "+event+"\n"); i >= 0 {
		out = out[i:]
	}
	lines := strings.Split(out, "\n")
	if len(lines) > maxLines {
		lines = append(lines[:maxLines], fmt.Sprintf("... %d more lines", len(lines)-maxLines))
	}
	return strings.Join(lines, "\n")
}

// TestE2EFaultAgentDrainsOnSIGTERM makes every backend slow (3s per call:
// their counting servers answer late, and the backends, exporting without
// a queue, pass the delay on; the breakers see every call as stalled and
// open), sends the agent more than it can deliver, and SIGTERMs it while it
// holds a backlog. It must exit 0 within its drain_timeout, with the
// batches it was sending delivered despite the open breakers (the drain
// sends to the owners anyway) and nothing given up. The shipped agent's
// queue is persistent, and exporterhelper's persistent queue hands out
// nothing more once shutdown begins: the rest of the backlog stays on disk,
// and a restart on the same queue directory delivers it. Every accepted
// span must arrive, once.
func TestE2EFaultAgentDrainsOnSIGTERM(t *testing.T) {
	at := startAgentTiers(t)
	for _, s := range at.sinks {
		s.SetDelay(3 * time.Second)
	}
	// 20,000 spans over about 3.2s: about 6,000 spans/s, more than twice
	// what the agent's 4 senders deliver at 3s a call.
	l := load{run: 16, traces: 4000, spansPerTrace: 5, tracesPerBatch: 10, workers: 4,
		interval: 8 * time.Millisecond, maxAttempts: 10, backoff: 200 * time.Millisecond, callTimeout: 20 * time.Second}
	res := sendLoad(t, at.agent.otlpEndpoint(), l).wait(time.Minute)
	q, _ := tracesQueue(at.agent)
	t.Logf("backlog at SIGTERM: %v spans in the agent's queue, %d delivered so far; client %s", q, at.spans(), res)
	if q == 0 {
		t.Fatalf("the agent holds no backlog: the test does not test the drain")
	}

	termAt := time.Now()
	err := at.agent.terminate(agentDrainTimeout + 30*time.Second)
	drain := time.Since(termAt)
	delivered := at.spans()
	t.Logf("agent exited with status %d, %v after SIGTERM (drain_timeout %v); %d spans delivered, the rest on disk",
		exitCode(err), drain.Round(time.Millisecond), agentDrainTimeout, delivered)
	if err != nil {
		t.Errorf("agent exited with %v after SIGTERM, want status 0", err)
	}
	if drain > agentDrainTimeout+5*time.Second {
		t.Errorf("agent took %v to exit after SIGTERM, want within drain_timeout (%v) and a few seconds", drain, agentDrainTimeout)
	}
	after := outputAfter(at.agent.collector, "SIGTERM", 40)
	if strings.Contains(after, "drain_timeout ran out") || strings.Contains(after, "\terror\t") {
		t.Errorf("the drain gave data up or logged an error:\n%s", after)
	}

	// Fast backends now; the restarted agent finds the backlog on disk.
	for _, s := range at.sinks {
		s.SetDelay(0)
	}
	at.agent.start()
	at.agent.waitHealthy(30 * time.Second)
	restored, _ := tracesQueue(at.agent)
	settled := waitSettled(at, res, time.Minute)
	t.Logf("restarted on the same queue directory: %v spans in its queue once healthy; every accepted span delivered %v later",
		restored, settled.Round(time.Millisecond))
	checkAccounting(t, res, at.sinks...)
	at.stopAll()
}

// TestE2EFaultAgentKilledWithBacklog SIGKILLs the agent while every backend
// is down and its persistent queue holds a backlog, starts it again on the
// same queue directory, then brings the backends back: every span it
// accepted must arrive.
func TestE2EFaultAgentKilledWithBacklog(t *testing.T) {
	at := startAgentTiers(t)
	// 20,000 spans over about 6.4s.
	l := load{run: 17, traces: 4000, spansPerTrace: 5, tracesPerBatch: 10, workers: 4,
		interval: 16 * time.Millisecond, maxAttempts: 10, backoff: 200 * time.Millisecond, callTimeout: 20 * time.Second}
	r := sendLoad(t, at.agent.otlpEndpoint(), l)
	if !pollFor(15*time.Second, func() bool { return at.spans() >= 2000 }) {
		t.Fatalf("the backends hold %d spans after 15s, want 2,000 before the fault", at.spans())
	}
	at.agent.mark("fault: SIGKILL every backend")
	for _, b := range at.backends {
		b.kill()
	}
	res := r.wait(time.Minute)
	q, _ := tracesQueue(at.agent)
	before := at.spans()
	t.Logf("backends down: %v spans in the agent's queue, %d delivered before; client %s", q, before, res)
	if q == 0 {
		t.Fatalf("the agent holds no backlog: the test does not test the persistent queue")
	}
	logAgentFigures(t, at.agent)

	at.agent.kill()
	at.agent.start()
	at.agent.waitHealthy(30 * time.Second)
	restored, _ := tracesQueue(at.agent)
	t.Logf("agent SIGKILLed and restarted on the same queue directory: %v spans in its queue (%v before the kill)", restored, q)

	at.agent.mark("restart every backend")
	at.restartBackends(0, 1, 2)
	settled := waitSettled(at, res, time.Minute)
	t.Logf("every accepted span delivered and the agent's queue empty %v after the backends restarted", settled.Round(time.Millisecond))
	checkAccounting(t, res, at.sinks...)
	logAgentFigures(t, at.agent)
	at.stopAll()
}
