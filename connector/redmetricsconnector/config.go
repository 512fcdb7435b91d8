package redmetricsconnector // import "github.com/otelcsp/otelcsp/connector/redmetricsconnector"

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"go.opentelemetry.io/collector/confmap"
)

// Names of the dimensions every span series carries unless excluded. They
// are the keys contrib's span metrics connector writes, so dashboards (and
// Jaeger's monitor tab) keep working.
const (
	serviceNameKey          = "service.name"
	spanNameKey             = "span.name"
	spanKindKey             = "span.kind"
	statusCodeKey           = "status.code"
	collectorInstanceKey    = "collector.instance.id"
	scopeNameKey            = "span.instrumentation.scope.name"
	scopeVersionKey         = "span.instrumentation.scope.version"
	overflowKey             = "otel.metric.overflow"
	defaultNamespace        = "traces.span.metrics"
	defaultFlushInterval    = 60 * time.Second
	defaultSeriesExpiration = 5 * time.Minute
	defaultCardinalityLimit = 100_000
	defaultExpoMaxSize      = 160
	defaultMaxExemplars     = 5
	// maxExemplars bounds max_per_data_point: a series allocates its whole
	// exemplar ring on its first traced span, so a huge value (found by
	// FuzzConfig: 2147483647 asked for ~100 GB) must be refused at startup
	// rather than crash the collector on the first span.
	maxExemplars = 1000
	// maxExpoMaxSize bounds histogram.exponential.max_size for the same
	// reason: a series' buckets grow to max_size as its durations spread,
	// and FuzzConfig saw 2147483647 take ~1.5 GB for three series of two
	// spans each. 16384 buckets (128 KiB a series) is far past any use.
	maxExpoMaxSize = 16384
)

// defaultBucketsMs are contrib's default explicit bounds, in milliseconds.
var defaultBucketsMs = []float64{2, 4, 6, 8, 10, 50, 100, 200, 400, 800, 1000, 1400, 2000, 5000, 10_000, 15_000}

// Temporality of the emitted sums and histograms.
type Temporality string

const (
	Cumulative Temporality = "cumulative"
	Delta      Temporality = "delta"
	// contrib's spellings, accepted so a spanmetrics config works unchanged.
	contribCumulative Temporality = "AGGREGATION_TEMPORALITY_CUMULATIVE"
	contribDelta      Temporality = "AGGREGATION_TEMPORALITY_DELTA"
)

// Unit of the duration histogram.
type Unit string

const (
	UnitMilliseconds Unit = "ms"
	UnitSeconds      Unit = "s"
)

// Dimension is one extra dimension: looked up in the span's attributes, then
// the resource's; Default (when set) is used when neither has it, otherwise
// the dimension is left out of that series.
type Dimension struct {
	Name    string  `mapstructure:"name"`
	Default *string `mapstructure:"default"`
}

// HistogramConfig selects the duration histogram.
type HistogramConfig struct {
	// Disable drops the duration metric altogether.
	Disable     bool                        `mapstructure:"disable"`
	Unit        Unit                        `mapstructure:"unit"`
	Explicit    *ExplicitHistogramConfig    `mapstructure:"explicit"`
	Exponential *ExponentialHistogramConfig `mapstructure:"exponential"`
}

// ExplicitHistogramConfig holds explicit bucket bounds as durations.
type ExplicitHistogramConfig struct {
	Buckets []time.Duration `mapstructure:"buckets"`
}

// ExponentialHistogramConfig bounds the number of buckets per data point.
type ExponentialHistogramConfig struct {
	MaxSize int32 `mapstructure:"max_size"`
}

// ExemplarsConfig controls trace/span ID exemplars.
type ExemplarsConfig struct {
	Enabled         bool `mapstructure:"enabled"`
	MaxPerDataPoint int  `mapstructure:"max_per_data_point"`
}

// EventsConfig enables the <namespace>.events metric.
type EventsConfig struct {
	Enabled    bool        `mapstructure:"enabled"`
	Dimensions []Dimension `mapstructure:"dimensions"`
}

