// Package fuzzconfig holds what the FuzzConfig targets of every component
// share: turning fuzz bytes into a config the way the collector reads one,
// and seeding the fuzzer with the component's own test configs.
package fuzzconfig // import "github.com/otelcsp/otelcsp/internal/fuzzconfig"

import (
	"maps"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	"go.yaml.in/yaml/v3"
)

// Conf reads fuzz bytes the way the collector's file provider reads a
// config (confmap.NewRetrievedFromYAML); anything that is not a mapping, or
// not YAML, is not a component config and is refused (ok false). An empty
// document is the empty mapping, as `<type>:` with nothing under it is.
func Conf(data []byte) (conf *confmap.Conf, ok bool) {
	r, err := confmap.NewRetrievedFromYAML(data)
	if err != nil {
		return nil, false
	}
	raw, err := r.AsRaw()
	if err != nil {
		return nil, false
	}
	if raw == nil {
		return confmap.New(), true
	}
	m, ok := raw.(map[string]any)
	if !ok {
		return nil, false
	}
	return confmap.NewFromStringMap(m), true
}

// Valid reads fuzz bytes as Conf does into cfg, a component's default
// config, and says whether the result unmarshals and validates: the
// configs a FuzzConfig target then builds and runs a component from.
func Valid(data []byte, cfg component.Config) bool {
	conf, ok := Conf(data)
	return ok && conf.Unmarshal(cfg) == nil && confmap.Validate(cfg) == nil
}

// AddSeeds adds every entry of the package's testdata/config.yaml, valid and
// invalid, so the fuzzer starts from the shapes the config tests know.
func AddSeeds(f *testing.F) {
	f.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", "config.yaml"))
	if err != nil {
		f.Fatal(err)
	}
	var entries map[string]any
	if err := yaml.Unmarshal(raw, &entries); err != nil {
		f.Fatal(err)
	}
	for _, k := range slices.Sorted(maps.Keys(entries)) {
		b, err := yaml.Marshal(entries[k])
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
}
