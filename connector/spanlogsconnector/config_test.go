package spanlogsconnector

import (
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"

	"github.com/otelcsp/otelcsp/connector/spanlogsconnector/internal/metadata"
	"github.com/otelcsp/otelcsp/internal/configtest"
)

func loadConfig(t *testing.T, name string) (*Config, error) {
	t.Helper()
	cfg := NewFactory().CreateDefaultConfig().(*Config)
	return cfg, configtest.Load(t, component.NewIDWithName(metadata.Type, name).String(), cfg)
}

func TestLoadConfig(t *testing.T) {
	def, err := loadConfig(t, "")
	require.NoError(t, err)
	assert.Equal(t, createDefaultConfig(), def)
	assert.Equal(t, []RuleConfig{{Name: "errors", Type: "errors"}, {Name: "exceptions", Type: "exceptions"}}, def.Rules)
	assert.InDelta(t, 1.0, def.RatePerFingerprint, 0)
	assert.Equal(t, 5, def.Burst)
	assert.Equal(t, 10000, def.MaxFingerprints)

	full, err := loadConfig(t, "full")
	require.NoError(t, err)
	want := &Config{
		RatePerFingerprint: 0.5,
		Burst:              3,
		MaxFingerprints:    500,
		Attributes:         AttributesConfig{Include: []string{"http.*", "user.id"}, Exclude: []string{"http.request.header.*"}},
		Rules: []RuleConfig{
			{
				Name: "payment-errors", Type: "errors",
				Services: []string{"checkout", "payment-*"}, SpanNames: []string{"POST /pay*"}, SpanKinds: []string{"server"},
				Body: "{service} {span.name}: {status.message} ({duration})", Severity: "fatal",
			},
			{Type: "exceptions", Attributes: &AttributesConfig{Exclude: []string{"*"}}, Burst: ptr(1)},
			{
				Name: "slow-db", Type: "slow", SpanKinds: []string{"client"}, Threshold: time.Second,
				Thresholds: []ThresholdConfig{
					{Service: "db-*", SpanName: "SELECT *", Threshold: 250 * time.Millisecond},
					{SpanName: "batch *", Threshold: time.Minute},
				},
			},
			{Name: "everything", Type: "all", RatePerFingerprint: ptr(0.0)},
		},
	}
	assert.Equal(t, want, full)

	comp, err := compileConfig(full)
	require.NoError(t, err)
	require.Len(t, comp.rules, 4)
	assert.Equal(t, "exceptions", comp.rules[1].name, "an unnamed rule is named after its type")
	assert.Equal(t, 1, comp.rules[1].burst)
	assert.InDelta(t, 0.5, comp.rules[1].rate, 0)
	assert.Equal(t, 3, comp.rules[0].burst)
	assert.InDelta(t, 0.0, comp.rules[3].rate, 0)
	assert.Equal(t, sevFatal, comp.rules[0].severity)
}

func TestLoadConfigReadmeExample(t *testing.T) {
	cfg, err := loadConfig(t, "readme")
	require.NoError(t, err)
	comp, err := compileConfig(cfg)
	require.NoError(t, err)
	require.Len(t, comp.rules, 4)
	assert.Equal(t, sevInfo, comp.rules[3].severity)
	assert.True(t, comp.rules[3].severityFixed)
	assert.InDelta(t, 0.0, comp.rules[3].rate, 0)
	assert.Equal(t, uint8(1<<2|1<<5), comp.rules[0].kinds, "server and consumer")
}