// Config of the redmetrics connector.
type Config struct {
	Namespace                    string          `mapstructure:"namespace"`
	Dimensions                   []Dimension     `mapstructure:"dimensions"`
	ExcludeDimensions            []string        `mapstructure:"exclude_dimensions"`
	ResourceMetricsKeyAttributes []string        `mapstructure:"resource_metrics_key_attributes"`
	IncludeInstrumentationScope  []string        `mapstructure:"include_instrumentation_scope"`
	Histogram                    HistogramConfig `mapstructure:"histogram"`
	AggregationTemporality       Temporality     `mapstructure:"aggregation_temporality"`
	MetricsFlushInterval         time.Duration   `mapstructure:"metrics_flush_interval"`
	// SeriesExpiration drops series not updated for that long; 0 keeps them forever.
	SeriesExpiration time.Duration `mapstructure:"series_expiration"`
	// MetricsExpiration is contrib's name for SeriesExpiration, accepted as an alias.
	MetricsExpiration time.Duration `mapstructure:"metrics_expiration"`
	// CardinalityLimit bounds live series across all resources and metrics; 0 means unbounded.
	CardinalityLimit int `mapstructure:"cardinality_limit"`
	// AggregationCardinalityLimit is contrib's name for CardinalityLimit, accepted as an alias.
	AggregationCardinalityLimit int             `mapstructure:"aggregation_cardinality_limit"`
	Exemplars                   ExemplarsConfig `mapstructure:"exemplars"`
	Events                      EventsConfig    `mapstructure:"events"`
	// ServiceGraph adds contrib servicegraph's edge metrics, computed in
	// the same pass over the spans.
	ServiceGraph ServiceGraphConfig `mapstructure:"service_graph"`

	// prevent unkeyed literal initialization
	_ struct{}
}

var _ confmap.Validator = (*Config)(nil)

func createDefaultConfig() *Config {
	return &Config{
		Namespace:              defaultNamespace,
		Histogram:              HistogramConfig{Unit: UnitMilliseconds},
		AggregationTemporality: Cumulative,
		MetricsFlushInterval:   defaultFlushInterval,
		SeriesExpiration:       defaultSeriesExpiration,
		CardinalityLimit:       defaultCardinalityLimit,
		Exemplars:              ExemplarsConfig{MaxPerDataPoint: defaultMaxExemplars},
		ServiceGraph: ServiceGraphConfig{
			Store:                     StoreConfig{MaxItems: defaultStoreMaxItems, TTL: defaultStoreTTL},
			VirtualNodePeerAttributes: append([]string(nil), defaultPeerAttributes...),
			DatabaseNameAttributes:    append([]string(nil), defaultDatabaseNameAttributes...),
		},
	}
}

// reservedDimensions are the default dimensions: they can be excluded, not
// configured again. collector.instance.id is reserved as in contrib (whose
// feature gate adding it is on by default at v0.161.0).
var reservedDimensions = []string{serviceNameKey, spanNameKey, spanKindKey, statusCodeKey, collectorInstanceKey}

// Validate rejects configurations that would run half-configured.
func (c *Config) Validate() error {
	var errs []error
	if err := validateDimensions("dimensions", c.Dimensions, reservedDimensions); err != nil {
		errs = append(errs, err)
	}
	known := map[string]bool{}
	for _, k := range reservedDimensions {
		known[k] = true
	}
	for _, d := range c.Dimensions {
		known[d.Name] = true
	}
	for i, name := range c.ExcludeDimensions {
		if !known[name] {
			errs = append(errs, fmt.Errorf("\"exclude_dimensions[%d]\": %q is neither a default dimension (%s) nor a configured dimension", i, name, strings.Join(reservedDimensions, ", ")))
		}
	}
	for i, k := range c.ResourceMetricsKeyAttributes {
		if k == "" {
			errs = append(errs, fmt.Errorf("\"resource_metrics_key_attributes[%d]\": must not be empty", i))
		}
	}
	for i, k := range c.IncludeInstrumentationScope {
		if k == "" {
			errs = append(errs, fmt.Errorf("\"include_instrumentation_scope[%d]\": must not be empty", i))
		}
	}
	switch c.Histogram.Unit {
	case UnitMilliseconds, UnitSeconds:
	default:
		errs = append(errs, fmt.Errorf("\"histogram.unit\": must be \"ms\" or \"s\", got %q", c.Histogram.Unit))
	}
	if c.Histogram.Explicit != nil && c.Histogram.Exponential != nil {
		errs = append(errs, errors.New("\"histogram\": set either \"explicit\" or \"exponential\", not both"))
	}
	if c.Histogram.Explicit != nil {
		b := c.Histogram.Explicit.Buckets
		for i := range b {
			if b[i] < 0 {
				errs = append(errs, fmt.Errorf("\"histogram.explicit.buckets[%d]\": must be >= 0, got %v", i, b[i]))
			}
			if i > 0 && b[i] <= b[i-1] {
				errs = append(errs, fmt.Errorf("\"histogram.explicit.buckets[%d]\": must be strictly increasing, got %v after %v", i, b[i], b[i-1]))
			}
		}
	}
	if c.Histogram.Exponential != nil && c.Histogram.Exponential.MaxSize != 0 && (c.Histogram.Exponential.MaxSize < 2 || c.Histogram.Exponential.MaxSize > maxExpoMaxSize) {
		errs = append(errs, fmt.Errorf("\"histogram.exponential.max_size\": must be in [2, %d] (or 0 for the default %d), got %d", maxExpoMaxSize, defaultExpoMaxSize, c.Histogram.Exponential.MaxSize))
	}
	switch c.AggregationTemporality {
	case Cumulative, Delta, contribCumulative, contribDelta:
	default:
		errs = append(errs, fmt.Errorf("\"aggregation_temporality\": must be \"cumulative\" or \"delta\", got %q", c.AggregationTemporality))
	}
	if c.MetricsFlushInterval <= 0 {
		errs = append(errs, fmt.Errorf("\"metrics_flush_interval\": must be > 0, got %v", c.MetricsFlushInterval))
	}
	if c.SeriesExpiration < 0 {
		errs = append(errs, fmt.Errorf("\"series_expiration\": must be >= 0, got %v", c.SeriesExpiration))
	}
	if c.MetricsExpiration < 0 {
		errs = append(errs, fmt.Errorf("\"metrics_expiration\": must be >= 0, got %v", c.MetricsExpiration))
	}
	if c.CardinalityLimit < 0 {
		errs = append(errs, fmt.Errorf("\"cardinality_limit\": must be >= 0, got %d", c.CardinalityLimit))
	}
	if c.AggregationCardinalityLimit < 0 {
		errs = append(errs, fmt.Errorf("\"aggregation_cardinality_limit\": must be >= 0, got %d", c.AggregationCardinalityLimit))
	}
	if c.Exemplars.MaxPerDataPoint < 0 || c.Exemplars.MaxPerDataPoint > maxExemplars {
		errs = append(errs, fmt.Errorf("\"exemplars.max_per_data_point\": must be in [0, %d], got %d", maxExemplars, c.Exemplars.MaxPerDataPoint))
	}
	if c.Events.Enabled {
		if len(c.Events.Dimensions) == 0 {
			errs = append(errs, errors.New("\"events.dimensions\": must name at least one dimension when events.enabled is true"))
		} else if err := validateDimensions("events.dimensions", c.Events.Dimensions, append(append([]string{}, reservedDimensions...), dimensionNames(c.Dimensions)...)); err != nil {
			errs = append(errs, err)
		}
	}
	errs = append(errs, c.ServiceGraph.validate()...)
	return errors.Join(errs...)
}

