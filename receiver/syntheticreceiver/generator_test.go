package syntheticreceiver

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

var testNow = time.Unix(1_700_000_000, 0).UTC()

// spanRec is a span with the service it was reported by.
type spanRec struct {
	ptrace.Span
	service string
	res     pcommon.Map
}

// byTrace indexes every span of td by trace ID.
func byTrace(td ptrace.Traces) map[pcommon.TraceID][]spanRec {
	out := map[pcommon.TraceID][]spanRec{}
	rss := td.ResourceSpans()
	for i := range rss.Len() {
		rs := rss.At(i)
		name, _ := rs.Resource().Attributes().Get(attrServiceName)
		sss := rs.ScopeSpans()
		for j := range sss.Len() {
			spans := sss.At(j).Spans()
			for k := range spans.Len() {
				s := spans.At(k)
				out[s.TraceID()] = append(out[s.TraceID()], spanRec{Span: s, service: name.Str(), res: rs.Resource().Attributes()})
			}
		}
	}
	return out
}

// checkTrace asserts the invariants every generated trace must hold and
// returns its root.
func checkTrace(t *testing.T, spans []spanRec) spanRec {
	t.Helper()
	byID := map[pcommon.SpanID]spanRec{}
	children := map[pcommon.SpanID][]spanRec{}
	var roots []spanRec
	for _, s := range spans {
		require.False(t, s.SpanID().IsEmpty())
		_, dup := byID[s.SpanID()]
		require.False(t, dup, "duplicate span ID in a trace")
		byID[s.SpanID()] = s
		if s.ParentSpanID().IsEmpty() {
			roots = append(roots, s)
		} else {
			children[s.ParentSpanID()] = append(children[s.ParentSpanID()], s)
		}
		require.Greater(t, s.EndTimestamp(), s.StartTimestamp(), "span %q ends before it starts", s.Name())
		require.LessOrEqual(t, s.EndTimestamp().AsTime(), testNow, "span %q ends in the future", s.Name())
		for e := range s.Events().Len() {
			ts := s.Events().At(e).Timestamp()
			require.GreaterOrEqual(t, ts, s.StartTimestamp())
			require.LessOrEqual(t, ts, s.EndTimestamp())
		}
		// An error is reported the semantic-conventions way.
		if s.Status().Code() == ptrace.StatusCodeError {
			_, ok := s.Attributes().Get(attrErrorType)
			require.True(t, ok, "failed span %q has no error.type", s.Name())
		}
		hasException := false
		for e := range s.Events().Len() {
			if s.Events().At(e).Name() == eventException {
				hasException = true
				attrs := s.Events().At(e).Attributes()
				for _, k := range []string{attrExcType, attrExcMessage, attrExcStacktrace} {
					v, ok := attrs.Get(k)
					require.True(t, ok && v.Str() != "", "exception event without %s", k)
				}
			}
		}
		if hasException {
			require.Equal(t, ptrace.StatusCodeError, s.Status().Code(), "exception on a span that did not fail")
		}
		if s.Kind() != ptrace.SpanKindClient && s.Kind() != ptrace.SpanKindProducer && s.Status().Code() == ptrace.StatusCodeError {
			require.True(t, hasException, "span %q failed without an exception event", s.Name())
		}
	}
	require.Len(t, roots, 1, "a trace has exactly one root")
	root := roots[0]
	assert.Equal(t, testNow, root.EndTimestamp().AsTime(), "traces end when they are generated")

	for _, s := range spans {
		if s.ParentSpanID().IsEmpty() {
			continue
		}
		p, ok := byID[s.ParentSpanID()]
		require.True(t, ok, "span %q has a parent outside its trace", s.Name())
		require.GreaterOrEqual(t, s.StartTimestamp(), p.StartTimestamp(), "child %q starts before parent %q", s.Name(), p.Name())
		require.LessOrEqual(t, s.EndTimestamp(), p.EndTimestamp(), "child %q ends after parent %q", s.Name(), p.Name())
		switch s.Kind() {
		case ptrace.SpanKindServer:
			require.Equal(t, ptrace.SpanKindClient, p.Kind(), "server span %q not under a client span", s.Name())
		case ptrace.SpanKindConsumer:
			require.Equal(t, ptrace.SpanKindProducer, p.Kind(), "consumer span %q not under a producer span", s.Name())
		}
		if s.Kind() == ptrace.SpanKindServer || s.Kind() == ptrace.SpanKindConsumer {
			assert.NotEqual(t, p.service, s.service, "a remote call stays in one service")
			assert.Equal(t, p.Status().Code(), s.Status().Code(), "client %q and server %q disagree on failure", p.Name(), s.Name())
			if code, ok := s.Attributes().Get(attrHTTPStatus); ok {
				pcode, ok := p.Attributes().Get(attrHTTPStatus)
				require.True(t, ok)
				assert.Equal(t, code.Int(), pcode.Int(), "client and server of a call report the same HTTP status")
			}
			v, ok := p.Attributes().Get("peer.service")
			require.True(t, ok)
			assert.Equal(t, s.service, v.Str())
		}
	}
	// Client and producer spans wrap exactly one callee span, or none for a
	// call to something uninstrumented (a database, an outside API).
	for _, s := range spans {
		if s.Kind() != ptrace.SpanKindClient && s.Kind() != ptrace.SpanKindProducer {
			continue
		}
		ch := children[s.SpanID()]
		require.LessOrEqual(t, len(ch), 1, "client span %q has %d children", s.Name(), len(ch))
		if len(ch) == 1 {
			assert.Equal(t, s.Name(), ch[0].Name(), "client and server spans of a call share the name")
		}
	}
	return root
}

