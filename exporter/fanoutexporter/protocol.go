package fanoutexporter

import (
	"context"
	"fmt"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/exporterhelper"
	"go.opentelemetry.io/collector/exporter/otlpexporter"
	"go.opentelemetry.io/collector/exporter/otlphttpexporter"
)

// subExporter builds one backend's exporter from the protocol template: the
// core otlp (gRPC) or otlphttp exporter with the endpoint filled in. Its own
// queue and retry are off: the fanout re-routes a failed batch to the next
// backend at once, and queues and retries (what no backend took) itself.
type subExporter struct {
	factory exporter.Factory
	config  func(endpoint string) component.Config
}

func newSubExporter(p ProtocolConfig) subExporter {
	if h := p.OTLPHTTP.Get(); h != nil {
		f := otlphttpexporter.NewFactory()
		return subExporter{factory: f, config: func(endpoint string) component.Config {
			cfg := f.CreateDefaultConfig().(*otlphttpexporter.Config)
			cfg.ClientConfig = h.ClientConfig
			scheme := "https://"
			if h.TLS.Insecure {
				scheme = "http://"
			}
			cfg.ClientConfig.Endpoint = scheme + endpoint
			cfg.Encoding = h.Encoding
			cfg.QueueConfig = configoptional.None[exporterhelper.QueueBatchConfig]()
			cfg.RetryConfig.Enabled = false
			return cfg
		}}
	}
	tmpl := defaultOTLPConfig()
	if g := p.OTLP.Get(); g != nil {
		tmpl = *g
	}
	f := otlpexporter.NewFactory()
	return subExporter{factory: f, config: func(endpoint string) component.Config {
		cfg := f.CreateDefaultConfig().(*otlpexporter.Config)
		cfg.TimeoutConfig = tmpl.TimeoutConfig
		cfg.ClientConfig = tmpl.ClientConfig
		cfg.ClientConfig.Endpoint = endpoint
		cfg.ClientConfig.Middlewares = withReconnect(cfg.ClientConfig.Middlewares)
		cfg.QueueConfig = configoptional.None[exporterhelper.QueueBatchConfig]()
		cfg.RetryConfig.Enabled = false
		return cfg
	}}
}

// settings gives the backend's exporter an ID of its factory's type (the
// factory insists) named after the fanout and the endpoint, so that its
// exporterhelper metrics tell backends apart.
func (s subExporter) settings(set exporter.Settings, endpoint string) exporter.Settings {
	set.ID = component.NewIDWithName(s.factory.Type(), fmt.Sprintf("%s/%s", set.ID, endpoint))
	return set
}

func (s subExporter) traces(ctx context.Context, set exporter.Settings, endpoint string) (exporter.Traces, error) {
	return s.factory.CreateTraces(ctx, s.settings(set, endpoint), s.config(endpoint))
}

func (s subExporter) metrics(ctx context.Context, set exporter.Settings, endpoint string) (exporter.Metrics, error) {
	return s.factory.CreateMetrics(ctx, s.settings(set, endpoint), s.config(endpoint))
}

func (s subExporter) logs(ctx context.Context, set exporter.Settings, endpoint string) (exporter.Logs, error) {
	return s.factory.CreateLogs(ctx, s.settings(set, endpoint), s.config(endpoint))
}

// defaultOTLPConfig is the otlp exporter's default connection settings.
func defaultOTLPConfig() OTLPConfig {
	d := otlpexporter.NewFactory().CreateDefaultConfig().(*otlpexporter.Config)
	return OTLPConfig{TimeoutConfig: d.TimeoutConfig, ClientConfig: d.ClientConfig}
}

// defaultOTLPHTTPConfig is the otlphttp exporter's default connection settings.
func defaultOTLPHTTPConfig() OTLPHTTPConfig {
	d := otlphttpexporter.NewFactory().CreateDefaultConfig().(*otlphttpexporter.Config)
	return OTLPHTTPConfig{ClientConfig: d.ClientConfig, Encoding: d.Encoding}
}
