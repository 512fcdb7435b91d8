package syntheticreceiver

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"

	"github.com/otelcsp/otelcsp/internal/configtest"
)

func loadConfig(t *testing.T, id string) (*Config, error) {
	t.Helper()
	cfg := NewFactory().CreateDefaultConfig().(*Config)
	return cfg, configtest.Load(t, id, cfg)
}

func TestConfigDefaults(t *testing.T) {
	cfg, err := loadConfig(t, "synthetic")
	require.NoError(t, err)
	assert.Equal(t, &Config{Rate: 10, BatchSize: 1}, cfg)
	assert.Equal(t, NewFactory().CreateDefaultConfig(), cfg)

	// The default topology is the one used when services is empty: it must
	// compile and have 5 to 8 services.
	services, err := defaultServices()
	require.NoError(t, err)
	assert.GreaterOrEqual(t, len(services), 5)
	assert.LessOrEqual(t, len(services), 8)
	require.NoError(t, validateServices(services))
}

func TestConfigEveryKey(t *testing.T) {
	cfg, err := loadConfig(t, "synthetic/all")
	require.NoError(t, err)
	want := &Config{
		Rate:      2500.5,
		MaxTraces: 100000,
		Seed:      42,
		BatchSize: 50,
		Canary:    CanaryConfig{Enabled: true, GeneratorID: "gateway-a"},
		Services: []ServiceConfig{
			{
				Name:               "api",
				Instances:          3,
				ResourceAttributes: map[string]any{"service.version": "1.2.3", "host.cpu.count": 8},
				Operations: []OperationConfig{
					{
						Name:       "GET /users/{id}",
						Kind:       "server",
						Latency:    LatencyConfig{Median: 5 * time.Millisecond, P99: 80 * time.Millisecond},
						ErrorRatio: 0.05,
						Weight:     2,
						Attributes: map[string]any{"http.request.method": "GET", "http.route": "/users/{id}"},
						Exception: ExceptionConfig{
							Type: "TimeoutError", Message: "upstream timed out",
							Stacktrace: "TimeoutError: upstream timed out\n  at handler (api.js:10)",
						},
						Events: []EventConfig{{Name: "cache miss", Attributes: map[string]any{"cache.key": "user"}}},
						Calls: []CallConfig{{
							Service: "users", Operation: "users.Get", Count: 2, Parallel: true,
							Name: "users.Get call", Attributes: map[string]any{"rpc.retry": false},
						}},
					},
					{
						// weight and count take their defaults inside lists.
						Name: "GET /health", Kind: "server", Weight: 1,
						Latency: LatencyConfig{Median: 100 * time.Microsecond, P99: time.Millisecond},
					},
				},
			},
			{
				Name:      "users",
				Instances: 1, // the default inside the list
				Operations: []OperationConfig{{
					Name: "users.Get", Kind: "server", Weight: 1,
					Latency:    LatencyConfig{Median: time.Millisecond, P99: time.Millisecond},
					Attributes: map[string]any{"rpc.system": "grpc"},
				}},
			},
		},
	}
	assert.Equal(t, want, cfg)
}

func TestConfigCallCountDefault(t *testing.T) {
	conf := confmap.NewFromStringMap(map[string]any{
		"services": []any{map[string]any{
			"name": "a",
			"operations": []any{
				map[string]any{"name": "root", "kind": "server", "latency": map[string]any{"median": "1ms", "p99": "2ms"},
					"calls": []any{map[string]any{"operation": "leaf"}}},
				map[string]any{"name": "leaf", "kind": "internal", "latency": map[string]any{"median": "1ms", "p99": "2ms"}},
			},
		}},
	})
	cfg := NewFactory().CreateDefaultConfig().(*Config)
	require.NoError(t, conf.Unmarshal(cfg))
	require.NoError(t, cfg.Validate())
	assert.Equal(t, 1, cfg.Services[0].Operations[0].Calls[0].Count)
	assert.Equal(t, 1.0, cfg.Services[0].Operations[1].Weight)
	assert.Equal(t, 1, cfg.Services[0].Instances)
}

// instances: 0 written in YAML is an error, not the default of 1 that an
// absent key gets.
func TestConfigInstancesZeroInYAML(t *testing.T) {
	conf := confmap.NewFromStringMap(map[string]any{
		"services": []any{map[string]any{
			"name": "a", "instances": 0,
			"operations": []any{map[string]any{"name": "root", "kind": "server", "latency": map[string]any{"median": "1ms", "p99": "2ms"}}},
		}},
	})
	cfg := NewFactory().CreateDefaultConfig().(*Config)
	require.NoError(t, conf.Unmarshal(cfg))
	assert.ErrorContains(t, cfg.Validate(), `"services[0].instances": must be in [1, 1000], got 0`)
}

