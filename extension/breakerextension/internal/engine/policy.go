// Copyright The otelcsp Authors
// SPDX-License-Identifier: Apache-2.0

package engine // import "github.com/otelcsp/otelcsp/extension/breakerextension/internal/engine"

import "time"

// Policy is one breaker policy, validated by the extension's config. Its
// fields are those of the extension's PolicyConfig, in the same order, so
// that one converts to the other.
type Policy struct {
	ConsecutiveFailures int
	FailureRatio        float64
	Window              time.Duration
	WindowBuckets       int
	MinCalls            int
	SlowCallDuration    time.Duration
	SlowCallRatio       float64
	OpenDuration        time.Duration
	MaxOpenDuration     time.Duration
	BackoffMultiplier   float64
	Jitter              float64
	HalfOpenPermits     int
	SuccessThreshold    int
	RampUp              time.Duration
}

// Stall detection counts in-flight calls in cohorts by start time. A cohort
// is a quarter of slow_call_duration wide; a call of cohort c has certainly
// been in flight longer than slow_call_duration once the current cohort is
// c+stallAge. Cohorts pushed out of the ring move to `ancient` atomically.
const (
	cohortSlots    = 8
	cohortsPerSlow = 4
	stallAge       = cohortsPerSlow + 1
)

// policy is a Policy in the units the hot path uses.
type policy struct {
	name             string
	consecutive      int64
	failureRatio     float64
	bucketWidth      int64
	buckets          int64
	ringMask         int64 // ring length - 1: a power of two ≥ buckets, so indexing is a mask, not a division
	minCalls         int64
	slowDur          int64
	slowRatio        float64
	cohortWidth      int64
	openDur          int64
	maxOpen          int64
	mult             float64
	jitter           float64
	halfOpenPermits  int32
	successThreshold int32
	rampUp           int64
}

func compilePolicy(name string, c Policy) *policy {
	p := &policy{
		name:             name,
		consecutive:      int64(c.ConsecutiveFailures),
		failureRatio:     c.FailureRatio,
		buckets:          int64(c.WindowBuckets),
		bucketWidth:      int64(c.Window) / int64(c.WindowBuckets),
		minCalls:         int64(c.MinCalls),
		slowDur:          int64(c.SlowCallDuration),
		slowRatio:        c.SlowCallRatio,
		openDur:          int64(c.OpenDuration),
		maxOpen:          int64(c.MaxOpenDuration),
		mult:             c.BackoffMultiplier,
		jitter:           c.Jitter,
		halfOpenPermits:  int32(c.HalfOpenPermits),
		successThreshold: int32(c.SuccessThreshold),
		rampUp:           int64(c.RampUp),
	}
	ring := int64(1)
	for ring < p.buckets {
		ring <<= 1
	}
	p.ringMask = ring - 1
	if p.slowDur > 0 {
		p.cohortWidth = max(p.slowDur/cohortsPerSlow, 1)
	}
	return p
}
