// Copyright The otelcsp Authors
// SPDX-License-Identifier: Apache-2.0

package breakerextension // import "github.com/otelcsp/otelcsp/extension/breakerextension"

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"time"

	"go.opentelemetry.io/collector/config/confighttp"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/confmap"
)

// PolicyConfig is one breaker policy. Zero disables a trip condition where
// noted.
type PolicyConfig struct {
	// ConsecutiveFailures trips after that many failures in a row (0: off).
	ConsecutiveFailures int `mapstructure:"consecutive_failures"`
	// FailureRatio trips when failures/calls over Window reaches it, once
	// MinCalls calls were seen (0: off).
	FailureRatio float64 `mapstructure:"failure_ratio"`
	// Window is the sliding window for the ratios, kept in WindowBuckets
	// buckets.
	Window        time.Duration `mapstructure:"window"`
	WindowBuckets int           `mapstructure:"window_buckets"`
	// MinCalls is the number of calls in Window below which ratios are not
	// judged.
	MinCalls int `mapstructure:"min_calls"`
	// SlowCallDuration makes a call slower than it count as slow, and a call
	// still in flight longer than it count as stalled (0: off).
	SlowCallDuration time.Duration `mapstructure:"slow_call_duration"`
	// SlowCallRatio trips when (slow+stalled)/(calls+stalled) over Window
	// reaches it (0: off).
	SlowCallRatio float64 `mapstructure:"slow_call_ratio"`
	// OpenDuration is how long the first trip stays open.
	OpenDuration time.Duration `mapstructure:"open_duration"`
	// MaxOpenDuration caps the exponential growth and throttle holds.
	MaxOpenDuration time.Duration `mapstructure:"max_open_duration"`
	// BackoffMultiplier grows the open duration on each repeated trip.
	BackoffMultiplier float64 `mapstructure:"backoff_multiplier"`
	// Jitter shortens each open duration by a random share up to it.
	Jitter float64 `mapstructure:"jitter"`
	// HalfOpenPermits is the number of probes allowed in flight.
	HalfOpenPermits int `mapstructure:"half_open_permits"`
	// SuccessThreshold is the number of probe successes that close it.
	SuccessThreshold int `mapstructure:"success_threshold"`
	// RampUp is the time after closing during which the admitted share grows
	// linearly from 0 to 100% (0: off).
	RampUp time.Duration `mapstructure:"ramp_up"`
}

// Config of the breaker extension. The top-level policy keys form the
// default policy; named policies start from the default and override what
// they set.
type Config struct {
	PolicyConfig `mapstructure:",squash"`

	// Policies are named policies, referenced from Keys.
	Policies map[string]PolicyConfig `mapstructure:"policies"`
	// Keys maps a glob (`*` any run, `?` one character) over breaker keys
	// to a policy name. The longest matching glob wins.
	Keys map[string]string `mapstructure:"keys"`
	// Manual sets initial manual states by key glob (forced_open, disabled,
	// metrics_only); they can be changed at runtime.
	Manual map[string]string `mapstructure:"manual"`
	// IdleExpiry forgets keys unused for that long.
	IdleExpiry time.Duration `mapstructure:"idle_expiry"`
	// MaxManualKeys bounds the keys whose manual state was changed at
	// runtime (HTTP endpoint or Controller): those are never forgotten.
	MaxManualKeys int `mapstructure:"max_manual_keys"`
	// HTTP serves the state listing and manual control; off unless set.
	HTTP configoptional.Optional[confighttp.ServerConfig] `mapstructure:"http"`

	// prevent unkeyed literal initialization
	_ struct{}
}

// DefaultHTTPEndpoint is where the HTTP endpoint listens when `http:` is
// given without an endpoint: loopback only.
const DefaultHTTPEndpoint = "127.0.0.1:13134"

func defaultPolicy() PolicyConfig {
	return PolicyConfig{
		ConsecutiveFailures: 5,
		FailureRatio:        0.5,
		Window:              10 * time.Second,
		WindowBuckets:       10,
		MinCalls:            20,
		SlowCallDuration:    0,
		SlowCallRatio:       0.5,
		OpenDuration:        time.Second,
		MaxOpenDuration:     60 * time.Second,
		BackoffMultiplier:   2,
		Jitter:              0.2,
		HalfOpenPermits:     1,
		SuccessThreshold:    2,
		RampUp:              0,
	}
}

func createDefaultConfig() *Config {
	srv := confighttp.NewDefaultServerConfig()
	srv.NetAddr.Endpoint = DefaultHTTPEndpoint
	return &Config{
		PolicyConfig:  defaultPolicy(),
		IdleExpiry:    10 * time.Minute,
		MaxManualKeys: 100,
		HTTP:          configoptional.Default(srv),
	}
}

var _ confmap.Unmarshaler = (*Config)(nil)

