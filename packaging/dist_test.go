// Package packaging tests what `make package` writes to dist/: the .deb, the
// .rpm, the OCI image, the SBOMs and the checksums. The tests read the
// artifacts themselves (ar, tar, JSON), check their contents against the
// sources under packaging/, distribution/ and testdata/, and run the
// packaged binaries on the packaged configs.
//
// Without dist/ they skip, saying so; `make test` runs them through `make
// package-test` with OTELCSP_REQUIRE_PACKAGES=1, where a missing artifact
// fails instead.
package packaging

import (
	"bytes"
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

// repoRoot is the repository, relative to this package's directory (where
// go test runs the tests).
const repoRoot = ".."

// release is what builder-config.yaml says about the distribution: the one
// place the version is set.
type release struct {
	Version     string
	Description string
	// Modules are the collector modules the manifest pins (path → version).
	Modules map[string]string
}

func readRelease(t *testing.T) release {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoRoot, "builder-config.yaml"))
	require.NoError(t, err)
	type module struct {
		GoMod string `yaml:"gomod"`
		Path  string `yaml:"path"`
	}
	var manifest struct {
		Dist struct {
			Version     string `yaml:"version"`
			Description string `yaml:"description"`
		} `yaml:"dist"`
		Receivers  []module `yaml:"receivers"`
		Processors []module `yaml:"processors"`
		Exporters  []module `yaml:"exporters"`
		Connectors []module `yaml:"connectors"`
		Extensions []module `yaml:"extensions"`
		Providers  []module `yaml:"providers"`
	}
	require.NoError(t, yaml.Unmarshal(data, &manifest))
	require.NotEmpty(t, manifest.Dist.Version, "builder-config.yaml: dist.version")
	r := release{Version: manifest.Dist.Version, Description: manifest.Dist.Description, Modules: map[string]string{}}
	for _, kind := range [][]module{manifest.Receivers, manifest.Processors, manifest.Exporters, manifest.Connectors, manifest.Extensions, manifest.Providers} {
		for _, m := range kind {
			if m.Path != "" {
				continue // this repository's own module, built from the tree
			}
			path, version, ok := strings.Cut(m.GoMod, " ")
			require.True(t, ok, "builder-config.yaml: gomod %q has no version", m.GoMod)
			r.Modules[path] = version
		}
	}
	return r
}

// distFile is the path of an artifact in dist/. When it is missing the test
// skips, or fails under `make test` (OTELCSP_REQUIRE_PACKAGES set).
//
// Under -race (`make unit`) they skip too: they share no memory between
// goroutines, and unpacking a package's binary takes minutes with the race
// detector; `make package-test` runs them right after, without it.
func distFile(t *testing.T, name string) string {
	t.Helper()
	if raceEnabled && os.Getenv("OTELCSP_REQUIRE_PACKAGES") == "" {
		t.Skip("NOT TESTED under -race: `make package-test` runs the packaging tests without it")
	}
	path := filepath.Join(repoRoot, "dist", name)
	if _, err := os.Stat(path); err != nil {
		msg := "NOT TESTED: " + err.Error() + ": run `make package` first (`make test` runs `make package-test`)"
		if os.Getenv("OTELCSP_REQUIRE_PACKAGES") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return path
}

// hostArch is the architecture whose binaries this machine can run.
func hostArch(t *testing.T) string {
	if runtime.GOOS != "linux" {
		t.Skipf("the packaged binaries are linux binaries; this is %s", runtime.GOOS)
	}
	return runtime.GOARCH
}

var elfMachines = map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}

// requireStaticELF checks that the file is a linux binary for goarch that
// needs no dynamic loader (no PT_INTERP): it runs on the empty image base
// and on any distribution's libc.
func requireStaticELF(t *testing.T, path, goarch string) {
	t.Helper()
	f, err := elf.Open(path)
	require.NoError(t, err, path)
	defer func() { require.NoError(t, f.Close()) }()
	require.Equal(t, elfMachines[goarch], f.Machine, "%s: machine", path)
	for _, p := range f.Progs {
		require.NotEqual(t, elf.PT_INTERP, p.Type, "%s is dynamically linked", path)
	}
}

// runBinary runs the packaged binary with only env as its environment, so a
// config that needs a variable the package or image does not set fails.
func runBinary(t *testing.T, bin string, env []string, args ...string) string {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	if cmd.Env == nil {
		cmd.Env = []string{}
	}
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	require.NoError(t, cmd.Run(), "%s %s:\n%s", bin, strings.Join(args, " "), out.String())
	return out.String()
}

// requireVersion checks the binary's --version against builder-config.yaml.
func requireVersion(t *testing.T, bin string, r release) {
	t.Helper()
	require.Equal(t, "otelcsp version "+r.Version, strings.TrimSpace(runBinary(t, bin, nil, "--version")))
}

func readRepoFile(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoRoot, path))
	require.NoError(t, err)
	return data
}
