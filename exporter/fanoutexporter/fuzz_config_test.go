package fanoutexporter

import (
	"context"
	"strings"
	"testing"

	"go.opentelemetry.io/collector/exporter/exportertest"

	"github.com/otelcsp/otelcsp/exporter/fanoutexporter/internal/metadata"
	"github.com/otelcsp/otelcsp/internal/fuzzconfig"
)

// FuzzConfig: whatever the config, unmarshalling and validation return
// errors rather than panic, and a config that validates creates the traces,
// metrics and logs exporters or refuses one with an error (a routing key
// that does not apply to that signal). They are only created and shut down:
// starting would resolve and dial the backends. The ring of a static
// backend list is built too, since its weights come from the config.
func FuzzConfig(f *testing.F) {
	fuzzconfig.Run(f, fuzzconfig.Target[*Config]{
		NewConfig: NewFactory().CreateDefaultConfig,
		Seeds: []string{
			// Wrong types.
			"routing_key: [traceID]",
			"routing_attributes: tenant",
			"resolver: [static]",
			"resolver: {static: {endpoints: a:4317}}",
			"resolver: {static: {endpoints: [a:4317], weights: [2]}}",
			"resolver: {dns: {hostname: [a], port: 4317}}",
			"breaker: {}",
			"breaker: 'not/a valid/id'",
			"max_ejected_percent: half",
			"sending_queue: yes",
			// Huge, negative and non-finite numbers.
			"max_ejected_percent: 9223372036854775807\nresolver: {static: {endpoints: [a:4317]}}",
			"max_ejected_percent: -1\nresolver: {static: {endpoints: [a:4317]}}",
			"resolver: {static: {endpoints: [a:4317, b:4317], weights: {a:4317: .nan, b:4317: .inf}}}",
			"resolver: {static: {endpoints: [a:4317, b:4317], weights: {a:4317: 1e-300, b:4317: 1000000}}}",
			"resolver: {static: {endpoints: ['a:0', 'b:65536', 'c:-1', '[::1]:4317', ':4317']}}",
			"resolver: {dns: {hostname: a, port: '0', interval: 1ns, timeout: -1ns}}",
			"resolver: {dns: {hostname: a, interval: 2562047h, timeout: 2562047h}}",
			"resolver: {file: {path: '', interval: -1s}}",
			"resolver: {static: {endpoints: [a:4317]}}\nsending_queue: {enabled: true, queue_size: -1, num_consumers: 0}",
			"resolver: {static: {endpoints: [a:4317]}}\nsending_queue: {enabled: true, queue_size: 9223372036854775807}",
			"resolver: {static: {endpoints: [a:4317]}}\nretry_on_failure: {initial_interval: -1s, max_interval: 0s, multiplier: .nan}",
			"resolver: {static: {endpoints: [a:4317]}}\nprotocol: {otlp: {timeout: -1s, compression: zip, tls: {ca_file: /nope}}}",
			"resolver: {static: {endpoints: [a:4317]}}\nprotocol: {otlphttp: {timeout: 2562047h, endpoint: 'http://x'}}",
			"routing_key: attributes\nrouting_attributes: ['', '', '" + strings.Repeat("x", 1000) + "']\nresolver: {static: {endpoints: [a:4317]}}",
			"routing_key: metric\nresolver: {static: {endpoints: [a:4317]}}",
			// Deep nesting.
			"resolver: " + strings.Repeat("{static: ", 100) + "{}" + strings.Repeat("}", 100),
			"routing_attributes: " + strings.Repeat("[", 200) + strings.Repeat("]", 200),
		},
		// The exporters are only created and shut down: starting would
		// resolve and dial the backends.
		Build: func(ctx context.Context, t *testing.T, cfg *Config) (fuzzconfig.Built, bool) {
			set := exportertest.NewNopSettings(metadata.Type)
			fact := NewFactory()
			b := fuzzconfig.Built{NoStart: true, Check: func(t *testing.T) { checkStaticRing(t, cfg) }}
			if e, err := fact.CreateTraces(ctx, set, cfg); err == nil {
				b.Components = append(b.Components, e)
			}
			if e, err := fact.CreateMetrics(ctx, set, cfg); err == nil {
				b.Components = append(b.Components, e)
			}
			if e, err := fact.CreateLogs(ctx, set, cfg); err == nil {
				b.Components = append(b.Components, e)
			}
			// Every routing key that validates applies to some signal.
			if len(b.Components) == 0 {
				t.Fatalf("a valid config (routing_key %q) builds no exporter", cfg.RoutingKey)
			}
			return b, true
		},
	})
}

// checkStaticRing builds the ring of a static backend list, since its
// weights come from the config: every slot has an owner among the backends.
func checkStaticRing(t *testing.T, c *Config) {
	if !c.Resolver.Static.HasValue() {
		return
	}
	specs := staticSpecs(*c.Resolver.Static.Get())
	r := newRing(specs)
	if r.size() != len(specs) {
		t.Fatalf("ring of %d backends from %d endpoints", r.size(), len(specs))
	}
	for s := uint32(0); s < 1<<slotBits && len(specs) > 0; s += 997 {
		if o := r.owner(s); o < 0 || o >= len(specs) {
			t.Fatalf("slot %d owned by backend %d of %d", s, o, len(specs))
		}
	}
}