func TestGenerateStructure(t *testing.T) {
	// Several seeds: rare paths (a failing producer span, say) must be
	// exercised by more than one random sequence.
	const seeds, batches, perBatch = 5, 10, 50
	kinds := map[ptrace.SpanKind]int{}
	services := map[string]bool{}
	errs := 0
	var g *generator
	for i := range seeds * batches {
		if i%batches == 0 {
			g = newTestGenerator(t, nil, uint64(i/batches+1), true)
		}
		td, n := g.generate(perBatch, testNow)
		require.Equal(t, td.SpanCount(), n)
		traces := byTrace(td)
		require.Len(t, traces, perBatch, "trace IDs are unique")
		for _, spans := range traces {
			root := checkTrace(t, spans)
			assert.Equal(t, ptrace.SpanKindServer, root.Kind())
			for _, s := range spans {
				kinds[s.Kind()]++
				services[s.service] = true
				if s.Status().Code() == ptrace.StatusCodeError {
					errs++
				}
				gen, ok := s.res.Get(attrGenerator)
				require.True(t, ok)
				assert.Equal(t, "test-generator", gen.Str())
			}
		}
	}
	for _, k := range []ptrace.SpanKind{ptrace.SpanKindServer, ptrace.SpanKindClient, ptrace.SpanKindInternal, ptrace.SpanKindProducer, ptrace.SpanKindConsumer} {
		assert.Positive(t, kinds[k], "no %s span in the default topology's output", k)
	}
	assert.Len(t, services, 6)
	assert.Positive(t, errs)
}

// twoServices is a front → back topology whose back operation fails with
// ratio and has the given latency.
func twoServices(ratio float64, lat LatencyConfig, count int, parallel bool) []ServiceConfig {
	return []ServiceConfig{
		{Name: "front", Instances: 1, Operations: []OperationConfig{{
			Name: "GET /", Kind: "server", Weight: 1,
			Latency:    LatencyConfig{Median: time.Millisecond, P99: 2 * time.Millisecond},
			Attributes: map[string]any{"http.request.method": "GET", "http.route": "/"},
			Calls:      []CallConfig{{Service: "back", Operation: "Get", Count: count, Parallel: parallel}},
		}}},
		{Name: "back", Instances: 1, Operations: []OperationConfig{{
			Name: "Get", Kind: "server", Weight: 1, ErrorRatio: ratio, Latency: lat,
			Attributes: map[string]any{"rpc.system": "grpc", "rpc.method": "Get"},
		}}},
	}
}

