package spanlogsconnector

import (
	"context"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/connector/connectortest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/otelcsp/otelcsp/connector/spanlogsconnector/internal/metadata"
	"github.com/otelcsp/otelcsp/internal/fuzzconfig"
)

// FuzzConfig: whatever the config, unmarshalling and validation return
// errors rather than panic, and a config that validates builds a connector
// that starts, turns error, exception and slow spans into records and
// shuts down.
func FuzzConfig(f *testing.F) {
	td := configProbeTraces()
	spans := td.SpanCount()
	fuzzconfig.Run(f, fuzzconfig.Target[*Config]{
		NewConfig: NewFactory().CreateDefaultConfig,
		Seeds: []string{
			// Wrong types.
			"rules: 3",
			"rules: {type: errors}",
			"rules: [errors]",
			"rules: [{type: slow, threshold: fast}]",
			"rules: [{type: errors, services: checkout}]",
			"attributes: [a]",
			"burst: many",
			// Huge, negative and non-finite numbers.
			"rate_per_fingerprint: .nan",
			"rate_per_fingerprint: .inf\nburst: 9223372036854775807",
			"rate_per_fingerprint: 1e308\nburst: 1",
			"rate_per_fingerprint: -1\nburst: 0\nmax_fingerprints: -5",
			"max_fingerprints: 9223372036854775807",
			"rules: [{type: exceptions, rate_per_fingerprint: .nan, burst: -1}]",
			"rules: [{type: slow, threshold: -1s}]",
			"rules: [{type: slow, threshold: 2562047h, thresholds: [{threshold: 0s}]}]",
			"rules: [{type: slow, threshold: 1ns, thresholds: [{service: '*', span_name: '*', threshold: -1ns}]}]",
			// Hostile globs and templates.
			"rules: [{type: all, services: ['" + strings.Repeat("*a", 50) + "'], span_names: ['', '?', '**']}]",
			"rules: [{type: all, body: '{{{}}}{attr:}{resource:}{" + strings.Repeat("x", 100) + "}'}]",
			"rules: [{type: all, span_kinds: [server, nope, '']}]",
			"rules: [{type: errors, severity: loud}, {type: errors}, {type: errors, name: errors}]",
			"rules: [{type: all, attributes: {include: ['['], exclude: ['*']}}]",
			// Deep nesting.
			"rules: " + strings.Repeat("[", 200) + strings.Repeat("]", 200),
			"attributes: " + strings.Repeat("{a: ", 100) + "b" + strings.Repeat("}", 100),
		},
		Build: func(ctx context.Context, _ *testing.T, cfg *Config) (fuzzconfig.Built, bool) {
			sink := new(consumertest.LogsSink)
			c, err := NewFactory().CreateTracesToLogs(ctx, connectortest.NewNopSettings(metadata.Type), cfg, sink)
			return fuzzconfig.Built{
				Components: []component.Component{c},
				Use:        func(ctx context.Context) error { return c.ConsumeTraces(ctx, td) },
				// A rule makes at most one record a span, or one an
				// exception event (the probe's spans carry at most two).
				Check: func(t *testing.T) {
					if n, most := sink.LogRecordCount(), 3*spans*len(cfg.Rules); len(cfg.Rules) > 0 && n > most {
						t.Fatalf("%d records from %d spans and %d rules", n, spans, len(cfg.Rules))
					}
				},
			}, err == nil
		},
	})
}

// configProbeTraces is a small batch that every rule type can match: error
// spans with and without exception events, slow spans of several kinds and
// services, a span without a service.
func configProbeTraces() ptrace.Traces {
	td := ptrace.NewTraces()
	g := &idGen{}
	addSpans(td, g,
		"checkout",
		errSpan("POST /pay"),
		excSpan("GET /x", "TimeoutError", "at a\nat b"),
		spanSpec{name: "SELECT * FROM t", kind: ptrace.SpanKindClient, dur: 2 * time.Second, attrs: map[string]any{"http.route": "/r", "user.id": int64(7)}},
		spanSpec{name: "batch job", kind: ptrace.SpanKindConsumer, dur: time.Hour, status: ptrace.StatusCodeOk,
			events: []eventSpec{{name: "exception", excType: "E"}, {name: "exception", msg: "no type"}}},
	)
	addSpans(td, g, "payment-eu", errSpan("POST /payments"), spanSpec{name: "instant", kind: ptrace.SpanKindInternal})
	addSpans(td, g, "db-1", spanSpec{name: "SELECT 1", kind: ptrace.SpanKindClient, dur: 300 * time.Millisecond})
	addSpans(td, g, "", errSpan("orphan"))
	return td
}
