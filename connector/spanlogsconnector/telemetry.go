package spanlogsconnector // import "github.com/otelcsp/otelcsp/connector/spanlogsconnector"

import (
	"context"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/otelcsp/otelcsp/connector/spanlogsconnector/internal/metadata"
)

// telemetry records the connector's own metrics (declared in
// metadata.yaml). Every metric carries `connector`, the component ID (as
// core's helpers label theirs: without it two spanlogs connectors of one
// collector would add up into one series), and the per-rule ones `rule`.
// The attribute sets are built once here: passing a pre-built option
// slice with ... does not allocate, building the option per call would.
type telemetry struct {
	tb     *metadata.TelemetryBuilder
	byRule [][]metric.AddOption // indexed by rule.index
	own    metric.AddOption     // connector only
}

func newTelemetry(set component.TelemetrySettings, id component.ID, rules []*rule) (*telemetry, error) {
	tb, err := metadata.NewTelemetryBuilder(set)
	if err != nil {
		return nil, err
	}
	self := attribute.String("connector", id.String())
	t := &telemetry{
		tb:     tb,
		byRule: make([][]metric.AddOption, len(rules)),
		own:    metric.WithAttributeSet(attribute.NewSet(self)),
	}
	for _, r := range rules {
		t.byRule[r.index] = []metric.AddOption{metric.WithAttributeSet(attribute.NewSet(self, attribute.String("rule", r.name)))}
	}
	return t, nil
}

// counts are one batch's metric counts, added once per rule rather than
// once per record.
type counts struct {
	emitted    []int64 // by rule.index
	suppressed []int64 // by rule.index
	evicted    int64
}

func newCounts(rules int) counts {
	return counts{emitted: make([]int64, rules), suppressed: make([]int64, rules)}
}

func (c *counts) reset() {
	clear(c.emitted)
	clear(c.suppressed)
	c.evicted = 0
}

// batch adds a batch's counts. Records count as emitted when built,
// whether or not the next consumer then accepts them (those it refuses are
// counted again by refused).
func (t *telemetry) batch(ctx context.Context, c *counts) {
	for i := range c.emitted {
		if n := c.emitted[i]; n > 0 {
			t.tb.SpanlogsRecordsEmitted.Add(ctx, n, t.byRule[i]...)
		}
		if n := c.suppressed[i]; n > 0 {
			t.tb.SpanlogsRecordsSuppressed.Add(ctx, n, t.byRule[i]...)
		}
	}
	if c.evicted > 0 {
		t.tb.SpanlogsFingerprintsEvicted.Add(ctx, c.evicted, t.own)
	}
}

// refused counts a refused batch by rule: every record of the batch was
// refused, so its emitted counts are its refused records.
func (t *telemetry) refused(ctx context.Context, c *counts) {
	for i, n := range c.emitted {
		if n > 0 {
			t.tb.SpanlogsRecordsRefused.Add(ctx, n, t.byRule[i]...)
		}
	}
}

func (t *telemetry) shutdown() { t.tb.Shutdown() }