func TestGenerateErrorRatio(t *testing.T) {
	for _, ratio := range []float64{0, 0.02, 0.25, 1} {
		g := newTestGenerator(t, twoServices(ratio, LatencyConfig{Median: time.Millisecond, P99: 5 * time.Millisecond}, 1, false), 3, false)
		const n = 20000
		td, _ := g.generate(n, testNow)
		failed, total := 0, 0
		for _, spans := range byTrace(td) {
			checkTrace(t, spans)
			for _, s := range spans {
				if s.service == "back" {
					total++
					if s.Status().Code() == ptrace.StatusCodeError {
						failed++
						code, _ := s.Attributes().Get(attrGRPCStatus)
						assert.Equal(t, int64(2), code.Int())
					}
				}
			}
		}
		require.Equal(t, n, total)
		got := float64(failed) / n
		// Five standard deviations of a binomial proportion: a correct
		// generator fails this about once in two million runs.
		tol := 5 * math.Sqrt(ratio*(1-ratio)/n)
		assert.InDelta(t, ratio, got, tol+1e-12, "error ratio %v", ratio)
	}
}

func TestGenerateLatencyDistribution(t *testing.T) {
	lat := LatencyConfig{Median: 10 * time.Millisecond, P99: 100 * time.Millisecond}
	g := newTestGenerator(t, twoServices(0, lat, 1, false), 5, false)
	td, _ := g.generate(20000, testNow)
	var d []float64
	for _, spans := range byTrace(td) {
		for _, s := range spans {
			if s.service == "back" && s.Kind() == ptrace.SpanKindServer {
				d = append(d, float64(s.EndTimestamp()-s.StartTimestamp()))
			}
		}
	}
	slices.Sort(d)
	median, p99 := d[len(d)/2], d[len(d)*99/100]
	assert.InEpsilon(t, float64(lat.Median), median, 0.05)
	assert.InEpsilon(t, float64(lat.P99), p99, 0.15)
}

func TestGenerateFanOut(t *testing.T) {
	lat := LatencyConfig{Median: time.Millisecond, P99: 10 * time.Millisecond}
	for _, parallel := range []bool{false, true} {
		g := newTestGenerator(t, twoServices(0, lat, 4, parallel), 9, false)
		td, _ := g.generate(100, testNow)
		for _, spans := range byTrace(td) {
			root := checkTrace(t, spans)
			var calls []spanRec
			for _, s := range spans {
				if s.ParentSpanID() == root.SpanID() {
					calls = append(calls, s)
				}
			}
			require.Len(t, calls, 4)
			slices.SortFunc(calls, func(a, b spanRec) int { return int(a.StartTimestamp()) - int(b.StartTimestamp()) })
			for i := 1; i < len(calls); i++ {
				if parallel {
					assert.Equal(t, calls[0].StartTimestamp(), calls[i].StartTimestamp(), "parallel calls start together")
				} else {
					assert.Greater(t, calls[i].StartTimestamp(), calls[i-1].EndTimestamp(), "sequential calls neither overlap nor touch")
				}
			}
		}
	}
}

func TestGenerateDeterministic(t *testing.T) {
	gen := func(seed uint64) []byte {
		g := newTestGenerator(t, nil, seed, true)
		var out []byte
		for range 3 {
			td, _ := g.generate(40, testNow)
			b, err := (&ptrace.ProtoMarshaler{}).MarshalTraces(td)
			require.NoError(t, err)
			out = append(out, b...)
		}
		return out
	}
	a, b, c := gen(7), gen(7), gen(8)
	assert.Equal(t, a, b, "the same seed gives the same traces")
	assert.NotEqual(t, a, c, "another seed gives other traces")
}

// TestGeneratePooledIsIdentical: with pdata's pooling gate on and every
// batch released, as the pipeline releases them, the generator builds from
// reused objects and must still build exactly the same traces.
func TestGeneratePooledIsIdentical(t *testing.T) {
	gen := func(pooled bool) []byte {
		g := newTestGenerator(t, nil, 7, true)
		var out []byte
		for range 5 {
			td, _ := g.generate(40, testNow)
			b, err := (&ptrace.ProtoMarshaler{}).MarshalTraces(td)
			require.NoError(t, err)
			out = append(out, b...)
			if pooled {
				release(td)
			}
		}
		return out
	}
	want := gen(false)
	setProtoPooling(t, true)
	t.Cleanup(func() { setProtoPooling(t, false) })
	assert.Equal(t, want, gen(true))
}

