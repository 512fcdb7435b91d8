package redmetricsconnector

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"

	"github.com/otelcsp/otelcsp/connector/redmetricsconnector/internal/metadata"
	"github.com/otelcsp/otelcsp/internal/configtest"
)

func TestLoadConfig(t *testing.T) {

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

	sg := createDefaultConfig()
	sg.ServiceGraph.Enabled = true

	sgFull := createDefaultConfig()
	sgFull.ServiceGraph = ServiceGraphConfig{
		Enabled:                   true,
		Dimensions:                []Dimension{{Name: "http.request.method"}, {Name: "deployment.environment", Default: strp("unknown")}},
		LatencyHistogramBuckets:   []time.Duration{5 * time.Millisecond, 50 * time.Millisecond, 500 * time.Millisecond, 5 * time.Second},
		Store:                     StoreConfig{MaxItems: 500, TTL: 5 * time.Second},
		VirtualNodePeerAttributes: []string{"peer.service", "server.address"},
		DatabaseNameAttributes:    []string{"db.namespace", "db.name"},
	}

	sgNoVirtual := createDefaultConfig()
	sgNoVirtual.ServiceGraph.Enabled = true
	sgNoVirtual.ServiceGraph.VirtualNodePeerAttributes = []string{}

	tests := []struct {
		id           string
		want         *Config
		unmarshalErr string
		validateErr  []string
	}{
		{id: "", want: createDefaultConfig()},
		{id: "full", want: full},
		{id: "exponential", want: expo},
		{id: "disabled_histogram", want: noHist},
		{id: "contrib", want: contrib},
		{id: "exclude_instance", want: noInstance},
		{id: "instance_dimension", validateErr: []string{`"dimensions[0]": duplicate dimension name "collector.instance.id"`}},
		{id: "service_graph", want: sg},
		{id: "service_graph_full", want: sgFull},
		{id: "service_graph_no_virtual", want: sgNoVirtual},
		{id: "service_graph_typo", unmarshalErr: "max_item"},
		{id: "service_graph_typo_top", unmarshalErr: "enable"},
		{id: "service_graph_bad_max_items", validateErr: []string{`"service_graph.store.max_items": must be in [1, 10000000], got 0`}},
		{id: "service_graph_huge_max_items", validateErr: []string{`"service_graph.store.max_items": must be in [1, 10000000], got 100000000`}},
		{id: "service_graph_bad_ttl", validateErr: []string{`"service_graph.store.ttl": must be > 0, got -1s`}},
		{id: "service_graph_bad_buckets", validateErr: []string{`"service_graph.latency_histogram_buckets[1]": must be strictly increasing, got 1s after 1s`}},
		{id: "service_graph_zero_bucket", validateErr: []string{`"service_graph.latency_histogram_buckets[0]": must be > 0, got 0s`}},
		{id: "service_graph_empty_peer", validateErr: []string{`"service_graph.virtual_node_peer_attributes[1]": must not be empty`}},
		{id: "service_graph_empty_db", validateErr: []string{`"service_graph.database_name_attributes[0]": must not be empty`}},
		{id: "service_graph_duplicate_dimension", validateErr: []string{`"service_graph.dimensions[1]": duplicate dimension name "a"`}},
		{id: "typo", unmarshalErr: "dimension"},
		{id: "typo_nested", unmarshalErr: "bucket"},
		{id: "bad_unit", validateErr: []string{`"histogram.unit": must be "ms" or "s", got "us"`}},
		{id: "both_histograms", validateErr: []string{`"histogram": set either "explicit" or "exponential", not both`}},
		{id: "bad_buckets", validateErr: []string{`"histogram.explicit.buckets[1]": must be strictly increasing, got 5ms after 10ms`}},
		{id: "bad_max_size", validateErr: []string{`"histogram.exponential.max_size": must be in [2, 16384] (or 0 for the default 160), got 1`}},
		{id: "bad_temporality", validateErr: []string{`"aggregation_temporality": must be "cumulative" or "delta", got "sometimes"`}},
		{id: "bad_flush", validateErr: []string{`"metrics_flush_interval": must be > 0, got 0s`}},
		{id: "bad_expiration", validateErr: []string{`"series_expiration": must be >= 0, got -1s`}},
		{id: "bad_limit", validateErr: []string{`"cardinality_limit": must be >= 0, got -3`}},
		{id: "bad_exemplars", validateErr: []string{`"exemplars.max_per_data_point": must be in [0, 1000], got -1`}},
		{id: "duplicate_dimension", validateErr: []string{`"dimensions[0]": duplicate dimension name "span.kind"`}},
		{id: "duplicate_dimension2", validateErr: []string{`"dimensions[1]": duplicate dimension name "a"`}},
		{id: "empty_dimension", validateErr: []string{`"dimensions[0]": name must not be empty`}},
		{id: "bad_exclude", validateErr: []string{`"exclude_dimensions[0]": "no.such.dimension" is neither a default dimension (service.name, span.name, span.kind, status.code, collector.instance.id) nor a configured dimension`}},
		{id: "events_without_dimensions", validateErr: []string{`"events.dimensions": must name at least one dimension when events.enabled is true`}},
		{id: "events_duplicate", validateErr: []string{`"events.dimensions[0]": duplicate dimension name "a"`}},
	}
	for _, tt := range tests {
		t.Run("redmetrics/"+tt.id, func(t *testing.T) {
			cfg := NewFactory().CreateDefaultConfig()
			configtest.Expect(t, component.NewIDWithName(metadata.Type, tt.id).String(), cfg, tt.unmarshalErr, tt.validateErr, tt.want)
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
	// The service graph is off; its defaults are contrib's, but for a
	// store ten times larger (contrib: 1000) and two more peer attributes.
	assert.False(t, cfg.ServiceGraph.Enabled)
	assert.Equal(t, 10_000, cfg.ServiceGraph.Store.MaxItems)
	assert.Equal(t, 2*time.Second, cfg.ServiceGraph.Store.TTL)
	assert.Equal(t, []string{"peer.service", "db.name", "db.system", "server.address", "messaging.system"}, cfg.ServiceGraph.VirtualNodePeerAttributes)
	assert.Equal(t, []string{"db.name"}, cfg.ServiceGraph.DatabaseNameAttributes)
	assert.Equal(t, []float64{0.002, 0.004, 0.006, 0.008, 0.01, 0.05, 0.1, 0.2, 0.4, 0.8, 1, 1.4, 2, 5, 10, 15}, cfg.ServiceGraph.latencyBounds())
}