func dimensionNames(ds []Dimension) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = d.Name
	}
	return out
}

func validateDimensions(key string, dims []Dimension, taken []string) error {
	seen := map[string]bool{}
	for _, k := range taken {
		seen[k] = true
	}
	for i, d := range dims {
		if d.Name == "" {
			return fmt.Errorf("%q: name must not be empty", fmt.Sprintf("%s[%d]", key, i))
		}
		if seen[d.Name] {
			return fmt.Errorf("%q: duplicate dimension name %q", fmt.Sprintf("%s[%d]", key, i), d.Name)
		}
		seen[d.Name] = true
	}
	return nil
}

// delta reports whether the configured temporality is delta.
func (c *Config) delta() bool {
	return c.AggregationTemporality == Delta || c.AggregationTemporality == contribDelta
}

// expiration resolves series_expiration and its contrib alias: an explicitly
// set metrics_expiration wins, since only contrib users write it.
func (c *Config) expiration() time.Duration {
	if c.MetricsExpiration > 0 {
		return c.MetricsExpiration
	}
	return c.SeriesExpiration
}

// cardinalityLimit resolves cardinality_limit and its contrib alias the same way.
func (c *Config) cardinalityLimit() int {
	if c.AggregationCardinalityLimit > 0 {
		return c.AggregationCardinalityLimit
	}
	return c.CardinalityLimit
}

// bounds returns the explicit bucket bounds in the histogram's unit.
func (c *Config) bounds() []float64 {
	div := c.unitDivisor()
	if c.Histogram.Explicit != nil && c.Histogram.Explicit.Buckets != nil {
		out := make([]float64, len(c.Histogram.Explicit.Buckets))
		for i, b := range c.Histogram.Explicit.Buckets {
			out[i] = float64(b.Nanoseconds()) / div
		}
		return out
	}
	out := make([]float64, len(defaultBucketsMs))
	for i, b := range defaultBucketsMs {
		out[i] = b * 1e6 / div
	}
	return out
}

// unitDivisor converts nanoseconds into the histogram's unit.
func (c *Config) unitDivisor() float64 {
	if c.Histogram.Unit == UnitSeconds {
		return 1e9
	}
	return 1e6
}

func (c *Config) expoMaxSize() int32 {
	if c.Histogram.Exponential == nil || c.Histogram.Exponential.MaxSize == 0 {
		return defaultExpoMaxSize
	}
	return c.Histogram.Exponential.MaxSize
}
