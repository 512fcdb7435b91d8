package canaryprocessor

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"

	"github.com/otelcsp/otelcsp/internal/configtest"
	"github.com/otelcsp/otelcsp/processor/canaryprocessor/internal/metadata"
)

func TestLoadConfig(t *testing.T) {

	full := createDefaultConfig()
	full.LossAfter = time.Minute
	full.Window = 5000
	full.MaxGenerators = 200
	full.ResourceAttributes = []string{"k8s.pod.name", "k8s.node.name"}
	full.Drop = false

	readme := createDefaultConfig()
	readme.ResourceAttributes = []string{"k8s.pod.name"}

	smallest := createDefaultConfig()
	smallest.LossAfter = time.Nanosecond
	smallest.Window = 1
	smallest.MaxGenerators = 1

	largest := createDefaultConfig()
	largest.LossAfter = 24 * time.Hour
	largest.Window = 1_000_000
	largest.MaxGenerators = 2000

	tests := []struct {
		id           string
		want         *Config
		unmarshalErr string
		validateErr  []string
	}{
		{id: "", want: createDefaultConfig()},
		{id: "full", want: full},
		{id: "readme_example", want: readme},
		{id: "smallest", want: smallest},
		{id: "largest", want: largest},
		{id: "typo", unmarshalErr: "loss_afer"},
		{id: "typo_generators", unmarshalErr: "max_generator"},
		{id: "bad_type", unmarshalErr: "window"},
		{id: "bad_duration", unmarshalErr: "loss_after"},
		{id: "bad_drop", unmarshalErr: "drop"},
		{id: "attributes_not_a_list", want: func() *Config {
			// mapstructure turns a single string into a one-element list.
			c := createDefaultConfig()
			c.ResourceAttributes = []string{"k8s.pod.name"}
			return c
		}()},
		{id: "zero_loss_after", validateErr: []string{`"loss_after": must be in (0, 24h0m0s], got 0s`}},
		{id: "negative_loss_after", validateErr: []string{`"loss_after": must be in (0, 24h0m0s], got -5s`}},
		{id: "loss_after_too_long", validateErr: []string{`"loss_after": must be in (0, 24h0m0s], got 25h0m0s`}},
		{id: "zero_window", validateErr: []string{`"window": must be in [1, 1000000], got 0`}},
		{id: "window_too_large", validateErr: []string{`"window": must be in [1, 1000000], got 1000001`}},
		{id: "zero_generators", validateErr: []string{`"max_generators": must be in [1, 100000], got 0`}},
		{id: "too_many_generators", validateErr: []string{`"max_generators": must be in [1, 100000], got 100001`}},
		{id: "too_much_memory", validateErr: []string{`"window" (1000000) x "max_generators" (100000): the windows would take 11920 MiB, more than the limit of 256 MiB`}},
		{id: "empty_attribute", validateErr: []string{`"resource_attributes[0]": must not be empty`}},
		{id: "generator_attribute", validateErr: []string{`"resource_attributes[0]": "synthetic.generator" is the canary's own attribute`}},
		{id: "processor_attribute", validateErr: []string{`"resource_attributes[0]": "processor" names this processor on its metrics`}},
		{id: "duplicate_attribute", validateErr: []string{`"resource_attributes[1]": "k8s.pod.name" is listed twice`}},
		{id: "too_many_attributes", validateErr: []string{`"resource_attributes": at most 16 names, got 17`}},
		{id: "several_errors", validateErr: []string{`"loss_after": must be in (0, 24h0m0s], got 0s`, `"window": must be in [1, 1000000], got -1`}},
	}
	for _, tt := range tests {
		t.Run("canary/"+tt.id, func(t *testing.T) {
			cfg := NewFactory().CreateDefaultConfig()
			configtest.Expect(t, component.NewIDWithName(metadata.Type, tt.id).String(), cfg, tt.unmarshalErr, tt.validateErr, tt.want)
		})
	}
}

func TestDefaultConfig(t *testing.T) {
	cfg := createDefaultConfig()
	require.NoError(t, cfg.Validate())
	assert.Equal(t, 30*time.Second, cfg.LossAfter)
	assert.Equal(t, 10_000, cfg.Window)
	assert.Equal(t, 1_000, cfg.MaxGenerators)
	assert.Empty(t, cfg.ResourceAttributes)
	assert.True(t, cfg.Drop)
}
