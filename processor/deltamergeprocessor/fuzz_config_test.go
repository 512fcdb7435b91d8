package deltamergeprocessor

import (
	"context"
	"strings"
	"testing"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/processor/processortest"

	"github.com/otelcsp/otelcsp/internal/fuzzconfig"
	"github.com/otelcsp/otelcsp/processor/deltamergeprocessor/internal/metadata"
)

// FuzzConfig: whatever the config, unmarshalling and validation return
// errors rather than panic, and a config that validates builds a processor
// that starts, merges a few points, flushes and shuts down.
func FuzzConfig(f *testing.F) {
	fuzzconfig.Run(f, fuzzconfig.Target[*Config]{
		NewConfig: NewFactory().CreateDefaultConfig,
		Seeds: []string{
			"writer_attribute: [a, b]",
			"writer_attribute: {a: b}",
			"writer_attribute: 3",
			"interval: 1ns",
			"interval: 2562047h",
			"interval: 99999999999999999999h",
			"max_streams: 9223372036854775807",
			"max_streams: 99999999999999999999999",
			"max_streams: 1\nmax_writers_per_stream: 1",
			"stream_expiration: 1ns\ninterval: 1ns",
			"stream_expiration: -9223372036854775808ns",
			"max_writers_per_stream: -2147483648",
			"writer_attribute: otel.metric.overflow",
			"writer_attribute: service.name",
			"writer_attribute: " + strings.Repeat("[", 200) + strings.Repeat("]", 200),
		},
		Build: func(ctx context.Context, t *testing.T, cfg *Config) (fuzzconfig.Built, bool) {
			p, err := NewFactory().CreateMetrics(ctx, processortest.NewNopSettings(metadata.Type), cfg, new(consumertest.MetricsSink))
			if err != nil {
				t.Fatalf("create with a valid config: %v", err)
			}
			// Starting only runs the flush ticker: no port, no network.
			return fuzzconfig.Built{
				Components: []component.Component{p},
				Use: func(ctx context.Context) error {
					for _, md := range []pmetric.Metrics{delta("a", 0, 10, 1), delta("b", 0, 10, 1), delta("a", 0, 10, 1), gauge()} {
						if err := p.ConsumeMetrics(ctx, md); err != nil {
							return err
						}
					}
					return nil
				},
			}, true
		},
	})
}