// Unmarshal decodes the default policy first, then each named policy over a
// copy of it, so a named policy only lists what differs.
func (cfg *Config) Unmarshal(conf *confmap.Conf) error {
	// breakerConfig drops the Unmarshal method (no recursion); its name is
	// what decoding errors show ("breakerextension.breakerConfig has invalid keys").
	type breakerConfig Config
	if err := conf.Unmarshal((*breakerConfig)(cfg)); err != nil {
		return err
	}
	if len(cfg.Policies) == 0 {
		return nil
	}
	sub, err := conf.Sub("policies")
	if err != nil {
		return err
	}
	for name := range cfg.Policies {
		p := cfg.PolicyConfig
		one, err := sub.Sub(name)
		if err != nil {
			return err
		}
		if err := one.Unmarshal(&p); err != nil {
			return fmt.Errorf("policies::%s: %w", name, err)
		}
		cfg.Policies[name] = p
	}
	return nil
}

// Validate checks every policy and reference.
func (cfg *Config) Validate() error {
	var errs []error
	errs = append(errs, cfg.validate("")...)
	for _, name := range sortedKeys(cfg.Policies) {
		p := cfg.Policies[name]
		errs = append(errs, p.validate("policies::"+name+"::")...)
	}
	for _, glob := range sortedKeys(cfg.Keys) {
		name := cfg.Keys[glob]
		if name == "default" {
			continue
		}
		if _, ok := cfg.Policies[name]; !ok {
			errs = append(errs, fmt.Errorf("\"keys::%s\": unknown policy %q", glob, name))
		}
	}
	for _, glob := range sortedKeys(cfg.Manual) {
		if _, err := ParseManualState(cfg.Manual[glob]); err != nil {
			errs = append(errs, fmt.Errorf("\"manual::%s\": %w", glob, err))
		}
	}
	if cfg.IdleExpiry <= 0 {
		errs = append(errs, fmt.Errorf("\"idle_expiry\": must be > 0, got %v", cfg.IdleExpiry))
	}
	if cfg.MaxManualKeys < 1 {
		errs = append(errs, fmt.Errorf("\"max_manual_keys\": must be >= 1, got %d", cfg.MaxManualKeys))
	}
	return errors.Join(errs...)
}

func (p *PolicyConfig) validate(prefix string) []error {
	var errs []error
	bad := func(key, msg string, v any) {
		errs = append(errs, fmt.Errorf("%q: %s, got %v", prefix+key, msg, v))
	}
	if p.ConsecutiveFailures < 0 {
		bad("consecutive_failures", "must be >= 0", p.ConsecutiveFailures)
	}
	if p.FailureRatio < 0 || p.FailureRatio > 1 || math.IsNaN(p.FailureRatio) {
		bad("failure_ratio", "must be in [0, 1]", p.FailureRatio)
	}
	if p.Window <= 0 {
		bad("window", "must be > 0", p.Window)
	}
	if p.WindowBuckets < 1 || p.WindowBuckets > 1000 {
		bad("window_buckets", "must be in [1, 1000]", p.WindowBuckets)
	} else if p.Window > 0 && p.Window/time.Duration(p.WindowBuckets) < time.Millisecond {
		bad("window_buckets", "makes buckets shorter than 1ms for window "+p.Window.String(), p.WindowBuckets)
	}
	if p.MinCalls < 1 {
		bad("min_calls", "must be >= 1", p.MinCalls)
	}
	if p.SlowCallDuration < 0 {
		bad("slow_call_duration", "must be >= 0", p.SlowCallDuration)
	} else if p.SlowCallDuration > 0 && p.SlowCallDuration < 4*time.Millisecond {
		bad("slow_call_duration", "must be 0 (off) or >= 4ms", p.SlowCallDuration)
	}
	if p.SlowCallRatio < 0 || p.SlowCallRatio > 1 || math.IsNaN(p.SlowCallRatio) {
		bad("slow_call_ratio", "must be in [0, 1]", p.SlowCallRatio)
	}
	if p.OpenDuration <= 0 {
		bad("open_duration", "must be > 0", p.OpenDuration)
	}
	if p.MaxOpenDuration < p.OpenDuration {
		bad("max_open_duration", "must be >= open_duration ("+p.OpenDuration.String()+")", p.MaxOpenDuration)
	}
	if p.BackoffMultiplier < 1 || math.IsNaN(p.BackoffMultiplier) || math.IsInf(p.BackoffMultiplier, 0) {
		bad("backoff_multiplier", "must be >= 1", p.BackoffMultiplier)
	}
	if p.Jitter < 0 || p.Jitter >= 1 || math.IsNaN(p.Jitter) {
		bad("jitter", "must be in [0, 1)", p.Jitter)
	}
	if p.HalfOpenPermits < 1 {
		bad("half_open_permits", "must be >= 1", p.HalfOpenPermits)
	}
	if p.SuccessThreshold < 1 {
		bad("success_threshold", "must be >= 1", p.SuccessThreshold)
	}
	if p.RampUp < 0 {
		bad("ramp_up", "must be >= 0", p.RampUp)
	}
	return errs
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
