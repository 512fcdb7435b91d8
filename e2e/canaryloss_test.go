package e2e_test

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/otelcsp/otelcsp/internal/otlptest"
)

// Where a canary's loss is real. In the shipped tiers none can be made by
// killing a process: the agent's canary waits in its persistent queue until
// a gateway acknowledges it, a gateway acknowledges it only once its canary
// processor counted it (TestE2ECanary), and the shipped agent config has no
// OTELCSP_* setting that takes its queue away. So the kill goes where a
// pipeline does lose data: a tier that acknowledges what it only holds in
// memory, as a gateway's trace exporter does (an in-memory sending queue),
// with the canary counted behind it:
//
//	agent (testdata/deploy/agent.yaml as shipped: synthetic canary 1/s, persistent queue, fanout by generator)
//	  ─▶ 3 relays (otlp → otlp_grpc with an in-memory sending queue), found by SRV
//	       each through its own TCP proxy
//	  ─▶ the canary tier (otlp → canary, drop: false → otlp_grpc without a queue)
//	  ─▶ canarySink in the test: every canary trace by generator and sequence number
//
// The relays and the canary tier are test configs; the canary tier passes
// what it counted on to the sink synchronously, so the sink sees exactly
// the numbers that reached the canary processor, counted by the test.

// canarySink is the test's store behind the canary tier: how many copies of
// each sequence number of each generator arrived.
type canarySink struct {
	*otlptest.Server

	mu   sync.Mutex
	seqs map[string]map[int64]int // synthetic.generator → synthetic.sequence → copies
}

func startCanarySink(t *testing.T) *canarySink {
	s := &canarySink{seqs: map[string]map[int64]int{}}
	s.Server = otlptest.Start(t, otlptest.Named("canary-sink"), otlptest.OnTraces(s.record))
	return s
}

// record counts the root spans that carry synthetic.sequence, under their
// resource's synthetic.generator.
func (s *canarySink) record(td ptrace.Traces) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, rs := range td.ResourceSpans().All() {
		gen, ok := rs.Resource().Attributes().Get("synthetic.generator")
		if !ok {
			continue
		}
		for _, ss := range rs.ScopeSpans().All() {
			for _, sp := range ss.Spans().All() {
				if v, ok := sp.Attributes().Get("synthetic.sequence"); ok && v.Type() == pcommon.ValueTypeInt {
					if s.seqs[gen.AsString()] == nil {
						s.seqs[gen.AsString()] = map[int64]int{}
					}
					s.seqs[gen.AsString()][v.Int()]++
				}
			}
		}
	}
}

// sequenceTally is what the sink holds of one generator's sequence.
type sequenceTally struct {
	first, last int64   // lowest and highest number that arrived
	received    int     // distinct numbers
	duplicates  int     // copies beyond the first
	missing     []int64 // numbers between first and last that never arrived
}

// tally is the sink's account of the only generator it has seen (the
// agent's canary; a second one fails the test).
func (s *canarySink) tally(t *testing.T) sequenceTally {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	var tl sequenceTally
	if len(s.seqs) == 0 {
		return tl
	}
	if len(s.seqs) > 1 {
		t.Fatalf("the canary sink saw %d generators, want the agent's one", len(s.seqs))
	}
	for _, seqs := range s.seqs {
		nums := slices.Sorted(func(yield func(int64) bool) {
			for n := range seqs {
				if !yield(n) {
					return
				}
			}
		})
		tl.first, tl.last, tl.received = nums[0], nums[len(nums)-1], len(nums)
		for n := tl.first; n <= tl.last; n++ {
			switch c := seqs[n]; {
			case c == 0:
				tl.missing = append(tl.missing, n)
			case c > 1:
				tl.duplicates += c - 1
			}
		}
	}
	return tl
}

// newRelay is an otlp receiver whose traces leave through an otlp_grpc
// exporter with an in-memory sending queue: it answers a batch once the
// batch is queued, and loses what its queue holds when it dies.
func newRelay(t *testing.T, name, downstream string) *tier {
	t.Helper()
	return newTier(t, name, fmt.Sprintf(`
exporters:
  otlp_grpc:
    endpoint: %s
    tls:
      insecure: true
    timeout: 5s
    sending_queue:
      num_consumers: 1
`, downstream), `
    traces:
      receivers: [otlp]
      exporters: [otlp_grpc]
`)
}

