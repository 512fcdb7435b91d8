package deploy

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/otelcsp/otelcsp/internal/collectortest"
	"sigs.k8s.io/yaml"
)

// allUnits is every collector container deploy/ describes: the manifest
// sets, the Helm releases and the operator resources.
func allUnits(t *testing.T) []podUnit {
	t.Helper()
	var out []podUnit
	seen := map[string]bool{}
	for _, set := range manifestSets(t) {
		units, errs := indexSet(t, set).units()
		for _, err := range errs {
			t.Fatal(err)
		}
		for _, u := range units {
			// The sets share most of their objects: a container and
			// config seen in an earlier set is not run again.
			k := u.name + "\x00" + u.config + "\x00" + fmt.Sprint(u.container.Env)
			if !seen[k] {
				seen[k] = true
				out = append(out, u)
			}
		}
	}
	for _, r := range helmReleases(t) {
		out = append(out, r.unit(t))
	}
	for f, oc := range operatorCollectors(t) {
		out = append(out, operatorUnit(t, f, oc))
	}
	return out
}

// TestSmokeDeployConfigs validates each config deploy/ runs with the built
// binary (`otelcsp validate`), in the environment its container gives it.
func TestSmokeDeployConfigs(t *testing.T) {
	bin := collectortest.Binary(t)
	units := allUnits(t)
	for _, u := range units {
		t.Run(strings.ReplaceAll(u.name, "/", "_"), func(t *testing.T) {
			env, err := u.env()
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(t.TempDir(), "config.yaml")
			if err := os.WriteFile(path, []byte(u.config), 0o600); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, bin, "validate", "--config", path)
			// Only the container's environment: a variable of the test's
			// must not stand in for one the pod lacks.
			cmd.Env = []string{}
			for k, v := range env {
				cmd.Env = append(cmd.Env, k+"="+v)
			}
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("otelcsp validate: %v\n%s", err, out)
			}
		})
	}
	t.Logf("%d collector configs validated", len(units))
}

// TestImagesAreThisVersion: every otelcsp image deploy/ names is tagged
// with the version of builder-config.yaml, the binary's --version.
func TestImagesAreThisVersion(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(repoRoot, "builder-config.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var bc struct {
		Dist struct {
			Version string `json:"version"`
		} `json:"dist"`
	}
	if err := yaml.Unmarshal(b, &bc); err != nil || bc.Dist.Version == "" {
		t.Fatalf("builder-config.yaml: no dist.version (%v)", err)
	}
	image := regexp.MustCompile(`^(\S*/otelcsp):(\S+)$`)
	for _, set := range manifestSets(t) {
		for _, w := range indexSet(t, set).workloads {
			for _, c := range w.template.Spec.Containers {
				m := image.FindStringSubmatch(c.Image)
				if m == nil || m[2] != bc.Dist.Version {
					t.Errorf("%s container %s: image %q, want <registry>/otelcsp:%s", w.m, c.Name, c.Image, bc.Dist.Version)
				}
			}
		}
	}
	for _, r := range helmReleases(t) {
		if r.values.Image.Tag != bc.Dist.Version || !strings.HasSuffix(r.values.Image.Repository, "/otelcsp") {
			t.Errorf("%s: image %s:%s, want <registry>/otelcsp:%s", r.file, r.values.Image.Repository, r.values.Image.Tag, bc.Dist.Version)
		}
	}
	for f, oc := range operatorCollectors(t) {
		if m := image.FindStringSubmatch(oc.Spec.Image); m == nil || m[2] != bc.Dist.Version {
			t.Errorf("%s: image %q, want <registry>/otelcsp:%s", f, oc.Spec.Image, bc.Dist.Version)
		}
	}
}
