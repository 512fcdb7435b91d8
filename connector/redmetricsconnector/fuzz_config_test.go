package redmetricsconnector

import (
	"context"
	"strings"
	"testing"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/connector/connectortest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/otelcsp/otelcsp/connector/redmetricsconnector/internal/metadata"
	"github.com/otelcsp/otelcsp/internal/fuzzconfig"
)

// FuzzConfig: whatever the config, unmarshalling and validation return
// errors rather than panic, and a config that validates builds a connector
// that starts, aggregates a few spans, flushes and shuts down.
func FuzzConfig(f *testing.F) {
	td := configProbeTraces()
	fuzzconfig.Run(f, fuzzconfig.Target[*Config]{
		NewConfig: NewFactory().CreateDefaultConfig,
		Seeds: []string{
			// Wrong types.
			"dimensions: 3",
			"dimensions: [a, b]",
			"histogram: [1, 2]",
			"histogram: {explicit: {buckets: [1, two, 3]}}",
			"cardinality_limit: lots",
			"exemplars: true",
			"events: {enabled: yes, dimensions: {name: x}}",
			"namespace: {a: b}",
			// Huge and negative numbers.
			"cardinality_limit: 9223372036854775807",
			"cardinality_limit: 99999999999999999999999",
			"exemplars: {enabled: true, max_per_data_point: 2147483647}",
			"histogram: {exponential: {max_size: 2147483647}}",
			"histogram: {exponential: {max_size: -2147483648}}",
			"histogram: {explicit: {buckets: [-1ns, 0s, 2562047h]}}",
			"histogram: {explicit: {buckets: []}}",
			"metrics_flush_interval: 1ns",
			"metrics_flush_interval: -5s",
			"series_expiration: 1ns\nmetrics_expiration: -1h",
			"aggregation_cardinality_limit: 1\ncardinality_limit: 0",
			// Dimensions that collide with what the connector derives.
			"dimensions: [{name: service.name}]",
			"dimensions: [{name: otel.metric.overflow}]",
			"dimensions: [{name: x, default: ''}]\nexclude_dimensions: [x, span.name, span.name]",
			"exclude_dimensions: [service.name, span.name, span.kind, status.code]",
			"include_instrumentation_scope: ['']\nresource_metrics_key_attributes: ['']",
			// Deep nesting.
			"namespace: " + strings.Repeat("[", 200) + strings.Repeat("]", 200),
			"dimensions: " + strings.Repeat("- ", 100) + "x",
		},
		Build: func(ctx context.Context, _ *testing.T, cfg *Config) (fuzzconfig.Built, bool) {
			c, err := NewFactory().CreateTracesToMetrics(ctx, connectortest.NewNopSettings(metadata.Type), cfg, new(consumertest.MetricsSink))
			// Starting only runs the flush ticker: no port, no network.
			return fuzzconfig.Built{
				Components: []component.Component{c},
				Use:        func(ctx context.Context) error { return c.ConsumeTraces(ctx, td) },
			}, err == nil
		},
	})
}

// configProbeTraces is a small batch that reaches every config-dependent
// path: dimensions from span and resource, an instrumentation scope, events,
// exemplars (trace IDs), a sampled span and durations across bucket ranges.
func configProbeTraces() ptrace.Traces {
	var specs []spanSpec
	// Two spans a series, far apart, so a histogram has a range to cover.
	for i, d := range []float64{0, 0.001, 3, 700, 20_000, 1e9} {
		specs = append(specs, spanSpec{
			service: "svc", name: "op", kind: ptrace.SpanKind(i % 3), status: ptrace.StatusCode(i % 3), durMs: d,
			attrs:    map[string]any{"http.request.method": "GET", "x": int64(i), "a": true},
			resAttrs: map[string]any{"deployment.environment": "prod", "telemetry.sdk.language": "go"},
			traceID:  byte(i + 1), traceState: "ot=th:8",
			events: []map[string]any{{"exception.type": "E"}, {}},
			scope:  "io.opentelemetry.http", scopeVer: "1.0",
		})
	}
	specs = append(specs, spanSpec{name: "no service"})
	return buildTraces(specs...)
}
