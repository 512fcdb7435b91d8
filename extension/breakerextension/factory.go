// Copyright The otelcsp Authors
// SPDX-License-Identifier: Apache-2.0

package breakerextension // import "github.com/otelcsp/otelcsp/extension/breakerextension"

import (
	"context"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/extension"

	"github.com/otelcsp/otelcsp/extension/breakerextension/internal/metadata"
	"github.com/otelcsp/otelcsp/internal/clock"
)

// NewFactory returns the factory of the breaker extension.
func NewFactory() extension.Factory {
	return extension.NewFactory(
		metadata.Type,
		func() component.Config { return createDefaultConfig() },
		createExtension,
		metadata.ExtensionStability,
	)
}

func createExtension(_ context.Context, set extension.Settings, cfg component.Config) (extension.Extension, error) {
	return newExtension(cfg.(*Config), set, clock.Real{})
}
