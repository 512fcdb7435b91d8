package e2e_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
)

// load is a known set of traces the test client sends: traces × spansPerTrace
// spans, in batches of tracesPerBatch traces, one batch every interval (or
// slower, when all workers are busy), by workers concurrent senders.
//
// Span g (0-based over the whole load) has span ID (run, g+1), so a counting server
// can tell exactly which spans it got; trace i has trace ID (run, i+1).
type load struct {
	run            uint64 // high half of every trace ID: tells tests apart
	traces         int
	spansPerTrace  int
	tracesPerBatch int
	workers        int
	interval       time.Duration
	maxAttempts    int           // per batch; retryable refusals are retried
	backoff        time.Duration // between attempts
	callTimeout    time.Duration
	sdkTraceIDs    bool // trace IDs through sdkTraceID (withSDKTraceIDs)
}

var services = []string{"frontend", "cart", "payment"}

func (l load) batches() int { return (l.traces + l.tracesPerBatch - 1) / l.tracesPerBatch }
func (l load) spans() int   { return l.traces * l.spansPerTrace }

// isError says whether span g is marked STATUS_CODE_ERROR (about 6% of spans).
func isError(g int) bool { return g%17 == 3 }

// batch builds batch b: one resource per service, each holding its spans of
// the batch's traces; a trace's spans spread over the services.
func (l load) batch(b int) ptrace.Traces {
	td := ptrace.NewTraces()
	scopes := make([]ptrace.SpanSlice, len(services))
	for i, svc := range services {
		rs := td.ResourceSpans().AppendEmpty()
		rs.Resource().Attributes().PutStr("service.name", svc)
		ss := rs.ScopeSpans().AppendEmpty()
		ss.Scope().SetName("otelcsp-e2e")
		scopes[i] = ss.Spans()
	}
	base := time.Now().Add(-time.Second)
	for tr := b * l.tracesPerBatch; tr < min(l.traces, (b+1)*l.tracesPerBatch); tr++ {
		var traceID pcommon.TraceID
		binary.BigEndian.PutUint64(traceID[:8], l.run)
		binary.BigEndian.PutUint64(traceID[8:], uint64(tr+1))
		if l.sdkTraceIDs {
			traceID = sdkTraceID(traceID)
		}
		root := l.spanID(tr * l.spansPerTrace)
		for j := range l.spansPerTrace {
			g := tr*l.spansPerTrace + j
			sp := scopes[j%len(services)].AppendEmpty()
			sp.SetTraceID(traceID)
			sp.SetSpanID(l.spanID(g))
			sp.SetName(fmt.Sprintf("op-%d", j%4))
			if j == 0 {
				sp.SetKind(ptrace.SpanKindServer)
			} else {
				sp.SetParentSpanID(root)
				sp.SetKind(ptrace.SpanKindClient)
			}
			start := base.Add(time.Duration(j) * time.Millisecond)
			sp.SetStartTimestamp(pcommon.NewTimestampFromTime(start))
			sp.SetEndTimestamp(pcommon.NewTimestampFromTime(start.Add(time.Duration(1+g%50) * time.Millisecond)))
			sp.Attributes().PutStr("http.request.method", "GET")
			if isError(g) {
				sp.Status().SetCode(ptrace.StatusCodeError)
				sp.Status().SetMessage("e2e error")
			}
		}
	}
	return td
}

// withSDKTraceIDs is the load with trace IDs that look random, as SDKs make
// them, instead of (run, i+1). Tail sampling's probabilistic policy hashes the
// salted trace ID with FNV-1a and keeps the trace when the hash is under
// 10% of 2^64. FNV-1a carries a change in the last bytes it reads into the
// lower bits of the hash only, so IDs that differ in their last bytes
// share the top bits the policy compares:
// the 4,250 IDs (21, 1…4250) all hash within 0.2146–0.2155 of 2^64, and
// the policy keeps none of them (a first run kept 0 of 3,000), or all.
// Span IDs stay the same, so the stores count them exactly.
func (l load) withSDKTraceIDs() load {
	l.sdkTraceIDs = true
	return l
}

