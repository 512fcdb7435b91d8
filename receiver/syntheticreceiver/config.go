package syntheticreceiver // import "github.com/otelcsp/otelcsp/receiver/syntheticreceiver"

import (
	"errors"
	"fmt"
	"math"
	"time"

	"go.opentelemetry.io/collector/confmap"
)

// Limits that keep a typo from turning the generator into a memory bomb: a
// fan-out of 1000 three levels deep is a billion spans per trace.
const (
	maxBatchSize     = 100_000
	maxFanOut        = 1_000
	maxSpansPerTrace = 10_000
	maxInstances     = 1_000
)

// Config is the configuration of the synthetic receiver.
type Config struct {
	// Rate is the number of traces generated per second, spread smoothly by a
	// token bucket.
	Rate float64 `mapstructure:"rate"`
	// MaxTraces stops generation after that many traces; 0 means never stop.
	MaxTraces int64 `mapstructure:"max_traces"`
	// Seed makes the output reproducible; 0 picks a random seed at creation.
	Seed uint64 `mapstructure:"seed"`
	// BatchSize is the number of traces handed to the next consumer per call.
	BatchSize int `mapstructure:"batch_size"`
	// Canary numbers traces so a backend can count loss.
	Canary CanaryConfig `mapstructure:"canary"`
	// Services is the topology; empty means the built-in default topology.
	Services []ServiceConfig `mapstructure:"services"`
}

// CanaryConfig turns on canary numbering.
type CanaryConfig struct {
	Enabled bool `mapstructure:"enabled"`
	// GeneratorID is written to the synthetic.generator resource attribute;
	// empty means "<receiver id>-<16 random hex digits>", new on every start
	// of the collector, so that a restart (which starts numbering at 1 again)
	// shows up as a new generator instead of as numbers seen twice.
	GeneratorID string `mapstructure:"generator_id"`
}

// ServiceConfig is one service of the topology.
type ServiceConfig struct {
	Name string `mapstructure:"name"`
	// ResourceAttributes are added to the resource; service.name (from
	// Name) and service.instance.id are set by the receiver.
	ResourceAttributes map[string]any `mapstructure:"resource_attributes"`
	// Instances is the number of processes of the service, told apart by
	// service.instance.id; each call lands on a random one. 1 unless set
	// (Unmarshal); 0 is invalid, in Go as in YAML.
	Instances  int               `mapstructure:"instances"`
	Operations []OperationConfig `mapstructure:"operations"`
}

// OperationConfig is one operation of a service: one span kind, one latency
// distribution, one error ratio.
type OperationConfig struct {
	Name string `mapstructure:"name"`
	// Kind is server, client, internal, producer or consumer.
	Kind    string        `mapstructure:"kind"`
	Latency LatencyConfig `mapstructure:"latency"`
	// ErrorRatio is the probability that a span of this operation fails.
	ErrorRatio float64 `mapstructure:"error_ratio"`
	// Weight is the relative frequency of this operation as the root of a
	// trace; it only matters for operations no call targets.
	Weight     float64         `mapstructure:"weight"`
	Attributes map[string]any  `mapstructure:"attributes"`
	Exception  ExceptionConfig `mapstructure:"exception"`
	Events     []EventConfig   `mapstructure:"events"`
	Calls      []CallConfig    `mapstructure:"calls"`
}

// LatencyConfig is a log-normal distribution given by its median and its
// 99th percentile. It is the time the operation spends itself: the time of
// its downstream calls comes on top, so that parents always enclose children.
type LatencyConfig struct {
	Median time.Duration `mapstructure:"median"`
	P99    time.Duration `mapstructure:"p99"`
}

// ExceptionConfig describes the exception event recorded on failed spans.
type ExceptionConfig struct {
	Type       string `mapstructure:"type"`
	Message    string `mapstructure:"message"`
	Stacktrace string `mapstructure:"stacktrace"`
}

// EventConfig is a span event recorded on every span of the operation.
type EventConfig struct {
	Name       string         `mapstructure:"name"`
	Attributes map[string]any `mapstructure:"attributes"`
}

// CallConfig is a downstream call. A call to a server or consumer operation
// is a client (or producer) span in the caller with the callee's server (or
// consumer) span as its child; a call to any other kind is a plain child span.
type CallConfig struct {
	// Service defaults to the calling service.
	Service   string `mapstructure:"service"`
	Operation string `mapstructure:"operation"`
	// Count is the fan-out: how many times the call is made per span.
	Count int `mapstructure:"count"`
	// Parallel makes the Count calls overlap instead of running one after
	// the other.
	Parallel bool `mapstructure:"parallel"`
	// Name of the caller-side span; defaults to the callee operation's name.
	Name string `mapstructure:"name"`
	// Attributes of the caller-side span, on top of the ones derived from the
	// callee (peer.service, server.address, protocol attributes).
	Attributes map[string]any `mapstructure:"attributes"`
}

var (
	_ confmap.Unmarshaler = (*ServiceConfig)(nil)
	_ confmap.Unmarshaler = (*OperationConfig)(nil)
	_ confmap.Unmarshaler = (*CallConfig)(nil)
)

// Unmarshal gives a list element the defaults CreateDefaultConfig cannot
// reach: a service has one instance unless set.
func (sc *ServiceConfig) Unmarshal(conf *confmap.Conf) error {
	sc.Instances = 1
	return conf.Unmarshal(sc)
}

// Unmarshal gives an operation a weight of 1 unless set.
func (op *OperationConfig) Unmarshal(conf *confmap.Conf) error {
	op.Weight = 1
	return conf.Unmarshal(op)
}

// Unmarshal gives a call a fan-out count of 1 unless set.
func (c *CallConfig) Unmarshal(conf *confmap.Conf) error {
	c.Count = 1
	return conf.Unmarshal(c)
}

// target is the name of the called service: the caller's own unless set.
func (c *CallConfig) target(caller string) string {
	if c.Service == "" {
		return caller
	}
	return c.Service
}

// Validate checks the configuration; every error names the key at fault and
// its bad value, and the collector refuses to start on any of them.
func (cfg *Config) Validate() error {
	var errs []error
	if math.IsNaN(cfg.Rate) || math.IsInf(cfg.Rate, 0) || cfg.Rate <= 0 {
		errs = append(errs, fmt.Errorf(`"rate": must be > 0, got %v`, cfg.Rate))
	}
	if cfg.MaxTraces < 0 {
		errs = append(errs, fmt.Errorf(`"max_traces": must be >= 0 (0 = unlimited), got %d`, cfg.MaxTraces))
	}
	if cfg.BatchSize < 1 || cfg.BatchSize > maxBatchSize {
		errs = append(errs, fmt.Errorf(`"batch_size": must be in [1, %d], got %d`, maxBatchSize, cfg.BatchSize))
	}
	if len(cfg.Services) > 0 {
		errs = append(errs, validateServices(cfg.Services))
	}
	return errors.Join(errs...)
}
