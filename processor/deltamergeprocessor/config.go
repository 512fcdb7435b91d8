package deltamergeprocessor // import "github.com/otelcsp/otelcsp/processor/deltamergeprocessor"

import (
	"errors"
	"fmt"
	"time"

	"go.opentelemetry.io/collector/confmap"
)

const (
	defaultWriterAttribute     = "collector.instance.id"
	defaultInterval            = 60 * time.Second
	defaultMaxStreams          = 100_000
	defaultStreamExpiration    = 5 * time.Minute
	defaultMaxWritersPerStream = 64
	// maxWritersPerStream caps max_writers_per_stream: a point looks its
	// writer up among the stream's writer records one by one, and each
	// record holds the writer's last windows (about 160 bytes).
	maxWritersPerStream = 1024
)

// Config of the deltamerge processor.
type Config struct {
	// WriterAttribute identifies the writer of a point (looked up on the
	// data point, then on its resource). It is left out of the stream
	// identity and of the output.
	WriterAttribute string `mapstructure:"writer_attribute"`
	// Interval between two emissions of every stream's cumulative point.
	Interval time.Duration `mapstructure:"interval"`
	// MaxStreams bounds the streams held; points of new streams past it go
	// to their metric's overflow stream.
	MaxStreams int `mapstructure:"max_streams"`
	// StreamExpiration drops a stream (or a writer of a stream) into which
	// no point was merged for that long; 0 keeps them.
	StreamExpiration time.Duration `mapstructure:"stream_expiration"`
	// MaxWritersPerStream bounds the writers remembered per stream; the
	// least recently seen one is evicted past it.
	MaxWritersPerStream int `mapstructure:"max_writers_per_stream"`

	// prevent unkeyed literal initialization
	_ struct{}
}

var _ confmap.Validator = (*Config)(nil)

func createDefaultConfig() *Config {
	return &Config{
		WriterAttribute:     defaultWriterAttribute,
		Interval:            defaultInterval,
		MaxStreams:          defaultMaxStreams,
		StreamExpiration:    defaultStreamExpiration,
		MaxWritersPerStream: defaultMaxWritersPerStream,
	}
}

// Validate rejects configurations that would run half-configured.
func (c *Config) Validate() error {
	var errs []error
	if c.WriterAttribute == "" {
		errs = append(errs, errors.New(`"writer_attribute": must not be empty`))
	}
	if c.Interval <= 0 {
		errs = append(errs, fmt.Errorf(`"interval": must be > 0, got %v`, c.Interval))
	}
	if c.MaxStreams <= 0 {
		errs = append(errs, fmt.Errorf(`"max_streams": must be > 0, got %d`, c.MaxStreams))
	}
	switch {
	case c.StreamExpiration < 0:
		errs = append(errs, fmt.Errorf(`"stream_expiration": must be >= 0 (0 keeps streams forever), got %v`, c.StreamExpiration))
	case c.StreamExpiration > 0 && c.Interval > 0 && c.StreamExpiration < c.Interval:
		// A stream updated once per interval would expire at every flush
		// and restart from zero: a counter reset each interval.
		errs = append(errs, fmt.Errorf(`"stream_expiration": must be 0 or at least "interval" (%v), got %v`, c.Interval, c.StreamExpiration))
	}
	if c.MaxWritersPerStream < 1 || c.MaxWritersPerStream > maxWritersPerStream {
		errs = append(errs, fmt.Errorf(`"max_writers_per_stream": must be in [1, %d], got %d`, maxWritersPerStream, c.MaxWritersPerStream))
	}
	return errors.Join(errs...)
}
