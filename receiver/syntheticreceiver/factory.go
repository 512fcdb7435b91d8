package syntheticreceiver // import "github.com/otelcsp/otelcsp/receiver/syntheticreceiver"

import (
	"context"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/receiver"

	"github.com/otelcsp/otelcsp/internal/clock"
	"github.com/otelcsp/otelcsp/receiver/syntheticreceiver/internal/metadata"
)

// Defaults: a small system's worth of traffic, one trace per call so the
// stream is smooth.
const (
	defaultRate      = 10
	defaultBatchSize = 1
)

// NewFactory returns the factory of the synthetic receiver.
func NewFactory() receiver.Factory {
	return receiver.NewFactory(
		metadata.Type,
		createDefaultConfig,
		receiver.WithTraces(createTraces, metadata.TracesStability),
		receiver.WithLogs(createLogs, metadata.LogsStability),
	)
}

func createDefaultConfig() component.Config {
	return &Config{
		Rate:      defaultRate,
		BatchSize: defaultBatchSize,
	}
}

func createTraces(_ context.Context, set receiver.Settings, cfg component.Config, next consumer.Traces) (receiver.Traces, error) {
	r, err := sharedFor(cfg.(*Config), set)
	if err != nil {
		return nil, err
	}
	r.nextTraces = next
	return r, nil
}

func createLogs(_ context.Context, set receiver.Settings, cfg component.Config, next consumer.Logs) (receiver.Logs, error) {
	r, err := sharedFor(cfg.(*Config), set)
	if err != nil {
		return nil, err
	}
	r.nextLogs = next
	return r, nil
}

// sharedFor returns the one receiver of cfg, whichever signal asks first.
func sharedFor(cfg *Config, set receiver.Settings) (*sharedReceiver, error) {
	return receivers.loadOrStore(cfg, func() (*syntheticReceiver, error) {
		return newReceiver(cfg, set, clock.Real{})
	})
}
