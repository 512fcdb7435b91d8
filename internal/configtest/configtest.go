// Package configtest loads a component's test configs the way the collector
// loads a component's section of a config file, for every component's
// config_test.go: one entry of the package's testdata/config.yaml,
// unmarshalled into the component's default config, then validated.
package configtest // import "github.com/otelcsp/otelcsp/internal/configtest"

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/confmaptest"
)

// Unmarshal reads the entry id ("type" or "type/name", a key of
// testdata/config.yaml) into cfg, a component's default config. A missing
// file or entry fails t; the error is the unmarshal error, for tests that
// expect one (unknown keys, wrong types).
func Unmarshal(t testing.TB, id string, cfg component.Config) error {
	t.Helper()
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	if err != nil {
		t.Fatalf("testdata/config.yaml: %v", err)
	}
	if !cm.IsSet(id) {
		t.Fatalf("testdata/config.yaml has no entry %q", id)
	}
	sub, err := cm.Sub(id)
	if err != nil {
		t.Fatalf("testdata/config.yaml, entry %q: %v", id, err)
	}
	return sub.Unmarshal(cfg)
}

// Load is Unmarshal, then validation as the collector does it
// (confmap.Validate: cfg's Validate and its fields'): the unmarshal error,
// or else the validation error.
func Load(t testing.TB, id string, cfg component.Config) error {
	t.Helper()
	if err := Unmarshal(t, id, cfg); err != nil {
		return err
	}
	return confmap.Validate(cfg)
}

// Expect reads the entry id into cfg, a component's default config, and
// checks the outcome: with unmarshalErr set, unmarshalling fails with an
// error containing it; otherwise, with validateErr set, validation fails
// with an error containing each of them; otherwise cfg validates and equals
// want. The body of every component's table of testdata/config.yaml cases.
func Expect(t *testing.T, id string, cfg component.Config, unmarshalErr string, validateErr []string, want component.Config) {
	t.Helper()
	err := Unmarshal(t, id, cfg)
	if unmarshalErr != "" {
		require.ErrorContains(t, err, unmarshalErr)
		return
	}
	require.NoError(t, err)
	err = confmap.Validate(cfg)
	if validateErr != nil {
		require.Error(t, err)
		for _, want := range validateErr {
			assert.ErrorContains(t, err, want)
		}
		return
	}
	require.NoError(t, err)
	assert.Equal(t, want, cfg)
}