// sdkTraceID maps load's trace ID to a random-looking one, one to one for a
// run (splitmix64 is a bijection).
func sdkTraceID(id pcommon.TraceID) pcommon.TraceID {
	hi, lo := binary.BigEndian.Uint64(id[:8]), binary.BigEndian.Uint64(id[8:])
	var out pcommon.TraceID
	binary.BigEndian.PutUint64(out[:8], splitmix64(hi^splitmix64(lo)))
	binary.BigEndian.PutUint64(out[8:], splitmix64(lo+hi<<32))
	return out
}

func splitmix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	return x ^ x>>31
}

// spanID is span g's ID: the run in the top byte keeps loads of one test apart.
func (l load) spanID(g int) pcommon.SpanID {
	var id pcommon.SpanID
	binary.BigEndian.PutUint64(id[:], l.run<<56|uint64(g+1))
	return id
}

// batchOutcome is what the client learned about one batch.
type batchOutcome struct {
	sent     bool // at least one attempt was made
	accepted bool // the last attempt was answered OK
	attempts int
	code     codes.Code // last attempt's code
	// the last attempt's start and end
	start, end time.Time
}

// loadRun is a load being sent in the background.
type loadRun struct {
	l        load
	cancel   context.CancelFunc
	done     chan struct{}
	mu       sync.Mutex
	outcomes []batchOutcome
	failures map[codes.Code]int // every failed attempt, by code
}

// sendLoad starts sending l to a front collector's OTLP/gRPC endpoint.
// Cancelling (stop) sends no new batches or retries; calls in flight finish
// under their own timeout.
func sendLoad(t *testing.T, endpoint string, l load) *loadRun {
	t.Helper()
	conn, err := grpc.NewClient(endpoint, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallSendMsgSize(64<<20)))
	if err != nil {
		t.Fatal(err)
	}
	client := ptraceotlp.NewGRPCClient(conn)
	ctx, cancel := context.WithCancel(context.Background())
	r := &loadRun{l: l, cancel: cancel, done: make(chan struct{}),
		outcomes: make([]batchOutcome, l.batches()), failures: map[codes.Code]int{}}

	next := make(chan int)
	go func() { // paces the batches
		defer close(next)
		tick := time.NewTicker(l.interval)
		defer tick.Stop()
		for b := range l.batches() {
			select {
			case next <- b:
			case <-ctx.Done():
				return
			}
			select {
			case <-tick.C:
			case <-ctx.Done():
				return
			}
		}
	}()
	var wg sync.WaitGroup
	for range l.workers {
		wg.Go(func() {
			for b := range next {
				r.send(ctx, client, b)
			}
		})
	}
	go func() {
		wg.Wait()
		_ = conn.Close()
		close(r.done)
	}()
	t.Cleanup(func() { r.stop() })
	return r
}

func (r *loadRun) send(ctx context.Context, client ptraceotlp.GRPCClient, b int) {
	req := ptraceotlp.NewExportRequestFromTraces(r.l.batch(b))
	var o batchOutcome
	for o.attempts < r.l.maxAttempts {
		if o.attempts > 0 {
			select {
			case <-time.After(r.l.backoff):
			case <-ctx.Done():
			}
		}
		if ctx.Err() != nil {
			break
		}
		o.sent = true
		o.attempts++
		o.start = time.Now()
		callCtx, cancel := context.WithTimeout(context.Background(), r.l.callTimeout)
		_, err := client.Export(callCtx, req)
		cancel()
		o.end = time.Now()
		o.code = status.Code(err)
		if err == nil {
			o.accepted = true
			break
		}
		r.mu.Lock()
		r.failures[o.code]++
		r.mu.Unlock()
		if !retryable(o.code) {
			break
		}
	}
	r.mu.Lock()
	r.outcomes[b] = o
	r.mu.Unlock()
}

func retryable(c codes.Code) bool {
	switch c {
	case codes.Unavailable, codes.ResourceExhausted, codes.Aborted, codes.DeadlineExceeded:
		return true
	}
	return false
}

// stop sends nothing more and waits for the calls in flight.
func (r *loadRun) stop() loadResult {
	r.cancel()
	return r.wait(time.Minute)
}

