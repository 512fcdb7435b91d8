// Copyright The otelcsp Authors
// SPDX-License-Identifier: Apache-2.0

package breakerextension

import (
	"time"

	"github.com/otelcsp/otelcsp/internal/clock/clocktest"
)

// fakeWallOrigin is the wall time at monotonic reading 0: the fake clock's
// wall clock is this date plus the monotonic reading, so snapshots' times
// are exact.
var fakeWallOrigin = time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)

// newFakeClock starts the monotonic clock at an hour: positive, and far
// from bucket 0. Its timers fire synchronously inside Advance, in due-time
// order, with the time set to each timer's due time.
func newFakeClock() *clocktest.Fake {
	return clocktest.New(fakeWallOrigin.Add(time.Hour), time.Hour)
}
