package fanoutexporter

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/pipeline"

	"github.com/otelcsp/otelcsp/exporter/fanoutexporter/internal/metadata"
	"github.com/otelcsp/otelcsp/internal/configtest"
)

func loadConfig(t *testing.T, name string) (*Config, error) {
	t.Helper()
	cfg := createDefaultConfig().(*Config)
	return cfg, configtest.Load(t, component.NewIDWithName(metadata.Type, name).String(), cfg)
}

func TestConfigDefaults(t *testing.T) {
	cfg := createDefaultConfig().(*Config)
	assert.Equal(t, "", cfg.RoutingKey)
	assert.Equal(t, 50, cfg.MaxEjectedPercent)
	assert.False(t, cfg.QueueConfig.HasValue(), "the queue is off unless configured")
	assert.True(t, cfg.RetryConfig.Enabled)
	assert.Equal(t, 5*time.Second, cfg.RetryConfig.MaxElapsedTime)
	assert.Nil(t, cfg.Breaker)
	// A default config has no resolver: the user must say where backends are.
	require.ErrorContains(t, confmap.Validate(cfg), `"resolver"`)

	for signal, want := range map[pipeline.Signal]string{
		pipeline.SignalTraces: keyTraceID, pipeline.SignalMetrics: keyService, pipeline.SignalLogs: keyTraceID,
	} {
		got, err := cfg.routingKeyFor(signal)
		require.NoError(t, err)
		assert.Equal(t, want, got, signal.String())
	}
}

func TestConfigMinimal(t *testing.T) {
	cfg, err := loadConfig(t, "")
	require.NoError(t, err)
	assert.Equal(t, []string{"127.0.0.1:4317"}, cfg.Resolver.Static.Get().Endpoints)
	assert.False(t, cfg.Protocol.OTLP.HasValue())
	assert.False(t, cfg.Protocol.OTLPHTTP.HasValue())
	assert.Zero(t, cfg.MaxWait)
	assert.Equal(t, 25*time.Second, cfg.DrainTimeout)
}

func TestConfigEveryKey(t *testing.T) {
	cfg, err := loadConfig(t, "all")
	require.NoError(t, err)
	assert.Equal(t, keyTraceID, cfg.RoutingKey)
	static := cfg.Resolver.Static.Get()
	assert.Equal(t, []string{"backend-1:4317", "backend-2:4317", "backend-3:4317"}, static.Endpoints)
	assert.Equal(t, map[string]float64{"backend-3:4317": 2}, static.Weights)
	otlp := cfg.Protocol.OTLP.Get()
	require.NotNil(t, otlp)
	assert.Equal(t, 2*time.Second, otlp.Timeout)
	assert.True(t, otlp.TLS.Insecure)
	assert.Equal(t, "none", string(otlp.Compression))
	require.NotNil(t, cfg.Breaker)
	assert.Equal(t, "breaker", cfg.Breaker.String())
	assert.Equal(t, 34, cfg.MaxEjectedPercent)
	require.True(t, cfg.QueueConfig.HasValue())
	assert.Equal(t, int64(5000), cfg.QueueConfig.Get().QueueSize)
	assert.Equal(t, 30*time.Second, cfg.RetryConfig.MaxElapsedTime)
	assert.Equal(t, 10*time.Minute, cfg.MaxWait)
	assert.Equal(t, 20*time.Second, cfg.DrainTimeout)
	assert.Equal(t, 10*time.Second, cfg.Handover)

	specs := staticSpecs(*static)
	assert.Equal(t, []backendSpec{{"backend-1:4317", 1}, {"backend-2:4317", 1}, {"backend-3:4317", 2}}, specs)
}

