package redmetricsconnector

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// Random traffic (client and server spans of few keys, so sides collide
// and duplicate; random batch sizes and orders, some past the batch's own
// table; stores of 20, 300 and 5000 spans; clock jumps across the TTL), then shutdown: every client-side span is
// counted exactly once as paired, unpaired or dropped, and so is every
// server-side span; every unpaired client span made one virtual edge.
func TestServiceGraphAccountingRandom(t *testing.T) {
	for seed := uint64(1); seed <= 40; seed++ {
		t.Run(fmt.Sprint("seed=", seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, seed*7))
			cfg := sgConfig()
			cfg.ServiceGraph.Store.MaxItems = []int{20, 300, 5000}[seed%3]
			c, sink, clk := newTestConnector(t, cfg)
			require.NoError(t, c.Start(context.Background(), nil))
			var clients, servers int64
			for b := 0; b < 60; b++ {
				td := ptrace.NewTraces()
				n := rng.IntN(40)
				if rng.IntN(10) == 0 {
					n = batchPairs + 76 // past the batch's own table
				}
				for ; n > 0; n-- {
					rs := td.ResourceSpans().AppendEmpty()
					sp := rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
					kk := rng.IntN(30 + int(seed%3)*500)
					k := byte(kk)
					var tid pcommon.TraceID
					tid[0], tid[1], tid[15] = k, byte(kk>>8), k*3
					sp.SetTraceID(tid)
					if rng.IntN(2) == 0 {
						rs.Resource().Attributes().PutStr("service.name", "front")
						sp.SetKind([]ptrace.SpanKind{ptrace.SpanKindClient, ptrace.SpanKindProducer}[rng.IntN(2)])
						sp.SetSpanID(pcommon.SpanID{1, k, byte(kk >> 8)})
						clients++
					} else {
						rs.Resource().Attributes().PutStr("service.name", "back")
						sp.SetKind([]ptrace.SpanKind{ptrace.SpanKindServer, ptrace.SpanKindConsumer}[rng.IntN(2)])
						sp.SetSpanID(pcommon.SpanID{2, k, byte(b)})
						sp.SetParentSpanID(pcommon.SpanID{1, k, byte(kk >> 8)})
						servers++
					}
					if rng.IntN(5) == 0 {
						sp.Status().SetCode(ptrace.StatusCodeError)
					}
				}
				require.NoError(t, c.ConsumeTraces(context.Background(), td))
				switch rng.IntN(4) {
				case 0:
					clk.Advance(time.Duration(rng.IntN(3000)) * time.Millisecond)
				case 1:
					flushNow(t, c, clk, time.Duration(rng.IntN(3000))*time.Millisecond)
				}
			}
			require.NoError(t, c.Shutdown(context.Background()))
			require.Equal(t, 0, c.sg.len())
			last := sink.AllMetrics()[len(sink.AllMetrics())-1] // cumulative: the last flush has the totals
			var paired, virtualFromClients int64
			for e, s := range edges(t, last) {
				switch {
				case e.conn != connVirtualNode:
					paired += s.requests
				case e.client == "front":
					virtualFromClients += s.requests
				}
			}
			sum := func(name string, side string) int64 {
				var n int64
				for k, v := range sideCounts(last, name) {
					if (side == "client" && k[:1] != "/") || (side == "server" && k[:1] == "/") {
						n += v
					}
				}
				return n
			}
			uc, us := sum("traces_service_graph_unpaired_spans_total", "client"), sum("traces_service_graph_unpaired_spans_total", "server")
			dc, ds := sum("traces_service_graph_dropped_spans_total", "client"), sum("traces_service_graph_dropped_spans_total", "server")
			require.Equal(t, clients, paired+uc+dc, "client side: paired %d unpaired %d dropped %d", paired, uc, dc)
			require.Equal(t, servers, paired+us+ds, "server side: paired %d unpaired %d dropped %d", paired, us, ds)
			require.Equal(t, uc, virtualFromClients, "each unpaired client span is one virtual edge")
		})
	}
}
