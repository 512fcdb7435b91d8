package spanlogsconnector // import "github.com/otelcsp/otelcsp/connector/spanlogsconnector"

import (
	"context"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/connector"
	"go.opentelemetry.io/collector/consumer"

	"github.com/otelcsp/otelcsp/connector/spanlogsconnector/internal/metadata"
)

// NewFactory returns the factory of the spanlogs connector (traces→logs).
func NewFactory() connector.Factory {
	return connector.NewFactory(
		metadata.Type,
		func() component.Config { return createDefaultConfig() },
		connector.WithTracesToLogs(createTracesToLogs, metadata.TracesToLogsStability),
	)
}

func createTracesToLogs(_ context.Context, set connector.Settings, cfg component.Config, next consumer.Logs) (connector.Traces, error) {
	// Compile again rather than trusting that Validate ran: the compiled
	// form (globs, templates) is what the connector runs on.
	c, err := compileConfig(cfg.(*Config))
	if err != nil {
		return nil, err
	}
	return newSpanLogs(set.TelemetrySettings, set.ID, c, next)
}