func TestConfigUnknownKeys(t *testing.T) {
	for name, raw := range map[string]map[string]any{
		"top level":    {"rates": 5},
		"canary":       {"canary": map[string]any{"enable": true}},
		"service":      {"services": []any{map[string]any{"name": "a", "operation": []any{}}}},
		"operation":    {"services": []any{map[string]any{"name": "a", "operations": []any{map[string]any{"name": "x", "latency_ms": 3}}}}},
		"latency":      {"services": []any{map[string]any{"name": "a", "operations": []any{map[string]any{"name": "x", "latency": map[string]any{"p95": "1ms"}}}}}},
		"call":         {"services": []any{map[string]any{"name": "a", "operations": []any{map[string]any{"name": "x", "calls": []any{map[string]any{"fanout": 2}}}}}}},
		"wrong type":   {"batch_size": "lots"},
		"bad duration": {"services": []any{map[string]any{"name": "a", "operations": []any{map[string]any{"name": "x", "latency": map[string]any{"median": "fast"}}}}}},
	} {
		t.Run(name, func(t *testing.T) {
			cfg := NewFactory().CreateDefaultConfig()
			assert.Error(t, confmap.NewFromStringMap(raw).Unmarshal(cfg))
		})
	}
}

// validServices returns a small valid topology that tests break one key at a time.
func validServices() []ServiceConfig {
	lat := LatencyConfig{Median: time.Millisecond, P99: 10 * time.Millisecond}
	return []ServiceConfig{
		{Name: "front", Instances: 1, Operations: []OperationConfig{{
			Name: "GET /", Kind: "server", Latency: lat, Weight: 1,
			Calls: []CallConfig{{Service: "back", Operation: "Get", Count: 1}},
		}}},
		{Name: "back", Instances: 1, Operations: []OperationConfig{
			{Name: "Get", Kind: "server", Latency: lat, Weight: 1, Calls: []CallConfig{{Operation: "query", Count: 1}}},
			{Name: "query", Kind: "client", Latency: lat, Weight: 1},
		}},
	}
}

