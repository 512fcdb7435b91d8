package e2e_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/otelcsp/otelcsp/internal/collectortest"
)

// chromium finds the headless browser the status page test runs, or skips
// the test loudly: `make test` installs the Debian package when it is
// missing, so a skip here means the test ran outside it on a machine
// without one.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("SKIPPED: NO BROWSER: neither chromium nor chromium-browser is on PATH, so the breaker status page was " +
		"NOT tested in a browser. Install it (apt-get install -y chromium; `make test` does) and run again.")
	return ""
}

// renderedDOM loads url in headless Chromium and returns the DOM after the
// page has loaded, as the browser built it.
func renderedDOM(t *testing.T, browser, url string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	profile := t.TempDir()
	cmd := exec.CommandContext(ctx, browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
		"--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--disable-crash-reporter", "--user-data-dir="+profile, "--dump-dom", url)
	cmd.Env = append(os.Environ(), "HOME="+profile) // keep the browser's files in the test's directory
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s --dump-dom %s: %v\n%s", browser, url, err, stderr.String())
	}
	return string(out)
}

// Columns of the status table (extension/breakerextension/status.html).
const (
	statusColKey   = 0
	statusColState = 1
	statusColShare = 5
)

// TestE2EStatusPage runs the binary with a fanout over two backends, one of
// them forced open by the breaker's config, loads the breaker extension's
// status page in headless Chromium, and checks that the rendered page
// shows that backend open with no share of the load and the other closed
// with all of it, at / and at /breakers (which a browser's Accept header
// turns into the page).
func TestE2EStatusPage(t *testing.T) {
	collectortest.Binary(t) // skips, saying why, without the built binary
	browser := chromium(t)
	up := startCountingServer(t, "up")
	forced := startCountingServer(t, "forced")

	var statusPort int
	c := startWithFreshPorts(t, func() *collector {
		health, metrics := collectortest.FreePort(t), collectortest.FreePort(t)
		statusPort = collectortest.FreePort(t)
		return newCollector(t, "statuspage", fmt.Sprintf(`
extensions:
  health_check:
    endpoint: 127.0.0.1:%[1]d
  breaker:
    manual:
      "%[5]s": forced_open
    http:
      endpoint: 127.0.0.1:%[3]d
receivers:
  synthetic:
    rate: 50
exporters:
  fanout:
    routing_key: traceID
    resolver:
      static:
        endpoints: [%[4]s, %[5]s]
    protocol:
      otlp:
        tls:
          insecure: true
    breaker: breaker
service:
  extensions: [health_check, breaker]
  pipelines:
    traces:
      receivers: [synthetic]
      exporters: [fanout]
%[2]s`, health, ownMetrics(metrics), statusPort, up.addr, forced.addr), health, metrics)
	})
	defer c.stop()

	// Traffic flows, all of it to the backend that is not forced open.
	waitSpans(t, up, 100, 30*time.Second)
	if n := forced.spanCount(); n != 0 {
		t.Fatalf("the forced-open backend received %d spans", n)
	}

	for _, path := range []string{"/", "/breakers"} {
		url := fmt.Sprintf("http://127.0.0.1:%d%s", statusPort, path)
		dom := renderedDOM(t, browser, url)
		rows := collectortest.RowsBy(t, dom, "data-key")
		o, ok := rows[forced.addr]
		if !ok {
			t.Fatalf("%s: no row for the forced-open backend %s; rendered DOM:\n%s", url, forced.addr, dom)
		}
		if o.Attrs["data-state"] != "open" || !strings.HasPrefix(o.Cells[statusColState], "open (forced_open") {
			t.Errorf("%s: forced-open backend shows data-state %q, state cell %q; want open (forced_open...)", url, o.Attrs["data-state"], o.Cells[statusColState])
		}
		if o.Cells[statusColKey] != forced.addr {
			t.Errorf("%s: key cell %q, want %q", url, o.Cells[statusColKey], forced.addr)
		}
		if o.Cells[statusColShare] != "0.0 %" {
			t.Errorf("%s: forced-open backend's share of the load %q, want 0.0 %%", url, o.Cells[statusColShare])
		}
		u, ok := rows[up.addr]
		if !ok {
			t.Fatalf("%s: no row for the healthy backend %s; rendered DOM:\n%s", url, up.addr, dom)
		}
		if u.Attrs["data-state"] != "closed" || u.Cells[statusColState] != "closed" {
			t.Errorf("%s: healthy backend shows data-state %q, state cell %q; want closed", url, u.Attrs["data-state"], u.Cells[statusColState])
		}
		if u.Cells[statusColShare] != "100.0 %" {
			t.Errorf("%s: healthy backend's share of the load %q, want 100.0 %%", url, u.Cells[statusColShare])
		}
		if len(rows) != 2 {
			t.Errorf("%s: %d rows, want the 2 backends: %v", url, len(rows), rows)
		}
	}
}
