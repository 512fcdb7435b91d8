// Copyright The otelcsp Authors
// SPDX-License-Identifier: Apache-2.0

package breakerextension // import "github.com/otelcsp/otelcsp/extension/breakerextension"

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"time"

	"go.opentelemetry.io/collector/config/confighttp"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/confmap"

	"github.com/otelcsp/otelcsp/extension/breakerextension/internal/engine"
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
	// OutlierDetection ejects keys much worse than their group's other
	// keys; off unless set.
	OutlierDetection configoptional.Optional[OutlierDetectionConfig] `mapstructure:"outlier_detection"`

	// prevent unkeyed literal initialization
	_ struct{}
}

// OutlierDetectionConfig ejects a key that does much worse than its peers
// (Envoy's outlier detection, gRPC's gRFC A50), on top of each breaker's
// fixed thresholds. The defaults are Envoy's.
type OutlierDetectionConfig struct {
	// Groups are key globs; the keys matching one glob (the first in list
	// order that matches) are judged against each other. Keys matching none
	// are not judged. Default ["*"]: every key of the extension is one group,
	// as the fanout's backends are.
	Groups []string `mapstructure:"groups"`
	// Interval is how often the group is judged, on the calls of the
	// interval just ended.
	Interval time.Duration `mapstructure:"interval"`
	// StdevFactor: a key is ejected when its success rate is below the
	// group's mean minus StdevFactor standard deviations.
	StdevFactor float64 `mapstructure:"stdev_factor"`
	// RequestVolume is the calls a key needs in the interval to be judged
	// (and counted in the statistics).
	RequestVolume int `mapstructure:"request_volume"`
	// MinimumHosts is the keys with RequestVolume calls a group needs for
	// either ejection to run.
	MinimumHosts int `mapstructure:"minimum_hosts"`
	// EnforcingSuccessRate is the chance (percent) that a key the success
	// rate singles out is ejected.
	EnforcingSuccessRate int `mapstructure:"enforcing_success_rate"`
	// Threshold: a key with at least Threshold percent failures is ejected
	// (failure-percentage ejection), with EnforcingFailurePercentage chance.
	Threshold                  int `mapstructure:"threshold"`
	EnforcingFailurePercentage int `mapstructure:"enforcing_failure_percentage"`
	// BaseEjectionTime times the number of times a key was ejected is how
	// long it stays ejected, capped at MaxEjectionTime and shortened by a
	// random share up to Jitter.
	BaseEjectionTime time.Duration `mapstructure:"base_ejection_time"`
	MaxEjectionTime  time.Duration `mapstructure:"max_ejection_time"`
	Jitter           float64       `mapstructure:"jitter"`
	// MaxEjectionPercent caps the share of a group's keys ejected at once
	// (one key can always be).
	MaxEjectionPercent int `mapstructure:"max_ejection_percent"`

	_ struct{}
}

func defaultOutlierDetection() OutlierDetectionConfig {
	return OutlierDetectionConfig{
		Groups:                     []string{"*"},
		Interval:                   10 * time.Second,
		StdevFactor:                1.9,
		RequestVolume:              100,
		MinimumHosts:               5,
		EnforcingSuccessRate:       100,
		Threshold:                  85,
		EnforcingFailurePercentage: 0,
		BaseEjectionTime:           30 * time.Second,
		MaxEjectionTime:            300 * time.Second,
		Jitter:                     0.1,
		MaxEjectionPercent:         10,
	}
}

