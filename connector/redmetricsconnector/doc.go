// Package redmetricsconnector implements the redmetrics connector: a
// traces→metrics connector that derives request rate, errors and duration
// (RED) metrics from spans with the names, units and default dimensions of
// contrib's span metrics connector, so it can replace it without touching
// dashboards. Series are found by hashing dimension values (no key strings),
// aggregation state is sharded so concurrent ConsumeTraces calls scale, and
// a global cardinality_limit bounds memory.
//
//go:generate mdatagen metadata.yaml
package redmetricsconnector // import "github.com/otelcsp/otelcsp/connector/redmetricsconnector"
