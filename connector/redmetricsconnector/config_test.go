package redmetricsconnector

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/confmaptest"

	"github.com/otelcsp/otelcsp/connector/redmetricsconnector/internal/metadata"
)

func TestLoadConfig(t *testing.T) {
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	require.NoError(t, err)

	full := createDefaultConfig()
	full.Namespace = "app.span.metrics"
	full.Dimensions = []Dimension{{Name: "http.request.method"}, {Name: "deployment.environment", Default: strp("unknown")}}
	full.ExcludeDimensions = []string{"status.code"}
	full.ResourceMetricsKeyAttributes = []string{"service.name", "telemetry.sdk.language"}
	full.IncludeInstrumentationScope = []string{"io.opentelemetry.http"}
	full.Histogram = HistogramConfig{Unit: UnitSeconds, Explicit: &ExplicitHistogramConfig{Buckets: []time.Duration{10 * time.Millisecond, 100 * time.Millisecond, time.Second, 10 * time.Second}}}
	full.AggregationTemporality = Delta
	full.MetricsFlushInterval = 15 * time.Second
	full.SeriesExpiration = 10 * time.Minute
	full.CardinalityLimit = 5000
	full.Exemplars = ExemplarsConfig{Enabled: true, MaxPerDataPoint: 3}
	full.Events = EventsConfig{Enabled: true, Dimensions: []Dimension{{Name: "exception.type"}}}

	expo := createDefaultConfig()
	expo.Histogram.Exponential = &ExponentialHistogramConfig{MaxSize: 80}

	noHist := createDefaultConfig()
	noHist.Histogram.Disable = true

	contrib := createDefaultConfig()
	contrib.AggregationTemporality = "AGGREGATION_TEMPORALITY_DELTA"
	contrib.MetricsExpiration = time.Hour
	contrib.AggregationCardinalityLimit = 2000

	noInstance := createDefaultConfig()
	noInstance.ExcludeDimensions = []string{"collector.instance.id"}

	tests := []struct {
		id           string
		want         *Config
		unmarshalErr string
		validateErr  string
	}{
		{id: "", want: createDefaultConfig()},
		{id: "full", want: full},
		{id: "exponential", want: expo},
		{id: "disabled_histogram", want: noHist},
		{id: "contrib", want: contrib},
		{id: "exclude_instance", want: noInstance},
		{id: "instance_dimension", validateErr: `"dimensions[0]": duplicate dimension name "collector.instance.id"`},
		{id: "typo", unmarshalErr: "dimension"},
		{id: "typo_nested", unmarshalErr: "bucket"},
		{id: "bad_unit", validateErr: `"histogram.unit": must be "ms" or "s", got "us"`},
		{id: "both_histograms", validateErr: `"histogram": set either "explicit" or "exponential", not both`},
		{id: "bad_buckets", validateErr: `"histogram.explicit.buckets[1]": must be strictly increasing, got 5ms after 10ms`},
		{id: "bad_max_size", validateErr: `"histogram.exponential.max_size": must be in [2, 16384] (or 0 for the default 160), got 1`},
		{id: "bad_temporality", validateErr: `"aggregation_temporality": must be "cumulative" or "delta", got "sometimes"`},
		{id: "bad_flush", validateErr: `"metrics_flush_interval": must be > 0, got 0s`},
		{id: "bad_expiration", validateErr: `"series_expiration": must be >= 0, got -1s`},
		{id: "bad_limit", validateErr: `"cardinality_limit": must be >= 0, got -3`},
		{id: "bad_exemplars", validateErr: `"exemplars.max_per_data_point": must be in [0, 1000], got -1`},
		{id: "duplicate_dimension", validateErr: `"dimensions[0]": duplicate dimension name "span.kind"`},
		{id: "duplicate_dimension2", validateErr: `"dimensions[1]": duplicate dimension name "a"`},
		{id: "empty_dimension", validateErr: `"dimensions[0]": name must not be empty`},
		{id: "bad_exclude", validateErr: `"exclude_dimensions[0]": "no.such.dimension" is neither a default dimension (service.name, span.name, span.kind, status.code, collector.instance.id) nor a configured dimension`},
		{id: "events_without_dimensions", validateErr: `"events.dimensions": must name at least one dimension when events.enabled is true`},
		{id: "events_duplicate", validateErr: `"events.dimensions[0]": duplicate dimension name "a"`},
	}
	for _, tt := range tests {
		t.Run("redmetrics/"+tt.id, func(t *testing.T) {
			id := component.NewID(metadata.Type)
			if tt.id != "" {
				id = component.NewIDWithName(metadata.Type, tt.id)
			}
			sub, err := cm.Sub(id.String())
			require.NoError(t, err)
			cfg := NewFactory().CreateDefaultConfig()
			err = sub.Unmarshal(cfg)
			if tt.unmarshalErr != "" {
				require.ErrorContains(t, err, tt.unmarshalErr)
				return
			}
			require.NoError(t, err)
			err = confmap.Validate(cfg)
			if tt.validateErr != "" {
				require.ErrorContains(t, err, tt.validateErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, cfg)
		})
	}
}

func TestDefaultConfig(t *testing.T) {
	cfg := createDefaultConfig()
	require.NoError(t, cfg.Validate())
	assert.Equal(t, "traces.span.metrics", cfg.Namespace)
	assert.Equal(t, time.Minute, cfg.MetricsFlushInterval)
	assert.Equal(t, Cumulative, cfg.AggregationTemporality)
	assert.Equal(t, UnitMilliseconds, cfg.Histogram.Unit)
	assert.Equal(t, defaultBucketsMs, cfg.bounds())
	assert.Equal(t, int32(160), cfg.expoMaxSize())
	assert.Equal(t, 100_000, cfg.cardinalityLimit())
	assert.Equal(t, 5*time.Minute, cfg.expiration())
	assert.False(t, cfg.Exemplars.Enabled)
	assert.False(t, cfg.Events.Enabled)
}
