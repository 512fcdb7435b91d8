// Copyright The otelcsp Authors
// SPDX-License-Identifier: Apache-2.0

package breakerextension

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"

	"github.com/otelcsp/otelcsp/extension/breakerextension/internal/metadata"
	"github.com/otelcsp/otelcsp/internal/configtest"
)

func loadConfig(t *testing.T, name string) (*Config, error) {
	t.Helper()
	cfg := createDefaultConfig()
	return cfg, configtest.Load(t, component.NewIDWithName(metadata.Type, name).String(), cfg)
}

func TestConfigDefaults(t *testing.T) {
	cfg, err := loadConfig(t, "")
	require.NoError(t, err)
	want := createDefaultConfig()
	assert.Equal(t, want, cfg)
	assert.Equal(t, 5, cfg.ConsecutiveFailures)
	assert.InDelta(t, 0.5, cfg.FailureRatio, 0)
	assert.Equal(t, 10*time.Second, cfg.Window)
	assert.Equal(t, 10, cfg.WindowBuckets)
	assert.Equal(t, 20, cfg.MinCalls)
	assert.Equal(t, time.Duration(0), cfg.SlowCallDuration)
	assert.Equal(t, time.Second, cfg.OpenDuration)
	assert.Equal(t, time.Minute, cfg.MaxOpenDuration)
	assert.Equal(t, 1, cfg.HalfOpenPermits)
	assert.Equal(t, 2, cfg.SuccessThreshold)
	assert.Equal(t, 10*time.Minute, cfg.IdleExpiry)
	assert.Equal(t, 100, cfg.MaxManualKeys)
	assert.False(t, cfg.HTTP.HasValue(), "the HTTP endpoint is off by default")
	assert.False(t, cfg.OutlierDetection.HasValue(), "outlier detection is off by default")
	require.NoError(t, componentValidate(cfg))
}

func componentValidate(cfg *Config) error { return confmap.Validate(cfg) }

func TestConfigAllKeys(t *testing.T) {
	cfg, err := loadConfig(t, "all")
	require.NoError(t, err)
	def := PolicyConfig{
		ConsecutiveFailures: 3, FailureRatio: 0.25, Window: 30 * time.Second, WindowBuckets: 30,
		MinCalls: 50, SlowCallDuration: 2 * time.Second, SlowCallRatio: 0.8,
		OpenDuration: 500 * time.Millisecond, MaxOpenDuration: 2 * time.Minute,
		BackoffMultiplier: 1.5, Jitter: 0.1, HalfOpenPermits: 4, SuccessThreshold: 3, RampUp: 20 * time.Second,
	}
	assert.Equal(t, def, cfg.PolicyConfig)
	strict := def
	strict.ConsecutiveFailures = 1
	patient := def
	patient.OpenDuration = 5 * time.Second
	patient.RampUp = 0
	assert.Equal(t, map[string]PolicyConfig{"strict": strict, "patient": patient}, cfg.Policies,
		"named policies start from the default policy")
	assert.Equal(t, map[string]string{"critical-*": "strict", "*.batch.svc:4317": "patient"}, cfg.Keys)
	assert.Equal(t, map[string]string{"canary-*": "metrics_only"}, cfg.Manual)
	assert.Equal(t, time.Hour, cfg.IdleExpiry)
	assert.Equal(t, 7, cfg.MaxManualKeys)
	require.True(t, cfg.OutlierDetection.HasValue())
	assert.Equal(t, OutlierDetectionConfig{
		Groups: []string{"backend-*", "*"}, Interval: 5 * time.Second, StdevFactor: 2.5, RequestVolume: 50,
		MinimumHosts: 3, EnforcingSuccessRate: 80, Threshold: 70, EnforcingFailurePercentage: 100,
		BaseEjectionTime: 10 * time.Second, MaxEjectionTime: time.Minute, Jitter: 0.3, MaxEjectionPercent: 20,
	}, *cfg.OutlierDetection.Get())
	require.True(t, cfg.HTTP.HasValue())
	assert.Equal(t, "127.0.0.1:0", cfg.HTTP.Get().NetAddr.Endpoint)
}

func TestConfigHTTPDefaultEndpoint(t *testing.T) {
	cfg := createDefaultConfig()
	assert.Equal(t, DefaultHTTPEndpoint, cfg.HTTP.GetOrInsertDefault().NetAddr.Endpoint)
	assert.Contains(t, DefaultHTTPEndpoint, "127.0.0.1:")
}

