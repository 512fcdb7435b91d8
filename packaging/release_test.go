package packaging

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

var rpmArches = map[string]string{"amd64": "x86_64", "arm64": "aarch64"}

// builtArches are the architectures the last `make package` built: those
// whose .deb its checksums file lists. (`make package-test` builds one;
// another's older packages may still lie in dist/.)
func builtArches(t *testing.T, r release) []string {
	t.Helper()
	sums := readDist(t, distFile(t, "otelcsp_"+r.Version+"_checksums.txt"))
	var arches []string
	for arch := range rpmArches {
		if bytes.Contains(sums, []byte("  otelcsp_"+r.Version+"_"+arch+".deb\n")) {
			arches = append(arches, arch)
		}
	}
	require.NotEmpty(t, arches, "the checksums file lists no .deb")
	return arches
}

// TestChecksums checks each SHA-256 of the checksums file and that it lists
// every artifact of each architecture it lists a .deb of.
func TestChecksums(t *testing.T) {
	r := readRelease(t)
	sums := readDist(t, distFile(t, "otelcsp_"+r.Version+"_checksums.txt"))
	listed := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(sums))
	for sc.Scan() {
		sum, name, ok := strings.Cut(sc.Text(), "  ")
		require.True(t, ok, "checksums line %q is not sha256sum's", sc.Text())
		got := sha256.Sum256(readDist(t, filepath.Join(repoRoot, "dist", name)))
		require.Equal(t, sum, hex.EncodeToString(got[:]), "SHA-256 of %s", name)
		listed[name] = true
	}
	want := []string{"otelcsp_" + r.Version + "_image.tar"}
	for _, arch := range builtArches(t, r) {
		want = append(want,
			"otelcsp_"+r.Version+"_"+arch+".deb",
			"otelcsp-"+r.Version+"-1."+rpmArches[arch]+".rpm",
			"otelcsp_"+r.Version+"_linux_"+arch+".cdx.json")
	}
	for _, name := range want {
		require.True(t, listed[name], "%s is not in the checksums file", name)
	}
}

// TestRPM checks the .rpm's lead (name-version-release and that it is a
// binary package); its files come from the same nfpm.yaml as the .deb's,
// which TestDeb checks.
func TestRPM(t *testing.T) {
	r := readRelease(t)
	for _, arch := range builtArches(t, r) {
		data := readDist(t, distFile(t, "otelcsp-"+r.Version+"-1."+rpmArches[arch]+".rpm"))
		require.GreaterOrEqual(t, len(data), 96, "rpm lead")
		require.Equal(t, []byte{0xed, 0xab, 0xee, 0xdb}, data[0:4], "rpm magic")
		require.Equal(t, []byte{0, 0}, data[6:8], "rpm type: binary")
		name, _, _ := bytes.Cut(data[10:76], []byte{0})
		require.Equal(t, "otelcsp-"+r.Version+"-1", string(name), "rpm name-version-release against builder-config.yaml")
	}
}

// TestSBOM checks each CycloneDX SBOM: it describes the otelcsp binary at
// the release's version and lists every collector module the manifest
// pins, at the pinned version.
func TestSBOM(t *testing.T) {
	r := readRelease(t)
	for _, arch := range builtArches(t, r) {
		var bom struct {
			BOMFormat string `json:"bomFormat"`
			Metadata  struct {
				Component struct {
					Name    string `json:"name"`
					Version string `json:"version"`
					PURL    string `json:"purl"`
				} `json:"component"`
				Properties []struct {
					Name  string `json:"name"`
					Value string `json:"value"`
				} `json:"properties"`
			} `json:"metadata"`
			Components []struct {
				Name    string `json:"name"`
				Version string `json:"version"`
			} `json:"components"`
		}
		require.NoError(t, json.Unmarshal(readDist(t, distFile(t, "otelcsp_"+r.Version+"_linux_"+arch+".cdx.json")), &bom))
		require.Equal(t, "CycloneDX", bom.BOMFormat)
		c := bom.Metadata.Component
		require.Equal(t, "github.com/otelcsp/otelcsp/cmd/otelcsp", c.Name, "the SBOM's subject")
		require.Equal(t, "v"+r.Version, c.Version, "SBOM version against builder-config.yaml")
		require.Contains(t, c.PURL, "goarch="+arch)
		props := map[string]string{}
		for _, p := range bom.Metadata.Properties {
			props[p.Name] = p.Value
		}
		require.Equal(t, arch, props["cdx:gomod:build:env:GOARCH"], "the SBOM's binary")
		require.Equal(t, "0", props["cdx:gomod:build:env:CGO_ENABLED"], "the SBOM's binary")
		bin := readDist(t, filepath.Join(repoRoot, "dist", "linux_"+arch, "otelcsp"))
		sum := sha256.Sum256(bin)
		require.Equal(t, hex.EncodeToString(sum[:]), props["cdx:gomod:binary:hash:SHA-256"], "the SBOM describes dist/linux_%s/otelcsp", arch)
		versions := map[string]string{}
		for _, m := range bom.Components {
			versions[m.Name] = m.Version
		}
		for path, version := range r.Modules {
			require.Equal(t, version, versions[path], "%s in the %s SBOM", path, arch)
		}
	}
}

// TestDebArches checks the binary of every built .deb, the cross-compiled
// ones included: a static linux binary for the package's architecture, the
// one the SBOM describes.
func TestDebArches(t *testing.T) {
	r := readRelease(t)
	for _, arch := range builtArches(t, r) {
		members := readAr(t, distFile(t, "otelcsp_"+r.Version+"_"+arch+".deb"))
		require.Equal(t, arch, controlFields(string(tarGzOf(t, members["control.tar.gz"])["/control"].data))["Architecture"])
		dir := t.TempDir()
		tarGzOf(t, members["data.tar.gz"]).extract(t, dir)
		requireStaticELF(t, filepath.Join(dir, "usr/bin/otelcsp"), arch)
		// The binary the SBOM and the image were made from.
		require.True(t, bytes.Equal(readDist(t, filepath.Join(repoRoot, "dist", "linux_"+arch, "otelcsp")),
			readDist(t, filepath.Join(dir, "usr/bin/otelcsp"))), "the %s .deb's binary is not dist/linux_%s/otelcsp", arch, arch)
	}
}
