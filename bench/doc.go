// Package bench holds the side-by-side benchmarks of otelcsp's components
// against their peers: redmetrics against contrib's span metrics connector,
// and the breaker extension against sony/gobreaker and failsafe-go. It is a
// separate module so that the distribution never depends on the peers.
//
// Run them with `make bench-compare` at the repository root; the figures and
// how to read them are in docs/benchmarks.md.
package bench
