// Copyright The otelcsp Authors
// SPDX-License-Identifier: Apache-2.0

package breakerextension // import "github.com/otelcsp/otelcsp/extension/breakerextension"

import "context"

type admittedKey struct{}

// ContextWithAdmitted marks ctx as carrying a call that b already admitted,
// or that its caller sends despite b (the fanout in panic mode or while
// draining). The extension's client middleware, asked about the same
// breaker (same extension, same key) for a call in that context, lets the
// call through without asking b again and without recording its outcome: the
// caller's Permit reports it, once. So one breaker can guard a backend both
// through the Go API and through the middleware of the exporter that API
// user calls, without the middleware refusing the caller's half-open probe
// and without counting every outcome twice.
//
// With a Breaker of another implementation it returns ctx unchanged.
func ContextWithAdmitted(ctx context.Context, b Breaker) context.Context {
	if bb, ok := b.(*keyBreaker); ok && bb != nil {
		return context.WithValue(ctx, admittedKey{}, bb)
	}
	return ctx
}

// admittedUpstream says whether ctx carries a call b already admitted.
func admittedUpstream(ctx context.Context, b *keyBreaker) bool {
	v, _ := ctx.Value(admittedKey{}).(*keyBreaker)
	return v == b
}
