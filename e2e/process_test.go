package e2e_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/otelcsp/otelcsp/internal/collectortest"
	"slices"
)

// collector is one otelcsp process run by a test. Its config is written by
// the test; every port in it is a free loopback port. The output of every
// run (restarts included) is kept for failure messages.
type collector struct {
	t    *testing.T
	name string
	bin  string
	conf string   // config file path
	env  []string // KEY=value added to the test's environment

	health  int // health_check port
	metrics int // Prometheus port of the collector's own metrics

	mu     sync.Mutex
	cmd    *exec.Cmd
	done   chan error // receives the exit of the current run, once
	out    *collectortest.SyncBuffer
	readys int // "Everything is ready" lines before the current run
}

// readyLine is what the collector logs once every component has started.
const readyLine = "Everything is ready. Begin running and processing data."

// newCollector writes the config (a YAML text with %d-free placeholders
// already filled in) and returns the process, not started.
func newCollector(t *testing.T, name, config string, health, metrics int) *collector {
	t.Helper()
	path := filepath.Join(t.TempDir(), name+".yaml")
	if err := os.WriteFile(path, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	c := &collector{t: t, name: name, bin: collectortest.Binary(t), conf: path, health: health, metrics: metrics, out: &collectortest.SyncBuffer{}}
	t.Cleanup(c.cleanup)
	return c
}

// ownMetrics is the service.telemetry section of a test config: the
// collector's own metrics, in Prometheus format, on 127.0.0.1:port.
func ownMetrics(port int) string {
	return fmt.Sprintf(`  telemetry:
    metrics:
      readers:
        - pull:
            exporter:
              prometheus:
                host: 127.0.0.1
                port: %d
`, port)
}

// start runs the binary; it does not wait for it to be healthy.
func (c *collector) start() {
	c.t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.mark("start " + c.name)
	c.readys = strings.Count(c.out.String(), readyLine)
	cmd := exec.Command(c.bin, "--config", c.conf)
	cmd.Env = append(os.Environ(), c.env...)
	cmd.Stdout, cmd.Stderr = c.out, c.out
	if err := cmd.Start(); err != nil {
		c.t.Fatalf("%s: %v", c.name, err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	c.cmd, c.done = cmd, done
}

// waitHealthy waits until health_check answers 200 and the collector has
// logged that it is ready, failing the test if the process exits first or
// the time runs out.
//
// The collector (otelcol v0.161.0, Collector.Run) installs its SIGTERM
// handler only after every component has started, so health_check answers
// 200 a moment before a SIGTERM would be handled: one then kills the
// process with the default action ("signal: terminated", not status 0).
// Waiting for the ready line and a little more closes that window.
func (c *collector) waitHealthy(timeout time.Duration) {
	c.t.Helper()
	if err := c.healthy(timeout); err != nil {
		c.t.Fatalf("%s: %v\n%s", c.name, err, c.out.String())
	}
}

// errPortTaken says the collector could not bind a port: another process
// took it between freePort and the collector's listen.
var errPortTaken = errors.New("a port was taken by another process")

func (c *collector) healthy(timeout time.Duration) error {
	c.mu.Lock()
	done, readys := c.done, c.readys
	c.mu.Unlock()
	var exited bool
	var exitErr error
	ready := pollFor(timeout, func() bool {
		select {
		case exitErr = <-done:
			done <- exitErr // keep it for stop/cleanup
			exited = true
			return true
		default:
		}
		code, _ := collectortest.HTTPGet(fmt.Sprintf("http://127.0.0.1:%d/", c.health))
		return code == http.StatusOK && strings.Count(c.out.String(), readyLine) > readys
	})
	switch {
	case exited && strings.Contains(c.out.String(), "address already in use"):
		return fmt.Errorf("%w: exited: %w", errPortTaken, exitErr)
	case exited:
		return fmt.Errorf("exited before it was healthy: %w", exitErr)
	case !ready:
		return fmt.Errorf("not healthy after %s", timeout)
	}
	// The one fixed wait of the suite: nothing the collector shows tells
	// that its SIGTERM handler is installed (see waitHealthy), a few
	// statements after the ready line.
	time.Sleep(200 * time.Millisecond)
	return nil
}

// startWithFreshPorts starts the collector that build makes and waits for
// it to be healthy; when one of its ports was taken before it could bind
// it (freePort cannot reserve a port), it tries again with new ports, a
// few times.
func startWithFreshPorts[C interface{ base() *collector }](t *testing.T, build func() C) C {
	t.Helper()
	for attempt := 1; ; attempt++ {
		c := build()
		c.base().start()
		err := c.base().healthy(30 * time.Second)
		if err == nil {
			return c
		}
		if !errors.Is(err, errPortTaken) || attempt == 3 {
			t.Fatalf("%s: %v\n%s", c.base().name, err, c.base().output())
		}
		t.Logf("%s: %v; again with other ports", c.base().name, err)
	}
}

func (c *collector) base() *collector { return c }

// terminate sends SIGTERM and returns the exit error (nil for status 0), or
// fails the test if the process is still running after timeout.
func (c *collector) terminate(timeout time.Duration) error {
	c.t.Helper()
	c.mu.Lock()
	cmd, done := c.cmd, c.done
	c.mu.Unlock()
	c.mark("SIGTERM")
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		c.t.Fatalf("%s: SIGTERM: %v", c.name, err)
	}
	select {
	case err := <-done:
		done <- err
		return err
	case <-time.After(timeout):
		_ = cmd.Process.Kill()
		c.t.Fatalf("%s still running %s after SIGTERM\n%s", c.name, timeout, c.out.String())
		return nil
	}
}

// stop terminates the process and requires exit status 0.
func (c *collector) stop() {
	c.t.Helper()
	if err := c.terminate(30 * time.Second); err != nil {
		c.t.Fatalf("%s exited with %v after SIGTERM, want status 0\n%s", c.name, err, c.out.String())
	}
}

// stopRunning stops, in order, those of the processes still running (with
// SIGTERM, requiring exit status 0).
func stopRunning[C interface{ base() *collector }](cs ...C) {
	for _, c := range cs {
		if c.base().running() {
			c.base().stop()
		}
	}
}

// logOnFailure logs the processes' output when the test has failed, at its
// end.
func logOnFailure[C interface{ base() *collector }](t *testing.T, cs ...C) {
	t.Cleanup(func() {
		if t.Failed() {
			for _, c := range cs {
				t.Logf("%s output:\n%s", c.base().name, c.base().output())
			}
		}
	})
}

// kill sends SIGKILL and waits for the process to be gone.
func (c *collector) kill() {
	c.t.Helper()
	c.mu.Lock()
	cmd, done := c.cmd, c.done
	c.mu.Unlock()
	c.mark("SIGKILL")
	_ = cmd.Process.Kill()
	select {
	case err := <-done:
		done <- err
	case <-time.After(10 * time.Second):
		c.t.Fatalf("%s survived SIGKILL for 10s", c.name)
	}
}

// signal sends sig to the current run (SIGSTOP freezes it: the kernel still
// accepts connections and buffers requests, nothing answers; SIGCONT thaws it).
func (c *collector) signal(sig syscall.Signal) {
	c.t.Helper()
	c.mu.Lock()
	cmd := c.cmd
	c.mu.Unlock()
	c.mark(sig.String())
	if err := cmd.Process.Signal(sig); err != nil {
		c.t.Fatalf("%s: %v: %v", c.name, sig, err)
	}
}

// running says whether the current run has not exited.
func (c *collector) running() bool {
	c.mu.Lock()
	done := c.done
	c.mu.Unlock()
	if done == nil {
		return false
	}
	select {
	case err := <-done:
		done <- err
		return false
	default:
		return true
	}
}

func (c *collector) cleanup() {
	c.mu.Lock()
	cmd, done := c.cmd, c.done
	c.mu.Unlock()
	if cmd == nil {
		return
	}
	select {
	case err := <-done:
		done <- err
		return
	default:
	}
	_ = cmd.Process.Kill()
	select {
	case err := <-done:
		done <- err
	case <-time.After(10 * time.Second):
	}
}

// mark writes a test event into the process's output, so failure messages
// show the faults in line with what the collector logged.
func (c *collector) mark(event string) {
	_, _ = fmt.Fprintf(c.out, "==== %s: %s\n", time.Now().Format("15:04:05.000"), event)
}

// output is everything the process wrote, all runs.
func (c *collector) output() string { return c.out.String() }

// metricSum adds up every series of a metric in the collector's own
// Prometheus exposition whose labels contain all of the given label pairs
// (`key="value"`).
func (c *collector) metricSum(name string, labels ...string) float64 {
	sum, _ := c.metric(name, labels...)
	return sum
}

// metric is metricSum that also says whether any series matched.
func (c *collector) metric(name string, labels ...string) (float64, bool) {
	_, body := collectortest.HTTPGet(fmt.Sprintf("http://127.0.0.1:%d/metrics", c.metrics))
	return collectortest.PromSum(body, name, labels...)
}

// pollFor polls cond until it holds or timeout passes, and says whether it
// held: every wait of the suite is for a condition (a metric, a count at a
// sink, a breaker state), bounded. It polls every pollInterval, far less
// than anything waited for takes, so a wait ends soon after its event.
func pollFor(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(pollInterval)
	}
}

// pollInterval is how often pollFor checks its condition.
const pollInterval = 50 * time.Millisecond

// breakerState is one key's entry of the breaker extension's /breakers
// endpoint (the fields the tests read).
type breakerState struct {
	Key        string `json:"key"`
	State      string `json:"state"`
	LastReason string `json:"last_reason"`
	Trips      uint64 `json:"trips"`
	Failure    uint64 `json:"failure"`
	Rejected   uint64 `json:"rejected"`
}

// breaker reads one key's state from the breaker extension's HTTP endpoint;
// ok is false when the key is unknown or the endpoint does not answer.
func breaker(port int, key string) (breakerState, bool) {
	code, body := collectortest.HTTPGet(fmt.Sprintf("http://127.0.0.1:%d/breakers?key=%s", port, url.QueryEscape(key)))
	if code != http.StatusOK {
		return breakerState{}, false
	}
	var resp struct {
		Keys []breakerState `json:"keys"`
	}
	if err := json.Unmarshal([]byte(body), &resp); err != nil || len(resp.Keys) != 1 {
		return breakerState{}, false
	}
	return resp.Keys[0], true
}

// waitBreaker polls a breaker until it is in one of the states, and returns
// how long that took; it fails the test after timeout.
func waitBreaker(t *testing.T, port int, key string, timeout time.Duration, states ...string) time.Duration {
	t.Helper()
	start := time.Now()
	var last breakerState
	if !pollFor(timeout, func() bool {
		s, ok := breaker(port, key)
		last = s
		return ok && slices.Contains(states, s.State)
	}) {
		t.Fatalf("breaker %s not %v after %s; last seen %+v", key, states, timeout, last)
	}
	return time.Since(start)
}

var postClient = &http.Client{Timeout: 2 * time.Second}

func httpPost(u, contentType string, body []byte) (int, string, error) {
	resp, err := postClient.Post(u, contentType, bytes.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), nil
}

// exitCode is the process's exit status, -1 when it did not exit normally.
func exitCode(err error) int {
	if err == nil {
		return 0
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	return -1
}