func TestLoadConfigUnknownKeys(t *testing.T) {
	_, err := loadConfig(t, "typo")
	assert.ErrorContains(t, err, "rate_per_fingerprnt")
	_, err = loadConfig(t, "rule_typo")
	assert.ErrorContains(t, err, "span_name")
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name   string
		modify func(*Config)
		err    string // empty: valid
	}{
		{"default", func(*Config) {}, ""},
		{"rate negative", func(c *Config) { c.RatePerFingerprint = -3 }, `"rate_per_fingerprint": must be a finite number >= 0, got -3`},
		{"rate zero is off", func(c *Config) { c.RatePerFingerprint = 0 }, ""},
		{"burst zero", func(c *Config) { c.Burst = 0 }, `"burst": must be >= 1, got 0`},
		{"max fingerprints", func(c *Config) { c.MaxFingerprints = -1 }, `"max_fingerprints": must be >= 1, got -1`},
		{"no rules", func(c *Config) { c.Rules = nil }, `"rules": at least one rule is needed`},
		{"bad type", func(c *Config) { c.Rules = []RuleConfig{{Type: "error"}} }, `"rules[0].type": must be one of errors, exceptions, slow, all, got "error"`},
		{"missing type", func(c *Config) { c.Rules = []RuleConfig{{Name: "x"}} }, `"rules[0].type"`},
		{"duplicate names", func(c *Config) { c.Rules = []RuleConfig{{Type: "errors"}, {Type: "errors"}} }, `"rules[1].name": duplicate rule name "errors"`},
		{"same type other names", func(c *Config) { c.Rules = []RuleConfig{{Type: "errors"}, {Name: "e2", Type: "errors"}} }, ""},
		{"empty glob", func(c *Config) { c.Rules = []RuleConfig{{Type: "errors", Services: []string{""}}} }, `"rules[0].services[0]": a glob must not be empty`},
		{"span kind typo", func(c *Config) { c.Rules = []RuleConfig{{Type: "errors", SpanKinds: []string{"srv"}}} }, `"rules[0].span_kinds[0]": matches no span kind`},
		{"span kind case", func(c *Config) { c.Rules = []RuleConfig{{Type: "errors", SpanKinds: []string{"SERVER"}}} }, ""},
		{"slow without threshold", func(c *Config) { c.Rules = []RuleConfig{{Type: "slow"}} }, `"rules[0].threshold": a slow rule needs a threshold > 0 or thresholds`},
		{"slow negative", func(c *Config) { c.Rules = []RuleConfig{{Type: "slow", Threshold: -time.Second}} }, `"rules[0].threshold": must be > 0, got -1s`},
		{"slow per-service only", func(c *Config) {
			c.Rules = []RuleConfig{{Type: "slow", Thresholds: []ThresholdConfig{{Service: "db", Threshold: time.Second}}}}
		}, ""},
		{"slow entry threshold", func(c *Config) {
			c.Rules = []RuleConfig{{Type: "slow", Thresholds: []ThresholdConfig{{Service: "db"}}}}
		}, `"rules[0].thresholds[0].threshold": must be > 0, got 0s`},
		{"threshold on errors", func(c *Config) { c.Rules = []RuleConfig{{Type: "errors", Threshold: time.Second}} }, `"rules[0].threshold": only a slow rule takes a threshold`},
		{"unknown placeholder", func(c *Config) { c.Rules = []RuleConfig{{Type: "errors", Body: "{service} {spanname}"}} }, `"rules[0].body": unknown placeholder {spanname}`},
		{"unclosed brace", func(c *Config) { c.Rules = []RuleConfig{{Type: "errors", Body: "{service"}} }, `"rules[0].body": unclosed '{' at offset 0`},
		{"stray brace", func(c *Config) { c.Rules = []RuleConfig{{Type: "errors", Body: "a } b"}} }, `"rules[0].body": unmatched '}' at offset 2`},
		{"empty attr key", func(c *Config) { c.Rules = []RuleConfig{{Type: "errors", Body: "{attr:}"}} }, `unknown placeholder {attr:}`},
		{"bad severity", func(c *Config) { c.Rules = []RuleConfig{{Type: "errors", Severity: "LOUD"}} }, `"rules[0].severity": must be one of TRACE, DEBUG, INFO, WARN, ERROR, FATAL, got "LOUD"`},
		{"rule rate negative", func(c *Config) { c.Rules = []RuleConfig{{Type: "errors", RatePerFingerprint: ptr(-1.0)}} }, `"rules[0].rate_per_fingerprint": must be a finite number >= 0, got -1`},
		{"rate NaN", func(c *Config) { c.RatePerFingerprint = math.NaN() }, `"rate_per_fingerprint": must be a finite number >= 0, got NaN`},
		{"rate infinite", func(c *Config) { c.RatePerFingerprint = math.Inf(1) }, `"rate_per_fingerprint": must be a finite number >= 0, got +Inf`},
		{"rule rate NaN", func(c *Config) { c.Rules = []RuleConfig{{Type: "errors", RatePerFingerprint: ptr(math.NaN())}} }, `"rules[0].rate_per_fingerprint": must be a finite number >= 0, got NaN`},
		{"rule burst", func(c *Config) { c.Rules = []RuleConfig{{Type: "errors", Burst: ptr(0)}} }, `"rules[0].burst": must be >= 1, got 0`},
		{"global attributes glob", func(c *Config) { c.Attributes.Include = []string{""} }, `"attributes.include[0]": a glob must not be empty`},
		{"rule attributes glob", func(c *Config) {
			c.Rules = []RuleConfig{{Type: "errors", Attributes: &AttributesConfig{Exclude: []string{""}}}}
		}, `"rules[0].attributes.exclude[0]"`},
		{"several errors at once", func(c *Config) { c.Burst = 0; c.MaxFingerprints = 0 }, `"max_fingerprints"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := createDefaultConfig()
			tt.modify(cfg)
			err := confmap.Validate(cfg)
			if tt.err == "" {
				assert.NoError(t, err)
				return
			}
			assert.ErrorContains(t, err, tt.err)
		})
	}
}
