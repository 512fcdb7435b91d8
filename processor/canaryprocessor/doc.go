// Package canaryprocessor implements the canary processor: at the last tier
// of a pipeline it recognises the synthetic receiver's canary traces (every
// resource carries synthetic.generator, the root span synthetic.sequence),
// follows each generator's numbering and reports, as its own metrics, what
// arrived, what was lost, duplicated or reordered, and how long the trip
// took; then it removes the canary data (or passes it on). The sequence
// engine (windows, gaps, restarts, the generator LRU) lives in
// internal/sequence and uses no collector types; this package is the
// collector shell around it.
//
//go:generate mdatagen metadata.yaml
package canaryprocessor // import "github.com/otelcsp/otelcsp/processor/canaryprocessor"
