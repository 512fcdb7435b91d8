package redmetricsconnector // import "github.com/otelcsp/otelcsp/connector/redmetricsconnector"

import "time"

// refusalLogEvery is the most often a refused flush is logged; the counter
// otelcol_redmetrics_points_refused counts every one.
const refusalLogEvery = 10 * time.Second
