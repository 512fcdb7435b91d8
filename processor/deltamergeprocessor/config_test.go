package deltamergeprocessor

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"

	"github.com/otelcsp/otelcsp/internal/configtest"
	"github.com/otelcsp/otelcsp/processor/deltamergeprocessor/internal/metadata"
)

func TestLoadConfig(t *testing.T) {

	full := createDefaultConfig()
	full.WriterAttribute = "k8s.pod.name"
	full.Interval = 15 * time.Second
	full.MaxStreams = 5000
	full.StreamExpiration = 10 * time.Minute
	full.MaxWritersPerStream = 8

	noExp := createDefaultConfig()
	noExp.StreamExpiration = 0

	equal := createDefaultConfig()
	equal.Interval = 30 * time.Second
	equal.StreamExpiration = 30 * time.Second

	one := createDefaultConfig()
	one.MaxWritersPerStream = 1

	maxW := createDefaultConfig()
	maxW.MaxWritersPerStream = 1024

	// The README's example.
	readme := createDefaultConfig()
	readme.Interval = 30 * time.Second
	readme.MaxStreams = 200_000
	readme.MaxWritersPerStream = 16

	tests := []struct {
		id           string
		want         *Config
		unmarshalErr string
		validateErr  []string
	}{
		{id: "", want: createDefaultConfig()},
		{id: "full", want: full},
		{id: "no_expiration", want: noExp},
		{id: "expiration_equals_interval", want: equal},
		{id: "one_writer", want: one},
		{id: "max_writers", want: maxW},
		{id: "readme_example", want: readme},
		{id: "typo", unmarshalErr: "writer_attributes"},
		{id: "typo_interval", unmarshalErr: "flush_interval"},
		{id: "contrib_key", unmarshalErr: "max_stale"},
		{id: "bad_type", unmarshalErr: "max_streams"},
		{id: "empty_writer", validateErr: []string{`"writer_attribute": must not be empty`}},
		{id: "zero_interval", validateErr: []string{`"interval": must be > 0, got 0s`}},
		{id: "negative_interval", validateErr: []string{`"interval": must be > 0, got -1s`}},
		{id: "zero_streams", validateErr: []string{`"max_streams": must be > 0, got 0`}},
		{id: "negative_streams", validateErr: []string{`"max_streams": must be > 0, got -5`}},
		{id: "negative_expiration", validateErr: []string{`"stream_expiration": must be >= 0 (0 keeps streams forever), got -1s`}},
		{id: "expiration_below_interval", validateErr: []string{`"stream_expiration": must be 0 or at least "interval" (1m0s), got 30s`}},
		{id: "zero_writers", validateErr: []string{`"max_writers_per_stream": must be in [1, 1024], got 0`}},
		{id: "too_many_writers", validateErr: []string{`"max_writers_per_stream": must be in [1, 1024], got 1025`}},
		{id: "several_errors", validateErr: []string{`"interval": must be > 0, got 0s`, `"max_streams": must be > 0, got -1`}},
	}
	for _, tt := range tests {
		t.Run("deltamerge/"+tt.id, func(t *testing.T) {
			cfg := NewFactory().CreateDefaultConfig()
			configtest.Expect(t, component.NewIDWithName(metadata.Type, tt.id).String(), cfg, tt.unmarshalErr, tt.validateErr, tt.want)
		})
	}
}

func TestDefaultConfig(t *testing.T) {
	cfg := createDefaultConfig()
	require.NoError(t, cfg.Validate())
	assert.Equal(t, "collector.instance.id", cfg.WriterAttribute)
	assert.Equal(t, time.Minute, cfg.Interval)
	assert.Equal(t, 100_000, cfg.MaxStreams)
	assert.Equal(t, 5*time.Minute, cfg.StreamExpiration)
	assert.Equal(t, 64, cfg.MaxWritersPerStream)
}
