package redmetricsconnector // import "github.com/otelcsp/otelcsp/connector/redmetricsconnector"

import (
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
)

// The service graph's metrics, named as contrib servicegraph names them
// (its Prometheus names: the histograms' unit adds _seconds).
const (
	graphRequests = iota
	graphFailed
	graphServer
	graphClient
	graphUnpaired
	graphDropped
	numGraphMetrics
)

var graphMetricNames = [numGraphMetrics]string{
	graphRequests: "traces_service_graph_request_total",
	graphFailed:   "traces_service_graph_request_failed_total",
	graphServer:   "traces_service_graph_request_server",
	graphClient:   "traces_service_graph_request_client",
	graphUnpaired: "traces_service_graph_unpaired_spans_total",
	graphDropped:  "traces_service_graph_dropped_spans_total",
}

// graphMetric returns the named metric of o, created on first use.
func (b *builder) graphMetric(o *rmOut, m int) pmetric.Metric {
	if o.hasGraph[m] {
		return o.graph[m]
	}
	o.hasGraph[m] = true
	x := o.sm.Metrics().AppendEmpty()
	x.SetName(graphMetricNames[m])
	switch m {
	case graphServer, graphClient:
		x.SetUnit("s")
		x.SetEmptyHistogram().SetAggregationTemporality(b.temp)
	default:
		s := x.SetEmptySum()
		s.SetIsMonotonic(true)
		s.SetAggregationTemporality(b.temp)
	}
	o.graph[m] = x
	return x
}

// emitGraph writes one service graph series: an edge's request count,
// failed count (failed edges only), and the client and server latency
// histograms (each when that side was measured); or an unpaired or
// dropped spans counter.
func (b *builder) emitGraph(sn *snapshot, p *snap) {
	s := p.s
	g := b.c.sg
	o := b.out(nil)
	b.attrs.Clear()
	withInst := b.c.spanPlan.instAt >= 0
	overflow := s.key() == ""
	b.vals = decodeKey(s.key(), b.vals[:0])
	if overflow {
		b.attrs.PutBool(overflowKey, true)
		if withInst {
			b.attrs.PutStr(collectorInstanceKey, b.c.instanceID)
		}
	} else if s.family == familyEdge {
		for i, v := range b.vals {
			if i == edgeDims && withInst {
				b.attrs.PutStr(collectorInstanceKey, b.c.instanceID)
			}
			putValue(b.attrs, g.names[i], v)
		}
		if len(b.vals) == edgeDims && withInst {
			b.attrs.PutStr(collectorInstanceKey, b.c.instanceID)
		}
	} else {
		for i, v := range b.vals {
			putValue(b.attrs, g.names[i], v)
		}
		if withInst {
			b.attrs.PutStr(collectorInstanceKey, b.c.instanceID)
		}
	}
	start := pcommon.Timestamp(s.start)
	if b.c.delta {
		start = b.prev
	}
	sum := func(m int, v uint64) {
		dp := b.graphMetric(o, m).Sum().DataPoints().AppendEmpty()
		b.attrs.CopyTo(dp.Attributes())
		dp.SetStartTimestamp(start)
		dp.SetTimestamp(b.now)
		dp.SetIntValue(int64(v))
	}
	switch s.family {
	case familyUnpaired:
		sum(graphUnpaired, p.count)
		return
	case familyDropped:
		sum(graphDropped, p.count)
		return
	}
	sum(graphRequests, p.count)
	if !overflow && b.vals[edgeFailed].n == 1 {
		sum(graphFailed, p.count)
	}
	counts := sn.u64[p.bOff : p.bOff+p.bLen]
	hist := func(m int, counts []uint64, total float64) {
		var n uint64
		for _, c := range counts {
			n += c
		}
		if n == 0 {
			return
		}
		hp := b.graphMetric(o, m).Histogram().DataPoints().AppendEmpty()
		b.attrs.CopyTo(hp.Attributes())
		hp.SetStartTimestamp(start)
		hp.SetTimestamp(b.now)
		hp.SetCount(n)
		hp.SetSum(total)
		hp.ExplicitBounds().FromRaw(g.bounds)
		hp.BucketCounts().FromRaw(counts)
	}
	hist(graphServer, counts[g.nb:], p.sum2)
	hist(graphClient, counts[:g.nb], p.sum)
}