func (o *OutlierDetectionConfig) validate() []error {
	var errs []error
	bad := func(key, msg string, v any) {
		errs = append(errs, fmt.Errorf("%q: %s, got %v", "outlier_detection::"+key, msg, v))
	}
	if len(o.Groups) == 0 {
		bad("groups", "must list at least one key glob", o.Groups)
	}
	if o.Interval < time.Millisecond {
		bad("interval", "must be >= 1ms", o.Interval)
	}
	if o.StdevFactor < 0 || math.IsNaN(o.StdevFactor) || math.IsInf(o.StdevFactor, 0) {
		bad("stdev_factor", "must be >= 0", o.StdevFactor)
	}
	if o.RequestVolume < 1 {
		bad("request_volume", "must be >= 1", o.RequestVolume)
	}
	if o.MinimumHosts < 1 {
		bad("minimum_hosts", "must be >= 1", o.MinimumHosts)
	}
	for _, p := range []struct {
		key string
		v   int
	}{
		{"enforcing_success_rate", o.EnforcingSuccessRate}, {"threshold", o.Threshold},
		{"enforcing_failure_percentage", o.EnforcingFailurePercentage}, {"max_ejection_percent", o.MaxEjectionPercent},
	} {
		if p.v < 0 || p.v > 100 {
			bad(p.key, "must be a percentage in [0, 100]", p.v)
		}
	}
	if o.BaseEjectionTime <= 0 {
		bad("base_ejection_time", "must be > 0", o.BaseEjectionTime)
	}
	if o.MaxEjectionTime < o.BaseEjectionTime {
		bad("max_ejection_time", "must be >= base_ejection_time ("+o.BaseEjectionTime.String()+")", o.MaxEjectionTime)
	}
	if o.Jitter < 0 || o.Jitter >= 1 || math.IsNaN(o.Jitter) {
		bad("jitter", "must be in [0, 1)", o.Jitter)
	}
	return errs
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
		PolicyConfig:     defaultPolicy(),
		IdleExpiry:       10 * time.Minute,
		MaxManualKeys:    100,
		HTTP:             configoptional.Default(srv),
		OutlierDetection: configoptional.Default(defaultOutlierDetection()),
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
	for _, name := range slices.Sorted(maps.Keys(cfg.Policies)) {
		p := cfg.Policies[name]
		errs = append(errs, p.validate("policies::"+name+"::")...)
	}
	for _, glob := range slices.Sorted(maps.Keys(cfg.Keys)) {
		name := cfg.Keys[glob]
		if name == "default" {
			continue
		}
		if _, ok := cfg.Policies[name]; !ok {
			errs = append(errs, fmt.Errorf("\"keys::%s\": unknown policy %q", glob, name))
		}
	}
	for _, glob := range slices.Sorted(maps.Keys(cfg.Manual)) {
		if _, err := ParseManualState(cfg.Manual[glob]); err != nil {
			errs = append(errs, fmt.Errorf("\"manual::%s\": %w", glob, err))
		}
	}
	if cfg.IdleExpiry <= 0 {
		errs = append(errs, fmt.Errorf("\"idle_expiry\": must be > 0, got %v", cfg.IdleExpiry))
	}
	if od := cfg.OutlierDetection.Get(); od != nil {
		errs = append(errs, od.validate()...)
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

// engineConfig is a validated cfg in the engine's terms.
func engineConfig(cfg *Config) engine.Config {
	ec := engine.Config{
		Default:       engine.Policy(cfg.PolicyConfig),
		Policies:      make(map[string]engine.Policy, len(cfg.Policies)),
		Keys:          cfg.Keys,
		Manual:        make(map[string]engine.Manual, len(cfg.Manual)),
		IdleExpiry:    cfg.IdleExpiry,
		MaxManualKeys: cfg.MaxManualKeys,
	}
	for name, p := range cfg.Policies {
		ec.Policies[name] = engine.Policy(p)
	}
	for pattern, s := range cfg.Manual {
		m, _ := ParseManualState(s) // Validate rejected bad ones
		ec.Manual[pattern] = engine.Manual(m)
	}
	if od := cfg.OutlierDetection.Get(); od != nil {
		ec.Outlier = &engine.OutlierConfig{
			Groups:                     od.Groups,
			Interval:                   od.Interval,
			StdevFactor:                od.StdevFactor,
			RequestVolume:              od.RequestVolume,
			MinimumHosts:               od.MinimumHosts,
			EnforcingSuccessRate:       od.EnforcingSuccessRate,
			Threshold:                  od.Threshold,
			EnforcingFailurePercentage: od.EnforcingFailurePercentage,
			BaseEjectionTime:           od.BaseEjectionTime,
			MaxEjectionTime:            od.MaxEjectionTime,
			Jitter:                     od.Jitter,
			MaxEjectionPercent:         od.MaxEjectionPercent,
		}
	}
	return ec
}
