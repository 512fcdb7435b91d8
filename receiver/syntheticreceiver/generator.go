package syntheticreceiver // import "github.com/otelcsp/otelcsp/receiver/syntheticreceiver"

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

const (
	scopeName    = "github.com/otelcsp/otelcsp/receiver/syntheticreceiver"
	scopeVersion = "0.1.0"

	// W3C sampled flag plus OTLP's "is remote is known" bit, and the "is
	// remote" bit for spans whose parent lives in another process.
	flagsLocal  = 0x101
	flagsRemote = 0x301

	// One-way network time added around a callee span inside its
	// client span: uniform in [minNetwork, minNetwork+spanNetwork).
	minNetwork  = float64(50 * time.Microsecond)
	spanNetwork = float64(250 * time.Microsecond)
)

// generator builds batches of traces from a topology. It is owned by one
// goroutine (the receiver's run loop, or a test): nothing in it is shared.
type generator struct {
	topo   *topology
	pcg    *rand.PCG
	rng    *rand.Rand
	canary bool
	// seq is the last synthetic.sequence handed out.
	seq int64

	// Per-batch state: one span slice per slot (service instance), created
	// on first use.
	td       ptrace.Traces
	perSvc   []ptrace.SpanSlice
	hasSvc   []bool
	curSpans []ptrace.Span // spans of the trace being built, to rebase times
	batchLen int           // traces in the batch being built
}

func newGenerator(topo *topology, seed uint64, canary bool) *generator {
	// Both PCG words come from the seed so one number reproduces everything.
	pcg := rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)
	return &generator{
		topo:   topo,
		pcg:    pcg,
		rng:    rand.New(pcg),
		canary: canary,
		perSvc: make([]ptrace.SpanSlice, topo.slots),
		hasSvc: make([]bool, topo.slots),
	}
}

// float returns a uniform number in [0, 1) straight from the PCG, skipping
// the interface call of rand.Rand on the hot path.
func (g *generator) float() float64 {
	return float64(g.pcg.Uint64()>>11) * 0x1p-53
}

func (g *generator) spanID() pcommon.SpanID {
	var id pcommon.SpanID
	v := g.pcg.Uint64()
	if v == 0 { // the all-zero ID is invalid
		v = 1
	}
	binary.BigEndian.PutUint64(id[:], v)
	return id
}

func (g *generator) traceID() pcommon.TraceID {
	var id pcommon.TraceID
	hi, lo := g.pcg.Uint64(), g.pcg.Uint64()
	if hi == 0 && lo == 0 {
		lo = 1
	}
	binary.BigEndian.PutUint64(id[:8], hi)
	binary.BigEndian.PutUint64(id[8:], lo)
	return id
}

// latency draws the operation's own time in nanoseconds from its log-normal.
func (g *generator) latency(op *operation) float64 {
	if op.sigma == 0 {
		return op.median
	}
	return op.median * math.Exp(op.sigma*g.rng.NormFloat64())
}

// generate builds n traces that all end at now and returns them with their
// span count. In canary mode root spans are numbered from g.seq+1 on.
func (g *generator) generate(n int, now time.Time) (ptrace.Traces, int) {
	g.td = ptrace.NewTraces()
	g.td.ResourceSpans().EnsureCapacity(len(g.topo.services))
	g.batchLen = n
	clear(g.hasSvc)
	nowNano := now.UnixNano()
	spans := 0
	for range n {
		spans += g.trace(nowNano)
	}
	td := g.td
	// Drop every reference to the batch: it belongs to the pipeline now.
	g.td = ptrace.Traces{}
	clear(g.perSvc)
	clear(g.curSpans)
	return td, spans
}

func (g *generator) pickRoot() *operation {
	roots := g.topo.roots
	if len(roots) == 1 {
		return roots[0]
	}
	x := g.float() * g.topo.rootCum[len(roots)-1]
	for i, c := range g.topo.rootCum {
		if x < c {
			return roots[i]
		}
	}
	return roots[len(roots)-1]
}

// trace builds one trace with relative times starting at 0, then moves it so
// it ends at nowNano: real SDKs export spans once they have ended.
func (g *generator) trace(nowNano int64) int {
	g.curSpans = g.curSpans[:0]
	root := g.pickRoot()
	tid := g.traceID()
	end, _ := g.span(root, g.pickSlot(root.svc), tid, pcommon.SpanID{}, 0)
	if g.canary {
		g.seq++
		// span left room for it: no regrowth of the attribute slice.
		g.curSpans[0].Attributes().PutInt(attrSequence, g.seq)
	}
	base := uint64(nowNano - int64(end))
	for _, s := range g.curSpans {
		s.SetStartTimestamp(pcommon.Timestamp(base + uint64(s.StartTimestamp())))
		s.SetEndTimestamp(pcommon.Timestamp(base + uint64(s.EndTimestamp())))
		evs := s.Events()
		for i := range evs.Len() {
			ev := evs.At(i)
			ev.SetTimestamp(pcommon.Timestamp(base + uint64(ev.Timestamp())))
		}
	}
	return len(g.curSpans)
}

// pickSlot chooses the instance of svc that serves a request.
func (g *generator) pickSlot(svc *service) int {
	if n := len(svc.resources); n > 1 {
		return svc.slot + int(g.pcg.Uint64()%uint64(n))
	}
	return svc.slot
}