func TestConfigResolvers(t *testing.T) {
	cfg, err := loadConfig(t, "dns")
	require.NoError(t, err)
	dns := cfg.Resolver.DNS.Get()
	assert.Equal(t, DNSResolverConfig{
		Hostname: "collectors.observability.svc.cluster.local", Port: "4317",
		Interval: 10 * time.Second, Timeout: 2 * time.Second,
	}, *dns)

	cfg, err = loadConfig(t, "srv")
	require.NoError(t, err)
	assert.True(t, cfg.Resolver.DNS.Get().SRV)
	assert.Equal(t, 5*time.Second, cfg.Resolver.DNS.Get().Interval, "default interval")
	assert.Equal(t, time.Second, cfg.Resolver.DNS.Get().Timeout, "default timeout")

	cfg, err = loadConfig(t, "k8s")
	require.NoError(t, err)
	assert.Equal(t, K8sResolverConfig{
		Service: "otelcsp-gateway.observability", Ports: []string{"4317", "otlp-grpc"},
		Timeout: 10 * time.Second, Resync: 5 * time.Minute,
	}, *cfg.Resolver.K8s.Get())

	cfg, err = loadConfig(t, "file")
	require.NoError(t, err)
	assert.Equal(t, FileResolverConfig{Path: "/etc/otelcsp/backends.txt", Interval: 5 * time.Second}, *cfg.Resolver.File.Get())
	assert.True(t, cfg.Protocol.OTLPHTTP.HasValue())
	assert.Equal(t, []string{"tenant"}, cfg.RoutingAttributes)
}

func TestConfigInvalid(t *testing.T) {
	tests := []struct {
		name, want string
	}{
		{"typo", "endpoint"},
		{"two_resolvers", `"resolver": configure exactly one of static, dns, file and k8s (got 2)`},
		{"no_resolver", `"resolver": configure exactly one of static, dns, file and k8s (got 0)`},
		{"bad_key", `"routing_key": unknown key "spanID"`},
		{"attrs_without_key", `"routing_attributes": only used with "routing_key: attributes"`},
		{"key_without_attrs", `"routing_attributes": required when "routing_key" is "attributes"`},
		{"bad_endpoint", `"resolver.static.endpoints": "no-port-here" is not host:port`},
		{"duplicate_endpoint", `"a:4317" is listed twice`},
		{"bad_weight", `"resolver.static.weights.a:4317": weight must be > 0`},
		{"weight_unknown_endpoint", `"resolver.static.weights": "b:4317" is not one of the endpoints`},
		{"bad_percent", `"max_ejected_percent": must be between 0 and 100, got 150`},
		{"both_protocols", `"protocol": set only one of otlp and otlphttp`},
		{"template_endpoint", `"protocol.otlp.endpoint": the resolver sets each backend's endpoint; remove "b:4317"`},
		{"dns_no_host", `"resolver.dns.hostname": required`},
		{"k8s_no_service", `"resolver.k8s.service": required`},
		{"dns_bad_port", `"resolver.dns.port": must be a port number, got "http"`},
		{"dns_bad_interval", `"resolver.dns.interval": must be > 0, got -1s`},
		{"template_queue", "sending_queue"},
		{"negative_max_wait", `"max_wait": must be >= 0, got -1s`},
		{"max_wait_without_queue", `"max_wait": only applies with "sending_queue"`},
		{"negative_handover", `"handover": must be >= 0, got -1s`},
		{"zero_drain_timeout", `"drain_timeout": must be > 0, got 0s`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := loadConfig(t, tt.name)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
}

func TestRoutingKeyPerSignal(t *testing.T) {
	cfg := &Config{RoutingKey: keyTraceID}
	_, err := cfg.routingKeyFor(pipeline.SignalMetrics)
	require.ErrorContains(t, err, `"routing_key": "traceID" does not apply to metrics`)
	cfg.RoutingKey = keyMetric
	_, err = cfg.routingKeyFor(pipeline.SignalTraces)
	require.ErrorContains(t, err, `"routing_key": "metric" does not apply to traces`)
	k, err := cfg.routingKeyFor(pipeline.SignalMetrics)
	require.NoError(t, err)
	assert.Equal(t, keyMetric, k)
}

func TestUnmarshalRejectsWrongTypes(t *testing.T) {
	cfg := createDefaultConfig().(*Config)
	err := confmap.NewFromStringMap(map[string]any{"max_ejected_percent": "lots"}).Unmarshal(cfg)
	require.ErrorContains(t, err, "max_ejected_percent")
}
