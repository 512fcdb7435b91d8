//go:generate mdatagen metadata.yaml

// Package syntheticreceiver implements the `synthetic` receiver: it generates
// realistic multi-service traces (and, in logs pipelines, one log record per
// span event) at a configured, smooth rate, so the distribution can demo and
// benchmark itself and, in canary mode, count loss end to end.
package syntheticreceiver // import "github.com/otelcsp/otelcsp/receiver/syntheticreceiver"
