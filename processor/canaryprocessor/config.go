package canaryprocessor // import "github.com/otelcsp/otelcsp/processor/canaryprocessor"

import (
	"errors"
	"fmt"
	"time"

	"go.opentelemetry.io/collector/confmap"
)

const (
	defaultLossAfter     = 30 * time.Second
	defaultWindow        = 10_000
	defaultMaxGenerators = 1_000

	maxLossAfter     = 24 * time.Hour
	maxWindow        = 1_000_000
	maxMaxGenerators = 100_000
	// maxBitmapBytes bounds window x max_generators: every generator
	// followed holds one bit per number of its window.
	maxBitmapBytes       = 256 << 20
	maxResourceAttrCount = 16
)

// Config of the canary processor.
type Config struct {
	// LossAfter is how long a sequence number may be missing, once a
	// higher one of the same generator arrived, before it is declared
	// lost: numbers reordered across tiers within it are not losses.
	LossAfter time.Duration `mapstructure:"loss_after"`
	// Window is how many sequence numbers below a generator's highest
	// one are remembered; a number that leaves it unreceived is lost.
	Window int `mapstructure:"window"`
	// MaxGenerators bounds the generators followed; the least recently
	// seen one is forgotten past it.
	MaxGenerators int `mapstructure:"max_generators"`
	// ResourceAttributes are resource attributes that, with
	// synthetic.generator, tell sequences apart; each is also an
	// attribute of the processor's metrics.
	ResourceAttributes []string `mapstructure:"resource_attributes"`
	// Drop removes canary traces and logs from the data passed on.
	Drop bool `mapstructure:"drop"`

	// prevent unkeyed literal initialization
	_ struct{}
}

var _ confmap.Validator = (*Config)(nil)

func createDefaultConfig() *Config {
	return &Config{
		LossAfter:     defaultLossAfter,
		Window:        defaultWindow,
		MaxGenerators: defaultMaxGenerators,
		Drop:          true,
	}
}

// Validate rejects configurations that would run half-configured; every
// error names the key and the bad value.
func (c *Config) Validate() error {
	var errs []error
	if c.LossAfter <= 0 || c.LossAfter > maxLossAfter {
		errs = append(errs, fmt.Errorf(`"loss_after": must be in (0, %v], got %v`, maxLossAfter, c.LossAfter))
	}
	windowOK := c.Window >= 1 && c.Window <= maxWindow
	if !windowOK {
		errs = append(errs, fmt.Errorf(`"window": must be in [1, %d], got %d`, maxWindow, c.Window))
	}
	gensOK := c.MaxGenerators >= 1 && c.MaxGenerators <= maxMaxGenerators
	if !gensOK {
		errs = append(errs, fmt.Errorf(`"max_generators": must be in [1, %d], got %d`, maxMaxGenerators, c.MaxGenerators))
	}
	if windowOK && gensOK {
		if b := bitmapBytes(c.Window) * int64(c.MaxGenerators); b > maxBitmapBytes {
			errs = append(errs, fmt.Errorf(`"window" (%d) x "max_generators" (%d): the windows would take %d MiB, more than the limit of %d MiB; lower one of them`,
				c.Window, c.MaxGenerators, b>>20, maxBitmapBytes>>20))
		}
	}
	if len(c.ResourceAttributes) > maxResourceAttrCount {
		errs = append(errs, fmt.Errorf(`"resource_attributes": at most %d names, got %d`, maxResourceAttrCount, len(c.ResourceAttributes)))
	}
	seen := map[string]bool{}
	for i, name := range c.ResourceAttributes {
		key := fmt.Sprintf("resource_attributes[%d]", i)
		switch {
		case name == "":
			errs = append(errs, fmt.Errorf("%q: must not be empty", key))
		case name == attrGenerator || name == attrSequence:
			errs = append(errs, fmt.Errorf("%q: %q is the canary's own attribute, always used; remove it", key, name))
		case name == attrProcessor:
			errs = append(errs, fmt.Errorf("%q: %q names this processor on its metrics; a resource attribute of that name would collide with it", key, name))
		case seen[name]:
			errs = append(errs, fmt.Errorf("%q: %q is listed twice", key, name))
		}
		seen[name] = true
	}
	return errors.Join(errs...)
}

// bitmapBytes is the memory of one generator's window.
func bitmapBytes(window int) int64 { return int64((window+63)/64) * 8 }
