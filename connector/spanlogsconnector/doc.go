// Package spanlogsconnector implements the spanlogs connector: a traces→logs
// connector that turns error spans, exception events, slow spans (or every
// span) into log records correlated by trace and span ID, deduplicated and
// rate-limited per fingerprint so a storm of identical failures cannot flood
// the log backend.
//
//go:generate mdatagen metadata.yaml
package spanlogsconnector // import "github.com/otelcsp/otelcsp/connector/spanlogsconnector"