func TestGenerateCanaryNumbering(t *testing.T) {
	g := newTestGenerator(t, nil, 11, true)
	var seqs []int64
	for range 10 {
		td, _ := g.generate(7, testNow)
		// Root spans in trace order: the order roots appear in their
		// services' slices is the order the traces were generated in.
		var roots []spanRec
		for _, spans := range byTrace(td) {
			for _, s := range spans {
				v, ok := s.Attributes().Get(attrSequence)
				if s.ParentSpanID().IsEmpty() {
					require.True(t, ok, "root span without synthetic.sequence")
					roots = append(roots, s)
				} else {
					require.False(t, ok, "synthetic.sequence on a non-root span")
				}
				_ = v
			}
		}
		for _, r := range roots {
			v, _ := r.Attributes().Get(attrSequence)
			seqs = append(seqs, v.Int())
		}
	}
	slices.Sort(seqs)
	require.Len(t, seqs, 70)
	for i, s := range seqs {
		assert.Equal(t, int64(i+1), s, "sequence numbers are 1..n without gaps or repeats")
	}

	// Without canary mode there is no numbering and no generator attribute.
	g = newTestGenerator(t, nil, 11, false)
	td, _ := g.generate(5, testNow)
	for _, spans := range byTrace(td) {
		for _, s := range spans {
			_, ok := s.Attributes().Get(attrSequence)
			assert.False(t, ok)
			_, ok = s.res.Get(attrGenerator)
			assert.False(t, ok)
		}
	}
}

func TestGenerateHTTPStatus(t *testing.T) {
	g := newTestGenerator(t, twoServices(0, LatencyConfig{Median: time.Millisecond, P99: time.Millisecond}, 1, false), 1, false)
	td, _ := g.generate(1, testNow)
	for _, spans := range byTrace(td) {
		root := checkTrace(t, spans)
		code, ok := root.Attributes().Get(attrHTTPStatus)
		require.True(t, ok)
		assert.Equal(t, int64(200), code.Int())
		for _, s := range spans {
			if s.Kind() == ptrace.SpanKindClient {
				// Derived from the callee: protocol attributes, the peer.
				for k, want := range map[string]string{"rpc.system": "grpc", "rpc.method": "Get", "server.address": "back", "peer.service": "back"} {
					v, ok := s.Attributes().Get(k)
					require.True(t, ok, k)
					assert.Equal(t, want, v.Str())
				}
			}
		}
	}
}

func TestGenerateHTTPCallStatusPairs(t *testing.T) {
	lat := LatencyConfig{Median: time.Millisecond, P99: 2 * time.Millisecond}
	services := []ServiceConfig{
		{Name: "web", Instances: 1, Operations: []OperationConfig{{
			Name: "GET /", Kind: "server", Weight: 1, Latency: lat,
			Calls: []CallConfig{{Service: "api", Operation: "GET /items", Count: 1}},
		}}},
		{Name: "api", Instances: 1, Operations: []OperationConfig{{
			Name: "GET /items", Kind: "server", Weight: 1, Latency: lat, ErrorRatio: 0.5,
			Attributes: map[string]any{"http.request.method": "GET", "http.route": "/items", "url.path": "/items", "url.scheme": "https"},
		}}},
	}
	g := newTestGenerator(t, services, 2, false)
	td, _ := g.generate(200, testNow)
	codes := map[int64]int{}
	for _, spans := range byTrace(td) {
		checkTrace(t, spans) // client and server agree on the status code
		for _, s := range spans {
			if s.Kind() != ptrace.SpanKindClient {
				continue
			}
			code, ok := s.Attributes().Get(attrHTTPStatus)
			require.True(t, ok)
			codes[code.Int()]++
			full, _ := s.Attributes().Get("url.full")
			assert.Equal(t, "https://api/items", full.Str())
			_, hasRoute := s.Attributes().Get("http.route")
			assert.False(t, hasRoute, "http.route is a server attribute")
			if code.Int() == 500 {
				et, _ := s.Attributes().Get(attrErrorType)
				assert.Equal(t, "500", et.Str())
			}
		}
	}
	assert.Positive(t, codes[200])
	assert.Positive(t, codes[500])
	assert.Len(t, codes, 2)
}

