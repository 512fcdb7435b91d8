package e2e_test

import (
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
)

// faultLoad is a long load (up to 50,000 spans over about 16 s, in 1,000 batches) that fault
// tests stop once they have seen what they wait for.
//
// Batches are small (10 traces, 50 spans): a batch the front refuses after
// delivering part of it comes back whole from the client's retry, and each
// such batch must stay well within the 0.5% duplicate budget.
func faultLoad(run uint64) load {
	return load{run: run, traces: 10000, spansPerTrace: 5, tracesPerBatch: 10, workers: 4,
		interval: 16 * time.Millisecond, maxAttempts: 10, backoff: 200 * time.Millisecond, callTimeout: 20 * time.Second}
}

// waitSpans waits until a counting server holds at least n spans, so a
// fault hits a backend that data was flowing to.
func waitSpans(t *testing.T, s *countingServer, n int, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for s.spanCount() < n {
		if time.Now().After(deadline) {
			t.Fatalf("%s holds %d spans after %s, want %d before the fault", s.name, s.spanCount(), timeout, n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// checkStateMetric checks the front's otelcol_breaker_state gauge for a
// key against the states the /breakers endpoint just showed (0 closed,
// 1 half-open, 2 open).
func checkStateMetric(t *testing.T, f *front, key string, lo, hi float64) {
	t.Helper()
	v, ok := f.metric("otelcol_breaker_state", `key="`+key+`"`)
	if !ok || v < lo || v > hi {
		t.Errorf("otelcol_breaker_state{key=%q} = %v (present %v), want in [%v, %v]", key, v, ok, lo, hi)
	}
}

// checkDupCause checks that every duplicate is explained by a call the
// front gave up on (timed out or failed, then re-routed or retried) after
// the backend had in fact delivered it: duplicates never exceed the items
// the front counted as failed.
func checkDupCause(t *testing.T, f *front, d delivery) {
	t.Helper()
	failed := f.metricSum("otelcol_fanout_items_failed")
	if float64(d.duplicates()) > failed {
		t.Errorf("%d duplicates, more than the %v items the front counted as failed", d.duplicates(), failed)
	}
}

// breakerOpenBudget is how soon after a fault the front's breaker for the
// faulty backend must be open.
const breakerOpenBudget = 2 * time.Second

// TestE2EBackendKilled SIGKILLs one backend process while data flows,
// restarts it two seconds later on the same port, and checks that the
// front cut it off within 2 s, took it back after recovery, and that no
// span the client was told was accepted got lost.
func TestE2EBackendKilled(t *testing.T) {
	tt := startTwoTiers(t, 3)
	victim := tt.backends[1]
	run := sendLoad(t, tt.front.otlpEndpoint(), faultLoad(2))

	waitSpans(t, victim.sink, 2000, 10*time.Second)
	victim.kill()
	killed := time.Now()
	opened := waitBreaker(t, tt.front.breakers, victim.endpoint(), 10*time.Second, "open")
	t.Logf("breaker for %s open %v after SIGKILL", victim.name, opened.Round(time.Millisecond))
	if opened > breakerOpenBudget {
		t.Errorf("breaker for the killed backend opened %v after the fault, want within %v", opened, breakerOpenBudget)
	}

	checkStateMetric(t, tt.front, victim.endpoint(), 1, 2) // open, or half-open probing

	time.Sleep(time.Until(killed.Add(2 * time.Second)))
	victim.start()
	victim.waitHealthy(30 * time.Second)
	closed := waitBreaker(t, tt.front.breakers, victim.endpoint(), 20*time.Second, "closed")
	t.Logf("breaker for %s closed %v after the restart", victim.name, closed.Round(time.Millisecond))
	checkStateMetric(t, tt.front, victim.endpoint(), 0, 0)
	downAt := victim.sink.spanCount()
	time.Sleep(time.Second) // traffic flows to the recovered backend again
	res := run.stop()
	if after := victim.sink.spanCount(); after <= downAt {
		t.Errorf("%s got no spans after its breaker closed (%d before, %d after)", victim.name, downAt, after)
	}

	waitDelivered(res, 10*time.Second, tt.sinks...)
	checkDupCause(t, tt.front, checkDelivered(t, res, 0.005, tt.sinks...))
	// Failover: the other backends took the faulty one's keys, so the
	// client was never refused.
	if a, rf, _ := res.counts(); a < 100 || rf > 0 {
		t.Errorf("%d batches accepted, %d refused: the front should have kept taking everything around the dead backend; %s", a, rf, res)
	}
	if got := tt.front.metricSum("otelcol_breaker_transitions", `to="open"`); got < 1 {
		t.Errorf("otelcol_breaker_transitions{to=\"open\"} = %v, want at least 1", got)
	}
	tt.stopAll()
}

// TestE2EBackendStalled makes one backend accept calls and never answer
// for three seconds, then releases it: the front must cut it off within
// 2 s (stall detection), keep delivering everything through the others,
// and take it back once it answers again.
func TestE2EBackendStalled(t *testing.T) {
	tt := startTwoTiers(t, 2) // backend 2 is a counting server the test can stall
	staller := tt.sinks[2]
	run := sendLoad(t, tt.front.otlpEndpoint(), faultLoad(3))

	waitSpans(t, staller, 2000, 10*time.Second)
	staller.setMode(modeStall)
	opened := waitBreaker(t, tt.front.breakers, staller.addr, 10*time.Second, "open")
	t.Logf("breaker for the stalled backend open %v after the stall began", opened.Round(time.Millisecond))
	if opened > breakerOpenBudget {
		t.Errorf("breaker for the stalled backend opened %v after the stall, want within %v", opened, breakerOpenBudget)
	}
	checkStateMetric(t, tt.front, staller.addr, 1, 2)

	time.Sleep(3 * time.Second)
	if s, ok := breaker(tt.front.breakers, staller.addr); ok {
		t.Logf("before release: breaker %s, %d trips, last reason %s", s.State, s.Trips, s.LastReason)
	}
	staller.setMode(modeOK)
	closed := waitBreaker(t, tt.front.breakers, staller.addr, 20*time.Second, "closed")
	t.Logf("breaker for the stalled backend closed %v after release", closed.Round(time.Millisecond))
	checkStateMetric(t, tt.front, staller.addr, 0, 0)
	downAt := staller.spanCount()
	time.Sleep(time.Second)
	res := run.stop()
	if after := staller.spanCount(); after <= downAt {
		t.Errorf("the released backend got no spans after its breaker closed (%d before, %d after)", downAt, after)
	}

	waitDelivered(res, 10*time.Second, tt.sinks...)
	checkDupCause(t, tt.front, checkDelivered(t, res, 0.005, tt.sinks...))
	// Failover: the other backends took the faulty one's keys, so the
	// client was never refused.
	if a, rf, _ := res.counts(); a < 100 || rf > 0 {
		t.Errorf("%d batches accepted, %d refused: the front should have kept taking everything around the stalled backend; %s", a, rf, res)
	}
	if got := tt.front.metricSum("otelcol_breaker_transitions", `to="open"`); got < 1 {
		t.Errorf("otelcol_breaker_transitions{to=\"open\"} = %v, want at least 1", got)
	}
	tt.stopAll()
}

// TestE2EBackendProcessFrozen freezes a backend otelcsp process with
// SIGSTOP for three seconds while data flows (its socket still accepts
// connections and requests, nothing answers), then thaws it with SIGCONT.
// Unlike the stalled counting server, the thawed backend then works
// through the requests the front gave up on (and re-routed): that is where
// duplicates come from; they must stay within 0.5% of the run, and within
// what the front counted as failed on that backend.
func TestE2EBackendProcessFrozen(t *testing.T) {
	tt := startTwoTiers(t, 3)
	victim := tt.backends[2]
	run := sendLoad(t, tt.front.otlpEndpoint(), faultLoad(8))

	waitSpans(t, victim.sink, 2000, 10*time.Second)
	victim.signal(syscall.SIGSTOP)
	opened := waitBreaker(t, tt.front.breakers, victim.endpoint(), 10*time.Second, "open")
	t.Logf("breaker for the frozen %s open %v after SIGSTOP", victim.name, opened.Round(time.Millisecond))
	if opened > breakerOpenBudget {
		t.Errorf("breaker for the frozen backend opened %v after SIGSTOP, want within %v", opened, breakerOpenBudget)
	}

	time.Sleep(3 * time.Second)
	if s, ok := breaker(tt.front.breakers, victim.endpoint()); ok {
		t.Logf("before SIGCONT: breaker %s, %d trips, last reason %s", s.State, s.Trips, s.LastReason)
	}
	victim.signal(syscall.SIGCONT)
	closed := waitBreaker(t, tt.front.breakers, victim.endpoint(), 20*time.Second, "closed")
	t.Logf("breaker for %s closed %v after SIGCONT", victim.name, closed.Round(time.Millisecond))
	downAt := victim.sink.spanCount()
	// The whole load is sent (50,000 spans over about 16 s): the 0.5%
	// duplicate budget is over a run, and one freeze duplicates about a
	// hundred spans whatever the run's length.
	res := run.wait(time.Minute)
	if after := victim.sink.spanCount(); after <= downAt {
		t.Errorf("%s got no spans after its breaker closed (%d before, %d after)", victim.name, downAt, after)
	}

	waitDelivered(res, 10*time.Second, tt.sinks...)
	time.Sleep(500 * time.Millisecond) // late duplicates from the thawed backend
	d := checkDelivered(t, res, 0.005, tt.sinks...)
	// Duplicates can only be spans the front gave up on at the frozen
	// backend (and re-routed) that the backend still delivered once
	// thawed: never more than the front counted as failed there.
	failed := tt.front.metricSum("otelcol_fanout_items_failed", `backend="`+victim.endpoint()+`"`)
	t.Logf("front: %v items failed on %s; %d duplicates", failed, victim.name, d.duplicates())
	if float64(d.duplicates()) > failed {
		t.Errorf("%d duplicates, more than the %v items that failed on the frozen backend", d.duplicates(), failed)
	}
	if a, rf, _ := res.counts(); a < 100 || rf > 0 {
		t.Errorf("%d batches accepted, %d refused: the front should have kept taking everything around the frozen backend; %s", a, rf, res)
	}
	tt.stopAll()
}

// TestE2EFrontDrainsOnSIGTERM stops the front with SIGTERM while batches
// are in flight (its backends take 200ms per call): it must exit 0, the
// calls in flight must be answered, and everything it accepted must have
// been delivered.
func TestE2EFrontDrainsOnSIGTERM(t *testing.T) {
	tt := startTwoTiers(t, 0)
	for _, s := range tt.sinks {
		s.delay.Store(int64(200 * time.Millisecond))
	}
	l := faultLoad(4)
	l.maxAttempts = 3
	run := sendLoad(t, tt.front.otlpEndpoint(), l)

	time.Sleep(2 * time.Second)
	termAt := time.Now()
	if err := tt.front.terminate(30 * time.Second); err != nil {
		t.Fatalf("front exited with %v after SIGTERM, want status 0\n%s", err, tt.front.output())
	}
	t.Logf("front exited 0, %v after SIGTERM", time.Since(termAt).Round(time.Millisecond))
	res := run.stop()

	// Calls in flight at SIGTERM were answered OK, not cut off.
	drained := 0
	for _, o := range res.outcomes {
		if o.accepted && o.start.Before(termAt) && o.end.After(termAt) {
			drained++
		}
	}
	t.Logf("%d batches in flight at SIGTERM were answered OK", drained)
	if drained == 0 {
		t.Errorf("no batch in flight at SIGTERM was answered OK: the front did not drain; %s", res)
	}
	for _, o := range res.outcomes {
		if o.sent && !o.accepted && !retryable(o.code) {
			t.Errorf("a batch was refused with %v, want a retryable code", o.code)
			break
		}
	}
	checkDelivered(t, res, 0.005, tt.sinks...)
}

// TestE2EAllBackendsDown stops every backend: the client must be refused
// with retryable gRPC errors (never a silent OK), and once the backends
// are back it must get through again.
func TestE2EAllBackendsDown(t *testing.T) {
	tt := startTopology(t, 0, 2*time.Second)
	l := load{run: 5, traces: 600, spansPerTrace: 5, tracesPerBatch: 50, workers: 2,
		interval: 10 * time.Millisecond, maxAttempts: 1, callTimeout: 10 * time.Second}

	ok := sendLoad(t, tt.front.otlpEndpoint(), l).wait(time.Minute)
	if a, _, _ := ok.counts(); a != l.batches() {
		t.Fatalf("before the fault every batch must be accepted: %s", ok)
	}

	for _, s := range tt.sinks {
		s.stop()
	}
	l.run, l.traces = 6, 200 // 4 batches, each waits out the front's retries
	down := sendLoad(t, tt.front.otlpEndpoint(), l).wait(time.Minute)
	if a, rf, _ := down.counts(); a != 0 || rf != l.batches() {
		t.Errorf("with every backend down, want all %d batches refused: %s", l.batches(), down)
	}
	for _, o := range down.outcomes {
		if o.code != codes.Unavailable {
			t.Errorf("refused with %v, want Unavailable (retryable)", o.code)
			break
		}
	}
	if got := tt.front.metricSum("otelcol_fanout_items_refused"); got < float64(l.spans()) {
		t.Errorf("front otelcol_fanout_items_refused = %v, want at least %d", got, l.spans())
	}
	t.Logf("all down: %s", down)

	for _, s := range tt.sinks {
		s.restart()
	}
	l.run, l.maxAttempts, l.backoff = 7, 30, 300*time.Millisecond
	back := sendLoad(t, tt.front.otlpEndpoint(), l).wait(time.Minute)
	if a, _, _ := back.counts(); a != l.batches() {
		t.Errorf("after the backends came back every batch must get through (retrying): %s", back)
	}
	waitDelivered(back, 10*time.Second, tt.sinks...)
	checkDelivered(t, ok, 0.005, tt.sinks...)
	checkDelivered(t, back, 0.005, tt.sinks...)
	tt.stopAll()
}