// newSpan appends a span to the batch's slice for slot, a service instance
// whose resource it then shares.
func (g *generator) newSpan(svc *service, slot int) ptrace.Span {
	if !g.hasSvc[slot] {
		rs := g.td.ResourceSpans().AppendEmpty()
		svc.resources[slot-svc.slot].CopyTo(rs.Resource().Attributes())
		ss := rs.ScopeSpans().AppendEmpty()
		ss.Scope().SetName(scopeName)
		ss.Scope().SetVersion(scopeVersion)
		spans := ss.Spans()
		// Room for the batch's expected share plus some slack, so that the
		// slice rarely grows; a pointer slot per span costs little.
		spans.EnsureCapacity(int(g.topo.perTrace[slot]*float64(g.batchLen)*1.25) + 4)
		g.perSvc[slot] = spans
		g.hasSvc[slot] = true
	}
	s := g.perSvc[slot].AppendEmpty()
	g.curSpans = append(g.curSpans, s)
	return s
}

// span emits one execution of op on the instance at slot, starting at start
// (relative nanoseconds), with its downstream calls inside it, and returns
// its end and whether it failed.
func (g *generator) span(op *operation, slot int, tid pcommon.TraceID, parent pcommon.SpanID, start float64) (float64, bool) {
	s := g.newSpan(op.svc, slot)
	sid := g.spanID()
	s.SetTraceID(tid)
	s.SetSpanID(sid)
	if parent.IsEmpty() {
		s.SetFlags(flagsLocal)
	} else {
		s.SetParentSpanID(parent)
		if op.kind == ptrace.SpanKindServer || op.kind == ptrace.SpanKindConsumer {
			s.SetFlags(flagsRemote)
		} else {
			s.SetFlags(flagsLocal)
		}
	}
	s.SetName(op.name)
	s.SetKind(op.kind)
	failed := op.errorRatio > 0 && g.float() < op.errorRatio

	// The operation's own time is split around its calls: some work before
	// the first call, the rest after the last one.
	self := g.latency(op)
	before := self * (0.1 + 0.4*g.float())
	rest := self - before
	t := start + before
	first := true
	for _, c := range op.calls {
		// Some of the remaining own time goes between one call and the
		// next (handling a response, preparing a request), so that
		// sequential calls do not touch.
		if !first {
			gap := rest * 0.1 * g.float()
			t += gap
			rest -= gap
		}
		first = false
		if c.parallel {
			latest := t
			for range c.count {
				if e := g.call(c, slot, tid, sid, t); e > latest {
					latest = e
				}
			}
			t = latest
		} else {
			for i := range c.count {
				if i > 0 {
					gap := rest * 0.1 * g.float()
					t += gap
					rest -= gap
				}
				t = g.call(c, slot, tid, sid, t)
			}
		}
	}
	end := t + rest
	// Times are whole nanoseconds; make sure a span never ends before it
	// starts after rounding.
	startNs, endNs := uint64(start), uint64(end)
	if endNs <= startNs {
		endNs = startNs + 1
		end = float64(endNs)
	}
	s.SetStartTimestamp(pcommon.Timestamp(startNs))
	s.SetEndTimestamp(pcommon.Timestamp(endNs))

	attrs := op.attrsOK
	if failed {
		attrs = op.attrsErr
		st := s.Status()
		st.SetCode(ptrace.StatusCodeError)
		msg, _ := op.excAttrs.Get(attrExcMessage)
		st.SetMessage(msg.Str())
	}
	if g.canary && parent.IsEmpty() {
		// Room for synthetic.sequence, which trace appends: CopyTo
		// fills the slice it finds when it is large enough.
		s.Attributes().EnsureCapacity(attrs.Len() + 1)
	}
	attrs.CopyTo(s.Attributes())
	if nev := len(op.events); nev > 0 || failed {
		evs := s.Events()
		if failed {
			nev++
		}
		evs.EnsureCapacity(nev)
		for i := range op.events {
			ev := evs.AppendEmpty()
			ev.SetName(op.events[i].name)
			ev.SetTimestamp(pcommon.Timestamp(startNs + uint64(g.float()*float64(endNs-startNs))))
			op.events[i].attrs.CopyTo(ev.Attributes())
		}
		if failed {
			// The exception is thrown near the end, when the operation gives up.
			ev := evs.AppendEmpty()
			ev.SetName(eventException)
			ev.SetTimestamp(pcommon.Timestamp(endNs - uint64(g.float()*0.1*float64(endNs-startNs))))
			op.excAttrs.CopyTo(ev.Attributes())
		}
	}
	return end, failed
}

// call emits one downstream call made by the instance at slot, starting at
// start, and returns its end. A plain call stays in the calling instance; a
// remote one lands on any instance of the callee.
func (g *generator) call(c *call, slot int, tid pcommon.TraceID, parent pcommon.SpanID, start float64) float64 {
	if !c.paired {
		end, _ := g.span(c.target, slot, tid, parent, start)
		return end
	}
	s := g.newSpan(c.caller, slot)
	sid := g.spanID()
	s.SetTraceID(tid)
	s.SetSpanID(sid)
	s.SetParentSpanID(parent)
	s.SetFlags(flagsLocal)
	s.SetName(c.name)
	s.SetKind(c.kind)
	calleeStart := start + minNetwork + g.float()*spanNetwork
	calleeEnd, failed := g.span(c.target, g.pickSlot(c.target.svc), tid, sid, calleeStart)
	end := calleeEnd + minNetwork + g.float()*spanNetwork
	s.SetStartTimestamp(pcommon.Timestamp(uint64(start)))
	s.SetEndTimestamp(pcommon.Timestamp(uint64(end)))
	if failed {
		c.attrsErr.CopyTo(s.Attributes())
		s.Status().SetCode(ptrace.StatusCodeError)
	} else {
		c.attrsOK.CopyTo(s.Attributes())
	}
	return end
}
