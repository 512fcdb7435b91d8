// Copyright The otelcsp Authors
// SPDX-License-Identifier: Apache-2.0

package engine // import "github.com/otelcsp/otelcsp/extension/breakerextension/internal/engine"

import "time"

// Config is the extension's validated config in the engine's terms.
type Config struct {
	// Default is the policy of keys no glob of Keys matches.
	Default Policy
	// Policies are the named policies Keys refers to.
	Policies map[string]Policy
	// Keys maps a key glob to a policy name ("default" or one of Policies);
	// the longest matching glob wins.
	Keys map[string]string
	// Manual gives keys matching a glob their initial manual state.
	Manual map[string]Manual
	// IdleExpiry forgets keys unused for that long.
	IdleExpiry time.Duration
	// MaxManualKeys bounds the runtime overrides of manual states.
	MaxManualKeys int
	// Outlier turns outlier detection on (nil: off).
	Outlier *OutlierConfig
}

// OutlierConfig is outlier detection's config (the extension's
// outlier_detection block, which documents each field).
type OutlierConfig struct {
	Groups                     []string
	Interval                   time.Duration
	StdevFactor                float64
	RequestVolume              int
	MinimumHosts               int
	EnforcingSuccessRate       int
	Threshold                  int
	EnforcingFailurePercentage int
	BaseEjectionTime           time.Duration
	MaxEjectionTime            time.Duration
	Jitter                     float64
	MaxEjectionPercent         int
}
