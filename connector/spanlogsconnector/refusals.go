package spanlogsconnector // import "github.com/otelcsp/otelcsp/connector/spanlogsconnector"

import "time"

// refusalLogEvery is the most often a refused batch is logged; the counter
// otelcol_spanlogs_records_refused counts every one.
const refusalLogEvery = 10 * time.Second