// canaryLossAfter is the canary tier's loss_after: short, so the test need
// not wait the shipped 30s for a gap to be declared lost.
const canaryLossAfter = 3 * time.Second

// newCanaryTier is the canary at the end of the relays: otlp → canary
// (drop: false) → otlp_grpc without a queue to the sink, so the tier
// acknowledges a batch only once the sink has it.
func newCanaryTier(t *testing.T, sink string) *tier {
	t.Helper()
	return newTier(t, "canary-tier", fmt.Sprintf(`
processors:
  canary:
    drop: false
    loss_after: %s
exporters:
  otlp_grpc:
    endpoint: %s
    tls:
      insecure: true
    sending_queue:
      enabled: false
`, canaryLossAfter, sink), `
    traces:
      receivers: [otlp]
      processors: [canary]
      exporters: [otlp_grpc]
`)
}

// canaryCounts are the canary tier's counters.
type canaryCounts struct {
	received, lost, late, duplicated, reordered float64
}

func readCanary(c *collector) canaryCounts {
	return canaryCounts{
		received:   c.metricSum("otelcol_canary_received"),
		lost:       c.metricSum("otelcol_canary_lost"),
		late:       c.metricSum("otelcol_canary_late"),
		duplicated: c.metricSum("otelcol_canary_duplicated"),
		reordered:  c.metricSum("otelcol_canary_reordered"),
	}
}

func (c canaryCounts) String() string {
	return fmt.Sprintf("received %v, lost %v, late %v, duplicated %v, reordered %v", c.received, c.lost, c.late, c.duplicated, c.reordered)
}

