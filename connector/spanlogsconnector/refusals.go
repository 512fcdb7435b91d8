package spanlogsconnector // import "github.com/otelcsp/otelcsp/connector/spanlogsconnector"

import "time"

// monoOrigin carries the process's monotonic clock reading; time.Since
// subtracts monotonic readings, never wall times.
var monoOrigin = time.Now()

// monotonic is the time elapsed since monoOrigin on the monotonic clock.
func monotonic() time.Duration { return time.Since(monoOrigin) }

// refusalLogEvery is the most often a refused batch is logged; the counter
// otelcol_spanlogs_records_refused counts every one.
const refusalLogEvery = 10 * time.Second
