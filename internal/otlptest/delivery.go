package otlptest

import "go.opentelemetry.io/collector/pdata/pcommon"

// Delivery is what a set of servers accepted, summed: the accounting a
// delivery test checks (every span arrived, how many twice, and whether a
// trace stayed on one backend).
type Delivery struct {
	Spans      map[pcommon.SpanID]int  // span ID → times accepted, over all servers
	TraceHomes map[pcommon.TraceID]int // trace ID → number of servers its spans reached
}

// Collect sums what the servers accepted so far.
func Collect(servers ...*Server) Delivery {
	d := Delivery{Spans: map[pcommon.SpanID]int{}, TraceHomes: map[pcommon.TraceID]int{}}
	for _, s := range servers {
		s.mu.Lock()
		for id, c := range s.spans {
			d.Spans[id] += c
		}
		for id := range s.traces {
			d.TraceHomes[id]++
		}
		s.mu.Unlock()
	}
	return d
}

// Total is the number of span deliveries, duplicates included.
func (d Delivery) Total() int {
	n := 0
	for _, c := range d.Spans {
		n += c
	}
	return n
}

// Duplicates is the number of deliveries beyond the first of each span.
func (d Delivery) Duplicates() int { return d.Total() - len(d.Spans) }
