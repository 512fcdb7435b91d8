package syntheticreceiver

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/receiver/receivertest"

	"github.com/otelcsp/otelcsp/internal/fuzzconfig"
	"github.com/otelcsp/otelcsp/receiver/syntheticreceiver/internal/metadata"
)

// FuzzConfig: whatever the config, unmarshalling and validation return
// errors rather than panic, and a config that validates creates the traces
// and logs receivers (one shared generator) whose generator builds a couple
// of traces, and their logs, without panicking. The receiver is not
// started: its generating goroutine would only repeat that at a rate.
func FuzzConfig(f *testing.F) {
	now := time.Unix(1_700_000_000, 0)
	fuzzconfig.Run(f, fuzzconfig.Target[*Config]{
		NewConfig: NewFactory().CreateDefaultConfig,
		Seeds: []string{
			// Wrong types.
			"rate: fast",
			"services: api",
			"services: [api]",
			"services: [{name: a, operations: {name: x}}]",
			"services: [{name: a, instances: many, operations: [{name: x}]}]",
			"canary: true",
			"seed: -1",
			// Huge, negative and non-finite numbers.
			"rate: .nan",
			"rate: .inf",
			"rate: 1e308\nbatch_size: 100000\nmax_traces: 9223372036854775807",
			"rate: 5e-324\nbatch_size: 2147483648",
			"seed: 18446744073709551615",
			"services: [{name: a, operations: [{name: x, latency: {median: -1s, p99: -2s}, error_ratio: 2, weight: -1}]}]",
			"services: [{name: a, operations: [{name: x, latency: {median: 2562047h, p99: 2562047h}, error_ratio: .nan, weight: .inf}]}]",
			"services: [{name: a, operations: [{name: x, latency: {median: 1ns, p99: 2562047h}, weight: 1e-300}]}]",
			"services: [{name: a, operations: [{name: x, latency: {median: 1s, p99: 1ns}}]}]",
			"services: [{name: a, instances: 1000, operations: [{name: x, kind: server}]}]",
			// Fan-out at the limits, and cycles.
			"services: [{name: a, operations: [{name: x, calls: [{operation: y, count: 1000}]}, {name: y, calls: [{operation: z, count: 10}]}, {name: z}]}]",
			"services: [{name: a, operations: [{name: x, calls: [{operation: x}]}]}]",
			"services: [{name: a, operations: [{name: x, calls: [{service: b, operation: y}]}]}, {name: b, operations: [{name: y, calls: [{service: a, operation: x}]}]}]",
			"services: [{name: a, operations: [{name: x, calls: [{operation: nope, count: -1}]}]}]",
			"services: [{name: a, operations: [{name: x, kind: weird, events: [{name: ''}], exception: {type: ''}}]}]",
			"services: [{name: a, resource_attributes: {service.name: b, k: [1, {a: b}], n: null}, operations: [{name: x, attributes: {a: {b: [1.5, true]}}}]}]",
			"canary: {enabled: true, generator_id: ''}\nservices: [{name: a, operations: [{name: x}]}]",
			// Deep nesting.
			"services: [{name: a, operations: [{name: x, attributes: " + strings.Repeat("{a: ", 100) + "b" + strings.Repeat("}", 100) + "}]}]",
			"services: " + strings.Repeat("[", 200) + strings.Repeat("]", 200),
		},
		// The receiver is not started: its generating goroutine would only
		// repeat what Use does at a rate. Shutdown without Start forgets
		// the shared instance.
		Build: func(ctx context.Context, t *testing.T, cfg *Config) (fuzzconfig.Built, bool) {
			set := receivertest.NewNopSettings(metadata.Type)
			tr, err := NewFactory().CreateTraces(ctx, set, cfg, consumertest.NewNop())
			if err != nil {
				return fuzzconfig.Built{}, false
			}
			b := fuzzconfig.Built{Components: []component.Component{tr}, NoStart: true}
			lr, err := NewFactory().CreateLogs(ctx, set, cfg, consumertest.NewNop())
			if err != nil {
				_ = tr.Shutdown(ctx)
				t.Fatalf("traces receiver created, logs receiver refused: %v", err)
			}
			sr, ok := tr.(*sharedReceiver)
			if !ok || lr != tr {
				_ = tr.Shutdown(ctx)
				t.Fatalf("traces and logs receivers of one config are not one shared receiver: %T, %T", tr, lr)
			}
			b.Use = func(context.Context) error {
				td, spans := sr.gen.generate(min(cfg.BatchSize, 2), now)
				if got := td.SpanCount(); got != spans || spans < 1 {
					return fmt.Errorf("generator reports %d spans, built %d", spans, got)
				}
				_, _ = eventsToLogs(td)
				return nil
			}
			return b, true
		},
	})
}
