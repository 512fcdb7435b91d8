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
	"context"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/otelcsp/otelcsp/internal/collectortest"

	"go.yaml.in/yaml/v3"
)

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
			// pgo/ holds overlays, not configs: TestSmokePGOOverlays
			// validates each on top of the config it overlays.
			if d.IsDir() && (d.Name() == "_build" || d.Name() == "invalid" || d.Name() == "pgo") {
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
	bin := collectortest.Binary(t)
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
	bin := collectortest.Binary(t)
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
	bin := collectortest.Binary(t)
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

// TestSmokeDemoRunsAndStops runs the demo as `make run` does
// (distribution/demo.sh with the shipped configs), every port moved to a
// free one through the OTELCSP_* variables the configs read. It checks that
// data flows through every component the demo wires (their own metrics
// count it, RED metrics show on the Prometheus endpoint), then sends SIGINT
// to the script's process group, as Ctrl-C in a terminal does: the front
// drains into the backends, the backends stop, the script exits 0, and
// neither process logged a warning or an error from start to end.
func TestSmokeDemoRunsAndStops(t *testing.T) {
	bin := collectortest.Binary(t)
	port := func() string { return strconv.Itoa(collectortest.FreePort(t)) }
	ports := map[string]string{}
	for _, name := range []string{
		"OTLP_GRPC_PORT", "OTLP_HTTP_PORT", "HEALTH_PORT", "BREAKER_PORT", "METRICS_PORT",
		"BACKEND_A_PORT", "BACKEND_B_PORT", "BACKEND_C_PORT",
		"BACKENDS_HEALTH_PORT", "BACKENDS_METRICS_PORT", "RED_PROMETHEUS_PORT",
	} {
		ports[name] = port()
	}
	var output collectortest.SyncBuffer
	cmd := exec.Command("./demo.sh", bin)
	cmd.Env = append(os.Environ(), "OTELCSP_LISTEN_HOST=127.0.0.1")
	for name, p := range ports {
		cmd.Env = append(cmd.Env, "OTELCSP_"+name+"="+p)
	}
	cmd.Stdout, cmd.Stderr = &output, &output
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // a terminal's foreground group
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		// The backends run in their own session: find them by their health port.
		if code, _ := collectortest.HTTPGet("http://127.0.0.1:" + ports["BACKENDS_HEALTH_PORT"] + "/"); code == http.StatusOK {
			_ = exec.Command("pkill", "-KILL", "-f", bin+" --config "+filepath.Join(mustAbs(t, "."), "backends.yaml")).Run()
		}
	})

	for _, health := range []string{ports["BACKENDS_HEALTH_PORT"], ports["HEALTH_PORT"]} {
		waitFor(t, done, &output, 30*time.Second, "health_check on "+health+" answers 200", func() bool {
			code, _ := collectortest.HTTPGet("http://127.0.0.1:" + health + "/")
			return code == http.StatusOK
		})
	}

	// A span from an outside OTLP client goes through too.
	resp, err := http.Post("http://127.0.0.1:"+ports["OTLP_HTTP_PORT"]+"/v1/traces", "application/json", strings.NewReader(demoSpan))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("OTLP/HTTP export answered %s", resp.Status)
	}

	// Every counter the demo's components keep must move: traffic flows
	// through fanout to the backends, and from there through the
	// span-derived pipelines; RED metrics show on the Prometheus endpoint.
	counters := map[string][]string{
		ports["METRICS_PORT"]:          {"otelcol_synthetic_spans_generated", "otelcol_fanout_items_sent", "otelcol_breaker_calls"},
		ports["BACKENDS_METRICS_PORT"]: {"otelcol_redmetrics_series_created", "otelcol_spanlogs_records_emitted"},
		ports["RED_PROMETHEUS_PORT"]:   {"traces_span_metrics_calls_total"},
	}
	for p, names := range counters {
		for _, name := range names {
			waitFor(t, done, &output, 30*time.Second, name+" > 0", func() bool {
				_, body := collectortest.HTTPGet("http://127.0.0.1:" + p + "/metrics")
				sum, _ := collectortest.PromSum(body, name)
				return sum > 0
			})
		}
	}

	if err := syscall.Kill(-cmd.Process.Pid, syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("demo exited with %v after SIGINT, want status 0\n%s", err, output.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("demo still running 30s after SIGINT\n%s", output.String())
	}
	if code, _ := collectortest.HTTPGet("http://127.0.0.1:" + ports["BACKENDS_HEALTH_PORT"] + "/"); code != 0 {
		t.Errorf("the backends still answer after the demo exited")
	}
	if n := strings.Count(output.String(), "Shutdown complete."); n != 2 {
		t.Errorf("%d of 2 collectors logged \"Shutdown complete.\"\n%s", n, output.String())
	}
	for _, line := range strings.Split(output.String(), "\n") {
		if warnOrError.MatchString(line) {
			t.Errorf("the demo logged: %s", line)
		}
	}
}

// warnOrError matches a collector log line at WARN level or above.
var warnOrError = regexp.MustCompile(`\t(warn|error|dpanic|panic|fatal)\t`)

func mustAbs(t *testing.T, p string) string {
	t.Helper()
	a, err := filepath.Abs(p)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

const demoSpan = `{"resourceSpans": [{"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "smoke"}}]},
  "scopeSpans": [{"spans": [{"traceId": "5b8efff798038103d269b633813fc60c", "spanId": "eee19b7ec3c1b174",
    "name": "hello", "kind": 2, "startTimeUnixNano": "1700000000000000000", "endTimeUnixNano": "1700000000100000000",
    "status": {"code": 2, "message": "smoke test error"}}]}]}]}`

func waitFor(t *testing.T, done <-chan error, output *collectortest.SyncBuffer, timeout time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !ok() {
		select {
		case err := <-done:
			t.Fatalf("collector exited while waiting for %s: %v\n%s", what, err, output.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s\n%s", what, output.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}
