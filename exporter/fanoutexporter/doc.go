//go:generate mdatagen metadata.yaml

// Package fanoutexporter routes traces, metrics and logs to a changing set of
// backend collectors on a consistent-hash ring, so that all items with the
// same routing key (a trace, a service, a metric stream) reach the same
// backend; it fails over around unhealthy backends through the breaker
// extension and returns to the caller whatever no backend could take.
package fanoutexporter
