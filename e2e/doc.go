// Package e2e holds the end-to-end reliability suite of otelcsp: its tests
// start the built binary (OTELCSP_BINARY) as real processes, in one or two
// tiers, drive OTLP traffic through them from a test client to counting OTLP
// servers in the test process, inject faults while data flows (SIGKILL,
// stalls, SIGTERM, every backend down) and account for every span.
//
// `make smoke` builds the binary and runs the suite; without OTELCSP_BINARY
// the tests skip, saying why, so `go test ./...` stays fast (with
// OTELCSP_REQUIRE_BINARY=1, as `make smoke` sets it, they fail instead).
package e2e
