// Copyright The otelcsp Authors
// SPDX-License-Identifier: Apache-2.0

package breakerextension

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/extension"
	"go.opentelemetry.io/collector/extension/extensiontest"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/otelcsp/otelcsp/extension/breakerextension/internal/metadata"
	"github.com/otelcsp/otelcsp/internal/fuzzconfig"
)

// FuzzConfig: whatever the config, unmarshalling and validation return
// errors rather than panic, and a config that validates builds an extension
// whose breakers, for keys matching every configured glob, take a run of
// failures and successes and only ever refuse with ErrOpen (retryable).
// The extension is started only when it serves no HTTP endpoint.
func FuzzConfig(f *testing.F) {
	fuzzconfig.Run(f, fuzzconfig.Target[*Config]{
		NewConfig: NewFactory().CreateDefaultConfig,
		Seeds: []string{
			// Wrong types.
			"policies: [strict]",
			"policies: {strict: 3}",
			"keys: [a, b]",
			"keys: {'*': {consecutive_failures: 1}}",
			"manual: open",
			"window: fast",
			"http: 4317",
			// Huge, negative and non-finite numbers.
			"consecutive_failures: 9223372036854775807\nmin_calls: 9223372036854775807",
			"window: 2562047h\nwindow_buckets: 2147483647",
			"window: 1ns\nwindow_buckets: 1000000",
			"open_duration: 2562047h\nmax_open_duration: 2562047h\nbackoff_multiplier: 1e308",
			"open_duration: 1ns\nmax_open_duration: 1ns\nbackoff_multiplier: 1",
			"failure_ratio: .nan\nslow_call_ratio: .nan\njitter: .nan\nbackoff_multiplier: .nan",
			"failure_ratio: .inf\nbackoff_multiplier: .inf",
			"failure_ratio: -0.0\nslow_call_ratio: 1e-300\nslow_call_duration: 1ns",
			"half_open_permits: 2147483648\nsuccess_threshold: 9223372036854775807",
			"ramp_up: 1ns\nidle_expiry: 1ns",
			"ramp_up: 2562047h\nidle_expiry: -1s",
			"policies: {p: {open_duration: -1s, window_buckets: -3}}\nkeys: {'*': p}",
			// Hostile globs.
			"keys: {'': p, '" + strings.Repeat("*?", 50) + "': p}\npolicies: {p: {}}",
			"manual: {'*': forced_open, '?': disabled, '**': metrics_only}",
			"manual: {'*': FORCED_OPEN}",
			// Outlier detection at its limits.
			"outlier_detection: {interval: 1ms, base_ejection_time: 1ns, max_ejection_time: 1ns, minimum_hosts: 1, request_volume: 1}",
			"outlier_detection: {groups: ['', '*', '?'], stdev_factor: 1e308, max_ejection_percent: 100, enforcing_failure_percentage: 100, threshold: 0}",
			"outlier_detection: {groups: backend}",
			// Deep nesting.
			"policies: " + strings.Repeat("{a: ", 100) + "b" + strings.Repeat("}", 100),
			"keys: " + strings.Repeat("[", 200) + strings.Repeat("]", 200),
		},
		Build: func(ctx context.Context, _ *testing.T, cfg *Config) (fuzzconfig.Built, bool) {
			ext, err := NewFactory().Create(ctx, extensiontest.NewNopSettings(metadata.Type), cfg)
			if err != nil {
				return fuzzconfig.Built{}, false
			}
			return fuzzconfig.Built{
				Components: []component.Component{ext},
				NoStart:    cfg.HTTP.HasValue(), // it would listen
				Use:        func(context.Context) error { return exerciseBreakers(ext, cfg) },
			}, true
		},
	})
}

// exerciseBreakers takes the breakers of keys matching every configured
// glob through a run of failures and successes: they may only ever refuse
// with ErrOpen (retryable).
func exerciseBreakers(ext extension.Extension, c *Config) error {
	p, ok := ext.(Provider)
	if !ok {
		return fmt.Errorf("%T is not a Provider", ext)
	}
	failure := status.Error(codes.Unavailable, "backend down")
	keys := []string{"backend:4317", ""}
	for _, glob := range slices.Sorted(maps.Keys(c.Keys)) {
		keys = append(keys, strings.NewReplacer("*", "x", "?", "y").Replace(glob))
	}
	for _, glob := range slices.Sorted(maps.Keys(c.Manual)) {
		keys = append(keys, strings.NewReplacer("*", "", "?", "q").Replace(glob))
	}
	for _, k := range keys {
		b := p.Breaker(k)
		for i := range 40 {
			permit, err := b.Allow()
			if err != nil {
				if !errors.Is(err, ErrOpen) || consumererror.IsPermanent(err) {
					return fmt.Errorf("key %q: refused with %w, want retryable ErrOpen", k, err)
				}
				continue
			}
			if i < 25 {
				permit.Done(failure)
			} else {
				permit.Done(nil)
			}
		}
		_ = b.State().String()
	}
	return nil
}