// TestE2ECanaryCountsLoss: the shipped agent's canary through three relays
// to the canary tier. With no fault the canary counts every number that
// arrived and none lost. Then the path from the relay that carries the
// canary to the canary tier is blackholed, the relay acknowledges (and
// holds) at least three more canaries, and is SIGKILLed: what it held is
// lost for good, while the agent re-routes the rest to another relay. The
// canary's otelcol_canary_lost (less _late, what arrived after being
// declared lost) then equals exactly the numbers the sink never got, and
// its duplicates the copies the sink got twice.
func TestE2ECanaryCountsLoss(t *testing.T) {
	sink := startCanarySink(t)
	canary := startWithFreshPorts(t, func() *tier { return newCanaryTier(t, sink.Addr()) })
	var relays []*tier
	var proxies []*proxy
	var endpoints []string
	for i := range 3 {
		p := startProxy(t, fmt.Sprintf("proxy-%d", i), canary.endpoint())
		r := startWithFreshPorts(t, func() *tier { return newRelay(t, fmt.Sprintf("relay-%d", i), p.addr()) })
		relays, proxies, endpoints = append(relays, r), append(proxies, p), append(endpoints, r.endpoint())
	}
	dns := startGatewayDNS(t, endpoints...)
	ag := startWithFreshPorts(t, func() *agent { return newAgent(t, dns, t.TempDir()) })
	dump := func() string {
		var sb strings.Builder
		for _, c := range []*collector{ag.collector, relays[0].collector, relays[1].collector, relays[2].collector, canary.collector} {
			fmt.Fprintf(&sb, "---- %s\n%s\n", c.name, lastLines(c.output(), 30))
		}
		return sb.String()
	}
	// relayed is the number of canaries (one span each) a relay accepted.
	relayed := func(r *tier) float64 { return r.metricSum("otelcol_receiver_accepted_spans", `receiver="otlp"`) }

	// Phase 1, no fault: 5 numbers through, none missing, none lost.
	if !pollFor(30*time.Second, func() bool { return sink.tally(t).received >= 5 }) {
		t.Fatalf("the canary sink got %d canaries in 30s, want 5\n%s", sink.tally(t).received, dump())
	}
	home := -1
	for i, r := range relays {
		if relayed(r) > 0 {
			if home >= 0 {
				t.Fatalf("relays %d and %d both carried canaries: routing by generator gives one the whole sequence", home, i)
			}
			home = i
		}
	}
	if home < 0 {
		t.Fatalf("the sink has canaries but no relay says it carried one\n%s", dump())
	}
	var c canaryCounts
	var tl sequenceTally
	// The canary tier counts a number before the sink has it: read the
	// sink last and wait until both agree (the next canary is a second away).
	if !pollFor(10*time.Second, func() bool {
		c, tl = readCanary(canary.collector), sink.tally(t)
		return c.received == float64(tl.received)
	}) {
		t.Fatalf("canary received %v, the sink %d distinct numbers", c.received, tl.received)
	}
	t.Logf("no fault, through relay-%d: sink has %d..%d (%d numbers, %d missing); canary %s", home, tl.first, tl.last, tl.received, len(tl.missing), c)
	if tl.first != 1 || len(tl.missing) != 0 || tl.duplicates != 0 || c.lost != 0 || c.duplicated != 0 {
		t.Fatalf("with no fault: sink %+v, canary %s; want 1.. with nothing missing, doubled or lost", tl, c)
	}

	// Phase 2: blackhole relay home's path to the canary tier; it keeps
	// acknowledging the agent's canaries into its queue. Once it holds 3,
	// SIGKILL it.
	held := relayed(relays[home])
	proxies[home].blackhole()
	ag.mark(fmt.Sprintf("blackhole relay-%d's path to the canary tier", home))
	if !pollFor(15*time.Second, func() bool { return relayed(relays[home]) >= held+3 }) {
		t.Fatalf("relay-%d accepted %v canaries in 15s after the blackhole, want 3 more than %v\n%s", home, relayed(relays[home]), held, dump())
	}
	relays[home].kill()
	ag.mark(fmt.Sprintf("SIGKILL relay-%d", home))
	atKill := sink.tally(t)

	// Phase 3: the agent's breaker opens and the canary goes through
	// another relay. Once 3 numbers arrived that way, stop the agent (it
	// drains its queue), so the sink's account is final.
	if !pollFor(30*time.Second, func() bool { return sink.tally(t).received >= atKill.received+3 }) {
		t.Fatalf("the sink got %d canaries in 30s after the kill, want 3 more than %d\n%s", sink.tally(t).received, atKill.received, dump())
	}
	for i, r := range relays {
		if i != home && relayed(r) > 0 {
			t.Logf("the canary moved to relay-%d", i)
		}
	}
	generated := ag.metricSum("otelcol_synthetic_traces_generated", `receiver="synthetic/canary"`)
	ag.stop()
	tl = sink.tally(t)
	if len(tl.missing) < 3 {
		t.Fatalf("the sink misses %v, want at least the 3 canaries relay-%d held when it died\n%s", tl.missing, home, dump())
	}
	// Every gap is older than loss_after within loss_after and a sweep
	// (loss_after/4) of the last arrival: wait for the canary to have
	// declared it, bounded.
	want := float64(len(tl.missing))
	if !pollFor(canaryLossAfter+15*time.Second, func() bool { c = readCanary(canary.collector); return c.lost-c.late >= want }) {
		t.Fatalf("canary %s after the agent stopped; the sink misses %d numbers %v", c, len(tl.missing), tl.missing)
	}
	t.Logf("after SIGKILL of relay-%d: agent generated %v; sink has %d..%d (%d numbers, %d copies more than once), misses %v; canary %s",
		home, generated, tl.first, tl.last, tl.received, tl.duplicates, tl.missing, c)
	if c.lost-c.late != want {
		t.Errorf("canary lost %v (late %v): %v never arrived; the sink misses exactly %v: %v", c.lost, c.late, c.lost-c.late, want, tl.missing)
	}
	if c.received != float64(tl.received) {
		t.Errorf("canary received %v, the sink got %d distinct numbers", c.received, tl.received)
	}
	if c.duplicated != float64(tl.duplicates) {
		t.Errorf("canary duplicated %v, the sink got %d copies more than once", c.duplicated, tl.duplicates)
	}
	if float64(tl.last) > generated+1 {
		t.Errorf("the sink has number %d, the agent generated %v", tl.last, generated)
	}
	canary.stop()
	for i, r := range relays {
		if i != home {
			r.stop()
		}
	}
}
