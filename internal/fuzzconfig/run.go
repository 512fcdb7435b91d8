package fuzzconfig

import (
	"context"
	"testing"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
)

// Target is what one component's FuzzConfig target adds to the body every
// target shares (Run): its own seeds, its default config, and how to build
// and drive the component from a config that validated.
type Target[C component.Config] struct {
	// Seeds are inputs beyond the entries of testdata/config.yaml: wrong
	// types, numbers at and past their bounds, hostile strings, deep nesting.
	Seeds []string
	// NewConfig is the component's default config, which each input is
	// unmarshalled into, as the collector does.
	NewConfig func() component.Config
	// Build creates the component(s) from a valid config. ok false means the
	// factory refused it, which a valid config may be for a reason the
	// target names (say, a routing key that does not apply to a signal);
	// where it must not be, Build fails t itself.
	Build func(ctx context.Context, t *testing.T, cfg C) (b Built, ok bool)
}

// Built is what Build made: Run starts the components (unless NoStart),
// calls Use, shuts them down in order, then calls Check.
type Built struct {
	Components []component.Component
	// NoStart skips Start, for a component that would listen or dial.
	NoStart bool
	// Use drives the running components (a probe batch to consume);
	// an error it returns fails the input.
	Use func(ctx context.Context) error
	// Check asserts on what the components did, after their shutdown.
	Check func(t *testing.T)
}

// Run is the FuzzConfig body shared by every component: it seeds the fuzzer
// (AddSeeds, then tg.Seeds) and, for each input, reads it into the default
// config; if that unmarshals and validates (Valid), it builds the component,
// starts it, uses it and shuts it down, failing the input on any error: a
// config the collector accepts must run, and none may panic.
func Run[C component.Config](f *testing.F, tg Target[C]) {
	f.Helper()
	AddSeeds(f)
	for _, s := range tg.Seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg := tg.NewConfig()
		if !Valid(data, cfg) {
			return
		}
		typed, ok := cfg.(C)
		if !ok {
			t.Fatalf("NewConfig returned %T, the target takes another type", cfg)
		}
		ctx := context.Background()
		b, ok := tg.Build(ctx, t, typed)
		if !ok {
			return
		}
		if !b.NoStart {
			for _, c := range b.Components {
				if err := c.Start(ctx, componenttest.NewNopHost()); err != nil {
					t.Fatalf("start with a valid config: %v", err)
				}
			}
		}
		if b.Use != nil {
			if err := b.Use(ctx); err != nil {
				t.Fatalf("use with a valid config: %v", err)
			}
		}
		for _, c := range b.Components {
			if err := c.Shutdown(ctx); err != nil {
				t.Fatalf("shutdown: %v", err)
			}
		}
		if b.Check != nil {
			b.Check(t)
		}
	})
}