func TestConfigInvalid(t *testing.T) {
	tests := []struct {
		name   string
		modify func(*Config)
		// want lists substrings of the error: the key and the bad value.
		want []string
	}{
		{"rate zero", func(c *Config) { c.Rate = 0 }, []string{`"rate"`, "got 0"}},
		{"rate negative", func(c *Config) { c.Rate = -3 }, []string{`"rate": must be > 0, got -3`}},
		{"max_traces negative", func(c *Config) { c.MaxTraces = -1 }, []string{`"max_traces"`, "got -1"}},
		{"batch_size zero", func(c *Config) { c.BatchSize = 0 }, []string{`"batch_size"`, "got 0"}},
		{"batch_size huge", func(c *Config) { c.BatchSize = maxBatchSize + 1 }, []string{`"batch_size"`, "got 100001"}},
		{"service without name", func(c *Config) { c.Services[0].Name = "" }, []string{`"services[0].name"`}},
		{"duplicate service", func(c *Config) { c.Services[1].Name = "front" }, []string{`"services[1].name"`, `"front"`}},
		{"service.name resource attribute", func(c *Config) {
			c.Services[0].ResourceAttributes = map[string]any{"service.name": "x"}
		}, []string{`"services[0].resource_attributes"`, "service.name"}},
		{"service.instance.id resource attribute", func(c *Config) {
			c.Services[1].ResourceAttributes = map[string]any{"service.instance.id": "x"}
		}, []string{`"services[1].resource_attributes"`, "service.instance.id"}},
		{"instances zero", func(c *Config) { c.Services[0].Instances = 0 }, []string{`"services[0].instances": must be in [1, 1000], got 0`}},
		{"instances negative", func(c *Config) { c.Services[0].Instances = -2 }, []string{`"services[0].instances"`, "got -2"}},
		{"instances huge", func(c *Config) { c.Services[0].Instances = maxInstances + 1 }, []string{`"services[0].instances"`, "got 1001"}},
		{"no operations", func(c *Config) { c.Services[1].Operations = nil }, []string{`"services[1].operations"`}},
		{"operation without name", func(c *Config) { c.Services[1].Operations[1].Name = "" }, []string{`"services[1].operations[1].name"`}},
		{"duplicate operation", func(c *Config) { c.Services[1].Operations[1].Name = "Get" }, []string{`"services[1].operations[1].name"`, `"Get"`}},
		{"bad kind", func(c *Config) { c.Services[0].Operations[0].Kind = "serve" }, []string{`"services[0].operations[0].kind"`, `"serve"`}},
		{"median zero", func(c *Config) { c.Services[0].Operations[0].Latency.Median = 0 }, []string{`"services[0].operations[0].latency.median"`, "got 0s"}},
		{"p99 below median", func(c *Config) { c.Services[0].Operations[0].Latency.P99 = time.Microsecond }, []string{`"services[0].operations[0].latency.p99"`, "got 1µs"}},
		{"error_ratio above 1", func(c *Config) { c.Services[1].Operations[0].ErrorRatio = 1.5 }, []string{`"services[1].operations[0].error_ratio"`, "got 1.5"}},
		{"error_ratio negative", func(c *Config) { c.Services[1].Operations[0].ErrorRatio = -0.1 }, []string{`"services[1].operations[0].error_ratio"`, "got -0.1"}},
		{"weight negative", func(c *Config) { c.Services[0].Operations[0].Weight = -1 }, []string{`"services[0].operations[0].weight"`, "got -1"}},
		{"bad attribute value", func(c *Config) {
			c.Services[0].Operations[0].Attributes = map[string]any{"x": struct{}{}}
		}, []string{`"services[0].operations[0].attributes"`, `"x"`}},
		{"event without name", func(c *Config) {
			c.Services[0].Operations[0].Events = []EventConfig{{}}
		}, []string{`"services[0].operations[0].events[0].name"`}},
		{"unknown service", func(c *Config) { c.Services[0].Operations[0].Calls[0].Service = "nope" }, []string{`"services[0].operations[0].calls[0].service"`, `"nope"`}},
		{"unknown operation", func(c *Config) { c.Services[0].Operations[0].Calls[0].Operation = "Put" }, []string{`"services[0].operations[0].calls[0].operation"`, `"Put"`}},
		{"count zero", func(c *Config) { c.Services[0].Operations[0].Calls[0].Count = 0 }, []string{`"services[0].operations[0].calls[0].count"`, "got 0"}},
		{"count huge", func(c *Config) { c.Services[0].Operations[0].Calls[0].Count = maxFanOut + 1 }, []string{`"services[0].operations[0].calls[0].count"`, "got 1001"}},
		{"plain call to another service", func(c *Config) {
			c.Services[0].Operations[0].Calls[0].Operation = "query"
		}, []string{`"services[0].operations[0].calls[0].operation"`, "must target a server or consumer operation"}},
		{"name on plain call", func(c *Config) { c.Services[1].Operations[0].Calls[0].Name = "x" }, []string{`"services[1].operations[0].calls[0]"`}},
		{"cycle", func(c *Config) {
			c.Services[1].Operations[1].Calls = []CallConfig{{Service: "front", Operation: "GET /", Count: 1}}
		}, []string{"cycle"}},
		{"no root", func(c *Config) { c.Services[0].Operations[0].Weight = 0 }, []string{`"services"`, "no operation can start a trace"}},
		{"trace too big", func(c *Config) {
			c.Services[0].Operations[0].Calls[0].Count = 1000
			c.Services[1].Operations[0].Calls[0].Count = 1000
		}, []string{`"services[0].operations[0]"`, "more than the limit"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := createDefaultConfig().(*Config)
			cfg.Services = validServices()
			require.NoError(t, cfg.Validate(), "the base config must be valid")
			tt.modify(cfg)
			err := cfg.Validate()
			require.Error(t, err)
			for _, w := range tt.want {
				assert.Contains(t, err.Error(), w)
			}
		})
	}
}

func TestConfigErrorsNameEveryBadKey(t *testing.T) {
	cfg := &Config{Rate: -1, BatchSize: 0, MaxTraces: -5}
	err := cfg.Validate()
	require.Error(t, err)
	for _, key := range []string{`"rate"`, `"batch_size"`, `"max_traces"`} {
		assert.True(t, strings.Contains(err.Error(), key), "error %q does not name %s", err, key)
	}
}

func TestConfigIsAComponentConfig(t *testing.T) {
	var _ component.Config = (*Config)(nil)
	var _ confmap.Unmarshaler = (*OperationConfig)(nil)
}