func TestGenerateInstances(t *testing.T) {
	services := twoServices(0, LatencyConfig{Median: time.Millisecond, P99: 2 * time.Millisecond}, 3, false)
	services[0].Instances = 2
	services[1].Instances = 4
	services[1].Operations[0].Calls = []CallConfig{{Operation: "step", Count: 2}}
	services[1].Operations = append(services[1].Operations, OperationConfig{
		Name: "step", Kind: "internal", Weight: 1, Latency: LatencyConfig{Median: time.Millisecond, P99: time.Millisecond},
	})
	g := newTestGenerator(t, services, 4, false)
	td, _ := g.generate(300, testNow)
	seen := map[string]bool{}
	for _, spans := range byTrace(td) {
		checkTrace(t, spans)
		inst := map[pcommon.SpanID]string{}
		for _, s := range spans {
			v, ok := s.res.Get(attrInstanceID)
			require.True(t, ok)
			inst[s.SpanID()] = v.Str()
			seen[v.Str()] = true
		}
		for _, s := range spans {
			if s.ParentSpanID().IsEmpty() || s.Kind() == ptrace.SpanKindServer {
				continue
			}
			// Everything but a remote call's server span runs in its
			// parent's process.
			assert.Equal(t, inst[s.ParentSpanID()], inst[s.SpanID()], "span %q left its parent's instance", s.Name())
		}
	}
	assert.Equal(t, map[string]bool{"front-1": true, "front-2": true, "back-1": true, "back-2": true, "back-3": true, "back-4": true}, seen)
	// One resource per instance and batch: spans of an instance share it.
	assert.Equal(t, 6, td.ResourceSpans().Len())
}

// randomTopology builds a valid random topology: calls only go "forward"
// in a global order of operations (so there are no cycles), across services
// only to server and consumer operations, and only from operations that
// handle requests or do internal work.
func randomTopology(r *rand.Rand) []ServiceConfig {
	kindNames := []string{"server", "client", "internal", "producer", "consumer"}
	type ref struct{ svc, op int }
	var services []ServiceConfig
	var order []ref
	for s := range 1 + r.IntN(5) {
		sc := ServiceConfig{Name: fmt.Sprintf("svc%d", s), Instances: 1 + r.IntN(3)}
		for o := range 1 + r.IntN(4) {
			median := time.Duration(1+r.IntN(5000)) * time.Microsecond
			sc.Operations = append(sc.Operations, OperationConfig{
				Name:       fmt.Sprintf("op%d", o),
				Kind:       kindNames[r.IntN(len(kindNames))],
				Latency:    LatencyConfig{Median: median, P99: median * time.Duration(1+r.IntN(20))},
				ErrorRatio: []float64{0, 0.1, 0.5, 1}[r.IntN(4)],
				Weight:     1,
				Events:     []EventConfig{{Name: "e"}}[:r.IntN(2)],
			})
			order = append(order, ref{s, o})
		}
		services = append(services, sc)
	}
	r.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
	for i, from := range order {
		op := &services[from.svc].Operations[from.op]
		if op.Kind == "client" || op.Kind == "producer" {
			continue
		}
		for _, to := range order[i+1:] {
			if r.IntN(3) != 0 {
				continue
			}
			target := services[to.svc].Operations[to.op]
			remote := target.Kind == "server" || target.Kind == "consumer"
			if remote == (to.svc == from.svc) {
				continue // local calls to local work, remote calls to other services
			}
			op.Calls = append(op.Calls, CallConfig{
				Service: services[to.svc].Name, Operation: target.Name,
				Count: 1 + r.IntN(3), Parallel: r.IntN(2) == 0,
			})
		}
	}
	return services
}

func TestGenerateRandomTopologies(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	checked := 0
	for range 200 {
		services := randomTopology(r)
		if err := validateServices(services); err != nil {
			// Only the size limit may reject a topology built this way.
			require.ErrorContains(t, err, "more than the limit")
			continue
		}
		g := newGenerator(compileTopology(services, "g"), r.Uint64(), true)
		td, n := g.generate(20, testNow)
		require.Equal(t, td.SpanCount(), n)
		for _, spans := range byTrace(td) {
			checkTrace(t, spans)
		}
		checked++
	}
	assert.Greater(t, checked, 150)
}
