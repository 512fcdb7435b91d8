// Package collectortest holds what the tests that run the built otelcsp
// binary share (distribution's smoke tests and the e2e suite): finding the
// binary, free loopback ports, a goroutine-safe output buffer, plain HTTP
// gets, reading the collector's Prometheus metrics, and reading the tables
// of an HTML page (the breaker's status page, in the unit test and in a
// browser).
package collectortest // import "github.com/otelcsp/otelcsp/internal/collectortest"

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// RequireBinaryEnv, set to 1, turns Binary's skip into a failure: `make
// smoke` sets it, so `make test` cannot pass with the tests of the built
// binary skipped.
const RequireBinaryEnv = "OTELCSP_REQUIRE_BINARY"

// Binary is the built distribution under test, from OTELCSP_BINARY. Without
// it the test is skipped, saying so loudly: these tests need `make build`
// first (`make smoke` builds it and sets the variable), so plain `go test
// ./...` stays fast; with RequireBinaryEnv=1 the test fails instead.
func Binary(t *testing.T) string {
	t.Helper()
	bin := os.Getenv("OTELCSP_BINARY")
	if bin == "" {
		const why = "NO BINARY: OTELCSP_BINARY is not set, so this test of the built distribution did NOT run. " +
			"Run `make smoke` (it builds distribution/_build/otelcsp and sets the variable), or `make build` and " +
			"OTELCSP_BINARY=$PWD/distribution/_build/otelcsp go test ..."
		if os.Getenv(RequireBinaryEnv) == "1" {
			t.Fatal("FAILED: " + why + " (" + RequireBinaryEnv + "=1 requires it)")
		}
		t.Skip("SKIPPED: " + why)
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("OTELCSP_BINARY: %v", err)
	}
	return bin
}

// FreePort returns a 127.0.0.1 port nobody listens on right now. The
// collector binds it a moment later; another process could take it in
// between, which on a test machine is rare enough to accept.
func FreePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// SyncBuffer is a bytes.Buffer safe for a process's output goroutines and
// the test reading it.
type SyncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *SyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *SyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

var httpClient = &http.Client{Timeout: 2 * time.Second}

// HTTPGet returns the status and body of a GET, or status 0 when the
// request failed.
func HTTPGet(url string) (int, string) {
	resp, err := httpClient.Get(url)
	if err != nil {
		return 0, ""
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// PromSum sums the series of the named metric in a Prometheus text
// exposition whose labels contain every one of labels (`key="value"`
// fragments); found says whether any series matched.
func PromSum(exposition, name string, labels ...string) (sum float64, found bool) {
	for _, line := range strings.Split(exposition, "\n") {
		if !strings.HasPrefix(line, name) {
			continue
		}
		rest := line[len(name):]
		if rest == "" || (rest[0] != ' ' && rest[0] != '{') {
			continue // a longer metric name
		}
		matched := true
		for _, l := range labels {
			if !strings.Contains(rest, l) {
				matched = false
			}
		}
		if !matched {
			continue
		}
		fields := strings.Fields(rest[strings.LastIndex(rest, "}")+1:])
		if len(fields) > 0 {
			if v, err := strconv.ParseFloat(fields[0], 64); err == nil {
				sum += v
				found = true
			}
		}
	}
	return sum, found
}
