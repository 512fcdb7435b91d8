package redmetricsconnector // import "github.com/otelcsp/otelcsp/connector/redmetricsconnector"

import (
	"fmt"
	"time"
)

const (
	defaultStoreMaxItems = 10_000
	defaultStoreTTL      = 2 * time.Second
	// maxStoreItems bounds store.max_items: the store grows to that many
	// pending spans (about 100 bytes each plus their map entry), so a
	// typo of a few zeros must be refused rather than take gigabytes.
	maxStoreItems = 10_000_000
)

// defaultLatencyBucketsSec are contrib servicegraph's default latency
// bounds, in seconds (the unit of its histograms).
var defaultLatencyBucketsSec = []float64{0.002, 0.004, 0.006, 0.008, 0.01, 0.05, 0.1, 0.2, 0.4, 0.8, 1, 1.4, 2, 5, 10, 15}

// defaultPeerAttributes name the node an unpaired span points to, first
// present wins.
var defaultPeerAttributes = []string{"peer.service", "db.name", "db.system", "server.address", "messaging.system"}

// defaultDatabaseNameAttributes mark a client span as a database call,
// which is an edge by itself (contrib's database_name_attributes).
var defaultDatabaseNameAttributes = []string{"db.name"}

// ServiceGraphConfig enables the service graph: edges between services
// from client/server and producer/consumer span pairs.
type ServiceGraphConfig struct {
	Enabled bool `mapstructure:"enabled"`
	// Dimensions are added to every edge twice, as client_<name> (from
	// the client span) and server_<name> (from the server span); values
	// are looked up like the RED dimensions: span, then resource, then default.
	Dimensions []Dimension `mapstructure:"dimensions"`
	// LatencyHistogramBuckets are the bounds of the client and server
	// latency histograms (in seconds when emitted).
	LatencyHistogramBuckets []time.Duration `mapstructure:"latency_histogram_buckets"`
	Store                   StoreConfig     `mapstructure:"store"`
	// VirtualNodePeerAttributes name the peer of an unpaired span, the
	// first present wins; empty disables virtual nodes.
	VirtualNodePeerAttributes []string `mapstructure:"virtual_node_peer_attributes"`
	// DatabaseNameAttributes mark a client span as a database call; the
	// first present names the server.
	DatabaseNameAttributes []string `mapstructure:"database_name_attributes"`
}

// StoreConfig bounds the store where a span waits for its other side.
type StoreConfig struct {
	MaxItems int           `mapstructure:"max_items"`
	TTL      time.Duration `mapstructure:"ttl"`
}

func (c *ServiceGraphConfig) validate() []error {
	var errs []error
	if err := validateDimensions("service_graph.dimensions", c.Dimensions, nil); err != nil {
		errs = append(errs, err)
	}
	b := c.LatencyHistogramBuckets
	for i := range b {
		if b[i] <= 0 {
			errs = append(errs, fmt.Errorf("\"service_graph.latency_histogram_buckets[%d]\": must be > 0, got %v", i, b[i]))
		}
		if i > 0 && b[i] <= b[i-1] {
			errs = append(errs, fmt.Errorf("\"service_graph.latency_histogram_buckets[%d]\": must be strictly increasing, got %v after %v", i, b[i], b[i-1]))
		}
	}
	if c.Store.MaxItems <= 0 || c.Store.MaxItems > maxStoreItems {
		errs = append(errs, fmt.Errorf("\"service_graph.store.max_items\": must be in [1, %d], got %d", maxStoreItems, c.Store.MaxItems))
	}
	if c.Store.TTL <= 0 {
		errs = append(errs, fmt.Errorf("\"service_graph.store.ttl\": must be > 0, got %v", c.Store.TTL))
	}
	for i, a := range c.VirtualNodePeerAttributes {
		if a == "" {
			errs = append(errs, fmt.Errorf("\"service_graph.virtual_node_peer_attributes[%d]\": must not be empty", i))
		}
	}
	for i, a := range c.DatabaseNameAttributes {
		if a == "" {
			errs = append(errs, fmt.Errorf("\"service_graph.database_name_attributes[%d]\": must not be empty", i))
		}
	}
	return errs
}

// latencyBounds returns the latency bounds in seconds.
func (c *ServiceGraphConfig) latencyBounds() []float64 {
	if c.LatencyHistogramBuckets == nil {
		return append([]float64(nil), defaultLatencyBucketsSec...)
	}
	out := make([]float64, len(c.LatencyHistogramBuckets))
	for i, d := range c.LatencyHistogramBuckets {
		out[i] = d.Seconds()
	}
	return out
}