// wait waits for the whole load to be sent (bounded) and returns the
// accounting.
func (r *loadRun) wait(timeout time.Duration) loadResult {
	select {
	case <-r.done:
	case <-time.After(timeout):
		r.cancel()
		<-r.done
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	res := loadResult{l: r.l, outcomes: append([]batchOutcome(nil), r.outcomes...), failures: map[codes.Code]int{}}
	for c, n := range r.failures {
		res.failures[c] = n
	}
	return res
}

// loadResult is the client's side of the accounting: which batches were
// accepted, which were refused (and how), which were never sent.
type loadResult struct {
	l        load
	outcomes []batchOutcome
	failures map[codes.Code]int
}

// acceptedSpans lists the span indexes of every accepted batch.
func (r loadResult) acceptedSpans() []int {
	var out []int
	for b, o := range r.outcomes {
		if !o.accepted {
			continue
		}
		for tr := b * r.l.tracesPerBatch; tr < min(r.l.traces, (b+1)*r.l.tracesPerBatch); tr++ {
			for j := range r.l.spansPerTrace {
				out = append(out, tr*r.l.spansPerTrace+j)
			}
		}
	}
	return out
}

// batchSpans is the number of spans in batch b.
func (l load) batchSpans(b int) int {
	return (min(l.traces, (b+1)*l.tracesPerBatch) - b*l.tracesPerBatch) * l.spansPerTrace
}

// sentSpans counts the spans of every batch the client sent at least once,
// accepted or not.
func (r loadResult) sentSpans() int {
	n := 0
	for b, o := range r.outcomes {
		if o.sent {
			n += r.l.batchSpans(b)
		}
	}
	return n
}

// counts: batches accepted, refused (sent, the client was told no) and never sent.
func (r loadResult) counts() (accepted, refused, unsent int) {
	for _, o := range r.outcomes {
		switch {
		case o.accepted:
			accepted++
		case o.sent:
			refused++
		default:
			unsent++
		}
	}
	return
}

func (r loadResult) String() string {
	a, rf, u := r.counts()
	retries := 0
	for _, o := range r.outcomes {
		if o.attempts > 1 {
			retries += o.attempts - 1
		}
	}
	return fmt.Sprintf("batches: %d accepted, %d refused, %d unsent; %d retries; failed attempts by code %v",
		a, rf, u, retries, r.failures)
}

// checkDelivered logs the client's and the counting servers' figures and
// asserts that every accepted span reached a counting server (accepted:
// the client's last attempt was answered OK) and that duplicates stay
// within maxDupRatio of the distinct spans delivered; it returns the
// delivery for further checks.
func checkDelivered(t *testing.T, res loadResult, maxDupRatio float64, servers ...*countingServer) delivery {
	t.Helper()
	d := collect(servers...)
	accepted := res.acceptedSpans()
	var missing []int
	for _, g := range accepted {
		if d.Spans[res.l.spanID(g)] == 0 {
			missing = append(missing, g)
		}
	}
	ratio := 0.0
	if len(d.Spans) > 0 {
		ratio = float64(d.Duplicates()) / float64(len(d.Spans))
	}
	t.Logf("spans: %d sent, %d accepted, %d delivered (%d distinct), %d duplicates (%.3f%%), %d accepted not delivered; client %s",
		res.sentSpans(), len(accepted), d.Total(), len(d.Spans), d.Duplicates(), 100*ratio, len(missing), res)
	if len(missing) > 0 {
		t.Errorf("%d of %d accepted spans never reached a backend (first: %v)", len(missing), len(accepted), missing[:min(10, len(missing))])
	}
	if ratio > maxDupRatio {
		t.Errorf("duplicates: %d of %d distinct spans (%.3f%%), want at most %.2f%%",
			d.Duplicates(), len(d.Spans), 100*ratio, 100*maxDupRatio)
	}
	return d
}

// waitDelivered waits (bounded) until the counting servers hold at least
// every accepted span, so assertions do not race the last exports.
func waitDelivered(res loadResult, timeout time.Duration, servers ...*countingServer) {
	want := res.acceptedSpans()
	pollFor(timeout, func() bool {
		d := collect(servers...)
		for _, g := range want {
			if d.Spans[res.l.spanID(g)] == 0 {
				return false
			}
		}
		return true
	})
}
