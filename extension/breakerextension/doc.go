// Copyright The otelcsp Authors
// SPDX-License-Identifier: Apache-2.0

//go:generate mdatagen metadata.yaml

// Package breakerextension provides keyed circuit breakers: a typed Go API
// (FromHost, Provider, Breaker, Permit) for exporters, and gRPC/HTTP client
// middleware so any exporter built on configgrpc/confighttp gets breaking by
// configuration alone.
package breakerextension // import "github.com/otelcsp/otelcsp/extension/breakerextension"
