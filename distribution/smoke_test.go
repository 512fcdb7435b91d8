// Package distribution_test smoke-tests the built otelcsp binary: every shipped
// config validates, every bad config is refused with a message naming the
// problem, the binary holds exactly the components the manifest names, and
// the demo starts, reports healthy and stops cleanly on SIGINT.
//
// The tests need the binary: `make smoke` (part of `make test`) builds it and
// passes its path in OTELCSP_BINARY. Without it they are skipped, so plain
// `go test ./...` stays fast.
package distribution_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

func binary(t *testing.T) string {
	t.Helper()
	bin := os.Getenv("OTELCSP_BINARY")
	if bin == "" {
		t.Skip("OTELCSP_BINARY not set; run `make smoke` to build the distribution and smoke-test it")
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("OTELCSP_BINARY: %v", err)
	}
	return bin
}

func run(t *testing.T, bin string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, args...).CombinedOutput()
	return string(out), err
}

// validConfigs are the collector configs that must validate: the demo under
// distribution/ and every config under testdata/ except testdata/invalid/.
func validConfigs(t *testing.T) []string {
	t.Helper()
	var files []string
	for _, root := range []string{".", "../testdata"} {
		err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() && (d.Name() == "_build" || d.Name() == "invalid") {
				return filepath.SkipDir
			}
			if !d.IsDir() && strings.HasSuffix(path, ".yaml") {
				files = append(files, path)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if !slices.Contains(files, "config.yaml") {
		t.Fatalf("distribution/config.yaml not found among %v", files)
	}
	return files
}

func TestSmokeValidConfigs(t *testing.T) {
	bin := binary(t)
	for _, f := range validConfigs(t) {
		t.Run(f, func(t *testing.T) {
			if out, err := run(t, bin, "validate", "--config", f); err != nil {
				t.Fatalf("validate %s: %v\n%s", f, err, out)
			}
		})
	}
}

// Each file under testdata/invalid/ starts with `# want: <text>`: the binary
// must refuse the config and its message must contain <text> (the bad key or
// value), so a user can tell what to fix.
func TestSmokeInvalidConfigsAreRefused(t *testing.T) {
	bin := binary(t)
	files, err := filepath.Glob("../testdata/invalid/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no invalid configs found: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			want := wantLine(t, f)
			out, err := run(t, bin, "validate", "--config", f)
			if err == nil {
				t.Fatalf("validate %s succeeded; want refusal mentioning %q", f, want)
			}
			if !strings.Contains(out, want) {
				t.Fatalf("validate %s: message does not mention %q:\n%s", f, want, out)
			}
		})
	}
}

func wantLine(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	line, _ := bufio.NewReader(f).ReadString('\n')
	want, ok := strings.CutPrefix(strings.TrimSpace(line), "# want:")
	if !ok || strings.TrimSpace(want) == "" {
		t.Fatalf("%s: first line must be `# want: <expected error text>`", path)
	}
	return strings.TrimSpace(want)
}

// componentList reads the component kinds shared by builder-config.yaml
// (entries with `gomod`) and `otelcsp components` output (entries with `module`).
type componentList struct {
	Receivers  []componentEntry `yaml:"receivers"`
	Processors []componentEntry `yaml:"processors"`
	Exporters  []componentEntry `yaml:"exporters"`
	Connectors []componentEntry `yaml:"connectors"`
	Extensions []componentEntry `yaml:"extensions"`
}

type componentEntry struct {
	GoMod  string `yaml:"gomod"`
	Module string `yaml:"module"`
}

func (l componentList) modules() map[string][]string {
	kinds := map[string][]componentEntry{
		"receivers": l.Receivers, "processors": l.Processors, "exporters": l.Exporters,
		"connectors": l.Connectors, "extensions": l.Extensions,
	}
	out := map[string][]string{}
	for kind, entries := range kinds {
		for _, e := range entries {
			out[kind] = append(out[kind], e.GoMod+e.Module)
		}
		slices.Sort(out[kind])
	}
	return out
}

// TestSmokeComponents checks that `otelcsp components` lists exactly the
// modules builder-config.yaml names, kind by kind.
func TestSmokeComponents(t *testing.T) {
	bin := binary(t)
	raw, err := os.ReadFile("../builder-config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var manifest componentList
	if err := yaml.Unmarshal(raw, &manifest); err != nil {
		t.Fatalf("builder-config.yaml: %v", err)
	}
	out, err := run(t, bin, "components")
	if err != nil {
		t.Fatalf("components: %v\n%s", err, out)
	}
	var listed componentList
	if err := yaml.Unmarshal([]byte(out), &listed); err != nil {
		t.Fatalf("components output is not YAML: %v\n%s", err, out)
	}
	want, got := manifest.modules(), listed.modules()
	for kind := range want {
		if !slices.Equal(want[kind], got[kind]) {
			t.Errorf("%s: manifest names %v, binary lists %v", kind, want[kind], got[kind])
		}
	}
}

// TestSmokeDemoRunsAndStops runs the demo config (on free ports, so it does
// not collide with anything already listening), waits for health_check to
// answer, then sends SIGINT as Ctrl-C would and expects exit status 0.
func TestSmokeDemoRunsAndStops(t *testing.T) {
	bin := binary(t)
	cfg, err := os.ReadFile("config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	text := string(cfg)
	var health string
	for _, port := range []string{"4317", "4318", "13133", "55679", "8888"} {
		free := freePort(t)
		if port == "13133" {
			health = free
		}
		text = strings.ReplaceAll(text, "127.0.0.1:"+port, "127.0.0.1:"+free)
		text = strings.ReplaceAll(text, "port: "+port, "port: "+free)
	}
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}

	var output bytes.Buffer
	cmd := exec.Command(bin, "--config", path)
	cmd.Stdout, cmd.Stderr = &output, &output
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
	})

	url := "http://127.0.0.1:" + health + "/"
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		select {
		case err := <-done:
			t.Fatalf("collector exited before becoming healthy: %v\n%s", err, output.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("health_check at %s never answered 200\n%s", url, output.String())
		}
		time.Sleep(100 * time.Millisecond)
	}

	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("collector exited with %v after SIGINT, want status 0\n%s", err, output.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("collector still running 30s after SIGINT\n%s", output.String())
	}
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return fmt.Sprint(l.Addr().(*net.TCPAddr).Port)
}
