package e2e_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/otelcsp/otelcsp/internal/collectortest"
)

// The canary end to end: the agent's synthetic receiver in canary mode (one
// numbered trace a second, routed by generator) → fanout → three shipped
// gateways (testdata/deploy/gateway.yaml), whose canary processor counts
// the sequence and drops it.

// canaryFigures are the canary counters of the gateways, per gateway.
type canaryFigures struct {
	received, lost, late, duplicated, reordered, latencyCount []float64
}

func (st *gatewayStack) canary() canaryFigures {
	var f canaryFigures
	for _, g := range st.gateways {
		f.received = append(f.received, g.metricSum("otelcol_canary_received"))
		f.lost = append(f.lost, g.metricSum("otelcol_canary_lost"))
		f.late = append(f.late, g.metricSum("otelcol_canary_late"))
		f.duplicated = append(f.duplicated, g.metricSum("otelcol_canary_duplicated"))
		f.reordered = append(f.reordered, g.metricSum("otelcol_canary_reordered"))
		f.latencyCount = append(f.latencyCount, g.metricSum("otelcol_canary_latency_count"))
	}
	return f
}

func sum(v []float64) float64 {
	s := 0.0
	for _, x := range v {
		s += x
	}
	return s
}

// canaryGenerated is what the agent's canary receiver generated and what its
// pipeline refused (the receiver does not retry; a refused number is a gap).
func canaryGenerated(a *agent) (generated, refused float64) {
	return a.metricSum("otelcol_synthetic_traces_generated", `receiver="synthetic/canary"`),
		a.metricSum("otelcol_synthetic_traces_refused", `receiver="synthetic/canary"`)
}

// TestE2ECanary: with no fault the canary reports every number received,
// none lost, duplicated or reordered, all of it on one gateway (routing by
// generator); after that gateway is SIGKILLed, the canary moves to another
// one and nothing it gets from then on is counted lost, because nothing is:
// the agent's persistent queue re-routes what the dead gateway did not
// acknowledge, and a gateway acknowledges a canary only once its canary
// processor counted it. (Where the loss is real, TestE2ECanaryCountsLoss.)
func TestE2ECanary(t *testing.T) {
	st := startGateways(t, 3)
	st.agent = startWithFreshPorts(t, func() *agent { return newAgent(t, st.dns, t.TempDir()) })

	// Phase 1, no fault: 12 canaries, every one counted once.
	const before = 12
	if !pollFor(before*time.Second+15*time.Second, func() bool { g, _ := canaryGenerated(st.agent); return g >= before }) {
		t.Fatalf("the agent's canary generated too little\n%s", st.dump())
	}
	settle := func() (float64, float64, canaryFigures) {
		var g, r float64
		var f canaryFigures
		// Arrived = generated - refused, once the last one is through the
		// agent's queue (200ms flush) and the gateway.
		pollFor(10*time.Second, func() bool {
			g, r = canaryGenerated(st.agent)
			f = st.canary()
			return sum(f.received) >= g-r
		})
		return g, r, f
	}
	gen, refused, f := settle()
	t.Logf("no fault: agent generated %v canaries (%v refused); gateways received %v, lost %v, duplicated %v, reordered %v, late %v",
		gen, refused, f.received, f.lost, f.duplicated, f.reordered, f.late)
	home := -1
	for i, r := range f.received {
		if r > 0 {
			if home >= 0 {
				t.Errorf("gateways %d and %d both got canaries: routing by generator should give one the whole sequence", home, i)
			}
			home = i
		}
	}
	if home < 0 {
		t.Fatalf("no gateway received a canary\n%s", st.dump())
	}
	// Generation is read before the received counts: one more may be in flight.
	if got := sum(f.received); got < gen-refused || got > gen-refused+1 {
		t.Errorf("received %v canaries, the agent generated %v and refused %v", got, gen, refused)
	}
	if refused != 0 || sum(f.lost) != 0 || sum(f.duplicated) != 0 || sum(f.reordered) != 0 || sum(f.late) != 0 {
		t.Errorf("with no fault: refused %v, lost %v, duplicated %v, reordered %v, late %v; want all 0",
			refused, f.lost, f.duplicated, f.reordered, f.late)
	}
	if sum(f.latencyCount) != sum(f.received) {
		t.Errorf("latency histogram counts %v, received %v", f.latencyCount, f.received)
	}
	_, body := collectortest.HTTPGet(fmt.Sprintf("http://127.0.0.1:%d/metrics", st.gateways[home].metrics))
	var lines []string
	for _, l := range strings.Split(body, "\n") {
		if strings.HasPrefix(l, "otelcol_canary_") && !strings.Contains(l, "_bucket") {
			lines = append(lines, l)
		}
	}
	t.Logf("gateway-%d's canary series:\n%s", home, strings.Join(lines, "\n"))
	// The canaries reached neither RED metrics nor the trace stores.
	for i, s := range st.traces {
		if n := s.spanCount(); n != 0 {
			t.Errorf("trace store %d holds %d spans; the canary processor drops every canary", i, n)
		}
	}
	if calls, _, _ := st.stores.redSums(); calls != 0 {
		t.Errorf("RED metrics counted %v calls; the canary is dropped before redmetrics", calls)
	}

	// Phase 2: SIGKILL the gateway that has the canary. Its breaker opens,
	// the generator's key moves to another gateway, which starts following
	// the sequence where it gets it.
	// The dead gateway's count is the last one read: read it right before
	// the kill (a canary arriving in between, at 1/s, is the tolerance
	// below).
	atKill := st.gateways[home].metricSum("otelcol_canary_received")
	st.gateways[home].kill()
	killedAt := time.Now()
	const after = 12
	if !pollFor(after*time.Second+20*time.Second, func() bool {
		f = st.canary()
		return sum(f.received)-f.received[home] >= after
	}) {
		t.Fatalf("the surviving gateways got %v canaries in %v after the kill\n%s", f.received, time.Since(killedAt), st.dump())
	}
	// What the agent generated, read before it stops (its endpoint goes
	// with it); it may generate one more before the SIGTERM.
	gen, refused = canaryGenerated(st.agent)
	st.agent.stop() // drains its queue
	f = st.canary()
	f.received[home] = atKill
	t.Logf("after SIGKILL of gateway-%d: agent generated %v, refused %v; gateways received %v (gateway-%d's before the kill), lost %v, duplicated %v, reordered %v, late %v",
		home, gen, refused, f.received, home, f.lost, f.duplicated, f.reordered, f.late)
	if got, want := sum(f.received), gen-refused; got < want-1 || got > want+2 {
		t.Errorf("received %v in all, the agent generated %v and refused %v (tolerance: one arriving between the last read and the kill, one generated after the last read)",
			got, gen, refused)
	}
	newHome := 0
	for i, r := range f.received {
		if i != home && r > 0 {
			newHome++
		}
	}
	if newHome != 1 {
		t.Errorf("%d surviving gateways got canaries, want 1", newHome)
	}
	if sum(f.lost) != 0 || refused != 0 {
		t.Errorf("lost %v, refused %v: the persistent queue re-routes, nothing is lost", f.lost, refused)
	}
	for i, g := range st.gateways {
		if i != home {
			g.stop()
		}
	}
}
