// Package deltamergeprocessor implements the deltamerge processor: it merges
// delta metric streams written by many writers (gateways that each compute
// the same span-derived metrics) into one cumulative series per stream,
// counting every delta exactly once: a retried point is recognised and
// dropped, a restarted writer or a point arriving out of order is still
// added. The merge engine (stream table, duplicate memory, histogram
// arithmetic) lives in internal/merge and uses no collector types beyond
// pdata; this package is the collector shell around it.
//
//go:generate mdatagen metadata.yaml
package deltamergeprocessor // import "github.com/otelcsp/otelcsp/processor/deltamergeprocessor"
