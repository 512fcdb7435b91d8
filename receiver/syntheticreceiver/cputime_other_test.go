//go:build !unix

package syntheticreceiver

import "time"

func processCPU() (time.Duration, bool) { return 0, false }
