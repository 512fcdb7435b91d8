package fanoutexporter

import (
	"context"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/config/configretry"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/exporterhelper"
	"go.opentelemetry.io/collector/pipeline"

	"github.com/otelcsp/otelcsp/exporter/fanoutexporter/internal/metadata"
)

// NewFactory returns the factory of the fanout exporter.
func NewFactory() exporter.Factory {
	return exporter.NewFactory(
		metadata.Type,
		createDefaultConfig,
		exporter.WithTraces(createTraces, metadata.TracesStability),
		exporter.WithMetrics(createMetrics, metadata.MetricsStability),
		exporter.WithLogs(createLogs, metadata.LogsStability),
	)
}

func createDefaultConfig() component.Config {
	retry := configretry.NewDefaultBackOffConfig()
	// The fanout already fails over between backends at once; retrying is
	// for when none could take the data, and the sender should hear of that
	// within seconds (its own retry and queue take over), not minutes.
	retry.InitialInterval = 100 * time.Millisecond
	retry.MaxInterval = time.Second
	retry.MaxElapsedTime = 5 * time.Second
	return &Config{
		MaxEjectedPercent: 50,
		StreamIDExclude:   []string{"collector.instance.id"},
		Resolver: ResolverConfig{
			Static: configoptional.Default(StaticResolverConfig{}),
			DNS: configoptional.Default(DNSResolverConfig{
				Port: "4317", Interval: 5 * time.Second, Timeout: time.Second,
			}),
			File: configoptional.Default(FileResolverConfig{Interval: time.Second}),
			K8s:  configoptional.Default(K8sResolverConfig{Ports: []string{"4317"}, Timeout: 10 * time.Second, Resync: 5 * time.Minute}),
		},
		Protocol: ProtocolConfig{
			OTLP:     configoptional.Default(defaultOTLPConfig()),
			OTLPHTTP: configoptional.Default(defaultOTLPHTTPConfig()),
		},
		// Off unless configured: without a queue the sender learns at once
		// when no backend could take its data.
		QueueConfig:  configoptional.Default(exporterhelper.NewDefaultQueueConfig()),
		RetryConfig:  retry,
		DrainTimeout: 25 * time.Second,
	}
}

// helperOptions wraps a fanout in exporterhelper's queue. The fanout retries
// itself (push); exporterhelper's retry sender is kept, with a queue, only
// for what it does at shutdown: it turns the fanout's drain_timeout error
// into a shutdown error, which a persistent queue keeps for the next start.
func helperOptions[T any](cfg *Config, f *fanout[T]) []exporterhelper.Option {
	retry := configretry.BackOffConfig{Enabled: false}
	if cfg.QueueConfig.HasValue() {
		retry = cfg.RetryConfig
		retry.Enabled = true
		retry.MaxElapsedTime = 0
	}
	return []exporterhelper.Option{
		exporterhelper.WithStart(f.start),
		exporterhelper.WithShutdown(f.shutdown),
		// Spans are moved out of the incoming batch, not copied.
		exporterhelper.WithCapabilities(consumer.Capabilities{MutatesData: true}),
		// Each backend's exporter has its own timeout (protocol.*.timeout);
		// one for the whole fan-out would cut failover short.
		exporterhelper.WithTimeout(exporterhelper.TimeoutConfig{}),
		exporterhelper.WithQueue(cfg.QueueConfig),
		exporterhelper.WithRetry(retry),
	}
}

// newFanoutFor builds the fanout of one signal, refusing a routing key that
// does not apply to it.
func newFanoutFor[T any](set exporter.Settings, cfg *Config, signal pipeline.Signal,
	ops func(*Config, string, subExporter) signalOps[T],
) (*fanout[T], error) {
	key, err := cfg.routingKeyFor(signal)
	if err != nil {
		return nil, err
	}
	return newFanout(set, cfg, ops(cfg, key, newSubExporter(cfg.Protocol)))
}

func createTraces(ctx context.Context, set exporter.Settings, c component.Config) (exporter.Traces, error) {
	cfg := c.(*Config)
	f, err := newFanoutFor(set, cfg, pipeline.SignalTraces, tracesOps)
	if err != nil {
		return nil, err
	}
	exp, err := exporterhelper.NewTraces(ctx, quietSettings(set), cfg, f.push, helperOptions(cfg, f)...)
	if err != nil {
		return nil, err
	}
	return drainingTraces{exp, f.beginDrain}, nil
}

func createMetrics(ctx context.Context, set exporter.Settings, c component.Config) (exporter.Metrics, error) {
	cfg := c.(*Config)
	f, err := newFanoutFor(set, cfg, pipeline.SignalMetrics, metricsOps)
	if err != nil {
		return nil, err
	}
	exp, err := exporterhelper.NewMetrics(ctx, quietSettings(set), cfg, f.push, helperOptions(cfg, f)...)
	if err != nil {
		return nil, err
	}
	return drainingMetrics{exp, f.beginDrain}, nil
}

func createLogs(ctx context.Context, set exporter.Settings, c component.Config) (exporter.Logs, error) {
	cfg := c.(*Config)
	f, err := newFanoutFor(set, cfg, pipeline.SignalLogs, logsOps)
	if err != nil {
		return nil, err
	}
	exp, err := exporterhelper.NewLogs(ctx, quietSettings(set), cfg, f.push, helperOptions(cfg, f)...)
	if err != nil {
		return nil, err
	}
	return drainingLogs{exp, f.beginDrain}, nil
}

// The collector shuts an exporter down in one call, in which exporterhelper
// first drains its queue; these wrappers tell the fanout that shutdown has
// begun before that drain, so it can stop honouring open breakers and start
// its drain_timeout.
type drainingTraces struct {
	exporter.Traces
	begin func()
}

func (e drainingTraces) Shutdown(ctx context.Context) error { e.begin(); return e.Traces.Shutdown(ctx) }

type drainingMetrics struct {
	exporter.Metrics
	begin func()
}

func (e drainingMetrics) Shutdown(ctx context.Context) error {
	e.begin()
	return e.Metrics.Shutdown(ctx)
}

type drainingLogs struct {
	exporter.Logs
	begin func()
}

func (e drainingLogs) Shutdown(ctx context.Context) error { e.begin(); return e.Logs.Shutdown(ctx) }
