// Copyright The otelcsp Authors
// SPDX-License-Identifier: Apache-2.0

package breakerextension // import "github.com/otelcsp/otelcsp/extension/breakerextension"

import "time"

// clock is the breaker's only source of time, so tests drive every transition
// with a fake clock instead of sleeping.
type clock interface {
	// Now returns monotonic nanoseconds since an arbitrary origin (> 0).
	Now() int64
	// AfterFunc calls f in its own goroutine once d has elapsed.
	AfterFunc(d time.Duration, f func()) stopper
}

type stopper interface {
	Stop() bool
}

// realClock reads the monotonic clock only: time.Since on a time carrying a
// monotonic reading skips the wall clock, which keeps Done cheap.
type realClock struct {
	origin time.Time
}

func newRealClock() *realClock {
	// Subtracting a second keeps Now strictly positive, so 0 can mean "unset".
	return &realClock{origin: time.Now().Add(-time.Second)}
}

func (c *realClock) Now() int64 { return int64(time.Since(c.origin)) }

func (*realClock) AfterFunc(d time.Duration, f func()) stopper { return time.AfterFunc(d, f) }