func TestConfigInvalid(t *testing.T) {
	for _, tc := range []struct {
		name string
		errs []string
	}{
		{"typo", []string{"consecutive_failure"}},
		{"bad_ratio", []string{`"failure_ratio": must be in [0, 1], got 1.5`}},
		{"unknown_policy", []string{`"keys::*": unknown policy "nope"`}},
		{"bad_manual", []string{`"manual::x": unknown manual state "open"`}},
		{"bad_durations", []string{`"max_open_duration": must be >= open_duration (2s), got 1s`, `"window": must be > 0, got 0s`}},
		{"bad_counts", []string{
			`"consecutive_failures": must be >= 0, got -1`, `"half_open_permits": must be >= 1, got 0`,
			`"success_threshold": must be >= 1, got 0`, `"min_calls": must be >= 1, got 0`,
			`"window_buckets": must be in [1, 1000], got 0`,
		}},
		{"bad_outlier", []string{
			`"outlier_detection::groups": must list at least one key glob`, `"outlier_detection::interval": must be >= 1ms, got 0s`,
			`"outlier_detection::stdev_factor": must be >= 0, got -1`, `"outlier_detection::request_volume": must be >= 1, got 0`,
			`"outlier_detection::minimum_hosts": must be >= 1, got 0`,
			`"outlier_detection::enforcing_success_rate": must be a percentage in [0, 100], got 101`,
			`"outlier_detection::threshold": must be a percentage in [0, 100], got -5`,
			`"outlier_detection::max_ejection_percent": must be a percentage in [0, 100], got 200`,
			`"outlier_detection::max_ejection_time": must be >= base_ejection_time (30s), got 10s`,
			`"outlier_detection::jitter": must be in [0, 1), got 1`,
		}},
		{"outlier_typo", []string{"stdev"}},
		{"bad_slow", []string{
			`"slow_call_duration": must be 0 (off) or >= 4ms, got 1ms`, `"jitter": must be in [0, 1), got 1`,
			`"backoff_multiplier": must be >= 1, got 0.5`, `"ramp_up": must be >= 0, got -1s`,
			`"idle_expiry": must be > 0, got 0s`, `"max_manual_keys": must be >= 1, got 0`,
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := loadConfig(t, tc.name)
			require.Error(t, err)
			for _, want := range tc.errs {
				assert.ErrorContains(t, err, want)
			}
		})
	}
}

func TestConfigNamedPolicyValidated(t *testing.T) {
	cfg := createDefaultConfig()
	bad := cfg.PolicyConfig
	bad.Jitter = -1
	cfg.Policies = map[string]PolicyConfig{"p": bad}
	assert.ErrorContains(t, cfg.Validate(), `"policies::p::jitter": must be in [0, 1), got -1`)
	cfg.Policies = nil
	cfg.Keys = map[string]string{"*": "default"}
	assert.NoError(t, cfg.Validate(), "the default policy can be named explicitly")
}

func TestConfigOutlierDetectionEnabledWithDefaults(t *testing.T) {
	cfg, err := loadConfig(t, "outlier_default")
	require.NoError(t, err)
	require.True(t, cfg.OutlierDetection.HasValue(), "`outlier_detection:` alone turns it on")
	assert.Equal(t, OutlierDetectionConfig{
		Groups: []string{"*"}, Interval: 10 * time.Second, StdevFactor: 1.9, RequestVolume: 100, MinimumHosts: 5,
		EnforcingSuccessRate: 100, Threshold: 85, EnforcingFailurePercentage: 0,
		BaseEjectionTime: 30 * time.Second, MaxEjectionTime: 300 * time.Second, Jitter: 0.1, MaxEjectionPercent: 10,
	}, *cfg.OutlierDetection.Get(), "Envoy's defaults")
}

func TestConfigHTTPEnabledWithDefaults(t *testing.T) {
	cfg, err := loadConfig(t, "http_default")
	require.NoError(t, err)
	require.True(t, cfg.HTTP.HasValue(), "`http:` alone turns the endpoint on")
	assert.Equal(t, "127.0.0.1:13134", cfg.HTTP.Get().NetAddr.Endpoint)
}
