package fanoutexporter

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.uber.org/zap"

	"github.com/otelcsp/otelcsp/internal/collectortest"
)

// recorder collects what a resolver reports.
type recorder struct {
	mu      sync.Mutex
	sets    [][]backendSpec
	success int
	failure int
}

func (r *recorder) hooks() resolverHooks {
	return resolverHooks{
		logger: zap.NewNop(),
		apply: func(_ context.Context, specs []backendSpec) {
			r.mu.Lock()
			defer r.mu.Unlock()
			r.sets = append(r.sets, specs)
		},
		report: func(ok bool) {
			r.mu.Lock()
			defer r.mu.Unlock()
			if ok {
				r.success++
			} else {
				r.failure++
			}
		},
	}
}

func (r *recorder) last() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.sets) == 0 {
		return nil
	}
	return specEndpoints(r.sets[len(r.sets)-1])
}

func (r *recorder) counts() (sets, success, failure int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.sets), r.success, r.failure
}

func TestParseBackendList(t *testing.T) {
	specs, err := parseBackendList([]byte("# backends\n\na:4317\n  b:4317 2.5 \n[::1]:4317\n"), "f")
	require.NoError(t, err)
	assert.Equal(t, []backendSpec{{"a:4317", 1}, {"b:4317", 2.5}, {"[::1]:4317", 1}}, specs)

	for text, want := range map[string]string{
		"a:4317\nnoport\n": `f:2: "noport" is not host:port`,
		"a:4317 x\n":       `f:1: weight "x" is not a number`,
		"a:4317 0\n":       `f:1: weight must be > 0`,
		"a:4317 1 extra\n": "f:1: want `endpoint [weight]`",
		"a:4317\na:4317\n": `f:2: "a:4317" is listed twice`,
		"a:99999\n":        `f:1: "a:99999" has an invalid port`,
	} {
		_, err := parseBackendList([]byte(text), "f")
		require.ErrorContains(t, err, want, text)
	}
}

func TestFileResolverFollowsChangesAndKeepsLastGoodSet(t *testing.T) {
	path := filepath.Join(t.TempDir(), "backends.txt")
	write := func(text string) {
		// Write and rename, as ConfigMaps and editors do.
		tmp := path + ".tmp"
		require.NoError(t, os.WriteFile(tmp, []byte(text), 0o600))
		require.NoError(t, os.Rename(tmp, path))
	}
	write("b:4317\na:4317\n")
	rec := &recorder{}
	r, err := newResolver(ResolverConfig{File: someFile(path, 10*time.Millisecond)}, rec.hooks())
	require.NoError(t, err)
	require.NoError(t, r.start(context.Background()))
	defer func() { require.NoError(t, r.shutdown(context.Background())) }()
	assert.Equal(t, []string{"a:4317", "b:4317"}, rec.last(), "the first set is applied before start returns, sorted")

	write("a:4317\nc:4317\n")
	require.Eventually(t, func() bool { return strings.Join(rec.last(), ",") == "a:4317,c:4317" }, 5*time.Second, 5*time.Millisecond)

	sets, _, _ := rec.counts()
	write("a:4317\nbroken line here\n")
	require.Eventually(t, func() bool { _, _, f := rec.counts(); return f > 0 }, 5*time.Second, 5*time.Millisecond)
	write("")
	require.Eventually(t, func() bool { _, _, f := rec.counts(); return f > 3 }, 5*time.Second, 5*time.Millisecond)
	n, _, _ := rec.counts()
	assert.Equal(t, sets, n, "a bad or empty file must not replace the last good set")
	assert.Equal(t, []string{"a:4317", "c:4317"}, rec.last())
}

func TestDNSResolverARecords(t *testing.T) {
	dns := collectortest.StartDNSServer(t)
	dns.Set(func(s *collectortest.DNSServer) {
		s.A["collectors.test"] = []net.IP{net.IPv4(127, 0, 0, 2), net.IPv4(127, 0, 0, 3)}
	})
	rec := &recorder{}
	cfg := DNSResolverConfig{Hostname: "collectors.test", Port: "4317", Interval: 20 * time.Millisecond, Timeout: time.Second, Server: dns.Addr()}
	r, err := newResolver(ResolverConfig{DNS: someDNS(cfg)}, rec.hooks())
	require.NoError(t, err)
	require.NoError(t, r.start(context.Background()))
	defer func() { require.NoError(t, r.shutdown(context.Background())) }()
	assert.Equal(t, []string{"127.0.0.2:4317", "127.0.0.3:4317"}, rec.last())

	// A scale-up shows within an interval or two.
	dns.Set(func(s *collectortest.DNSServer) {
		s.A["collectors.test"] = append(s.A["collectors.test"], net.IPv4(127, 0, 0, 4))
	})
	require.Eventually(t, func() bool { return len(rec.last()) == 3 }, 5*time.Second, 5*time.Millisecond)

	// A failing server keeps the last good set and counts failures.
	sets, _, _ := rec.counts()
	dns.Set(func(s *collectortest.DNSServer) { s.Fail = true })
	require.Eventually(t, func() bool { _, _, f := rec.counts(); return f >= 2 }, 5*time.Second, 5*time.Millisecond)
	n, _, _ := rec.counts()
	assert.Equal(t, sets, n)
	assert.Len(t, rec.last(), 3)
}

func TestDNSResolverSRVRecords(t *testing.T) {
	dns := collectortest.StartDNSServer(t)
	dns.Set(func(s *collectortest.DNSServer) {
		s.SRV["_otlp._tcp.collectors.test"] = []net.SRV{
			{Target: "gw-0.collectors.test.", Port: 14317},
			{Target: "gw-1.collectors.test.", Port: 24317},
		}
	})
	rec := &recorder{}
	cfg := DNSResolverConfig{Hostname: "_otlp._tcp.collectors.test", SRV: true, Interval: time.Hour, Timeout: time.Second, Server: dns.Addr()}
	r, err := newResolver(ResolverConfig{DNS: someDNS(cfg)}, rec.hooks())
	require.NoError(t, err)
	require.NoError(t, r.start(context.Background()))
	require.NoError(t, r.shutdown(context.Background()))
	assert.Equal(t, []string{"gw-0.collectors.test:14317", "gw-1.collectors.test:24317"}, rec.last())
}

func TestDNSResolverUnknownNameIsNotFatal(t *testing.T) {
	dns := collectortest.StartDNSServer(t)
	rec := &recorder{}
	cfg := DNSResolverConfig{Hostname: "nobody.test", Port: "4317", Interval: time.Hour, Timeout: time.Second, Server: dns.Addr()}
	r, err := newResolver(ResolverConfig{DNS: someDNS(cfg)}, rec.hooks())
	require.NoError(t, err)
	require.NoError(t, r.start(context.Background()))
	require.NoError(t, r.shutdown(context.Background()))
	sets, _, failures := rec.counts()
	assert.Zero(t, sets)
	assert.Equal(t, 1, failures)
}

func someFile(path string, interval time.Duration) configoptional.Optional[FileResolverConfig] {
	return configoptional.Some(FileResolverConfig{Path: path, Interval: interval})
}

func someDNS(cfg DNSResolverConfig) configoptional.Optional[DNSResolverConfig] {
	return configoptional.Some(cfg)
}

// SRV weights become backend weights; only the most preferred priority is
// used; repeated records count once (SRV and A alike).
func TestDNSResolverSRVWeightsPriorityAndRepeats(t *testing.T) {
	dns := collectortest.StartDNSServer(t)
	dns.Set(func(s *collectortest.DNSServer) {
		s.SRV["_otlp._tcp.weighted.test"] = []net.SRV{
			{Target: "gw-0.weighted.test.", Port: 4317, Weight: 10},
			{Target: "gw-1.weighted.test.", Port: 4317, Weight: 30},
			{Target: "gw-1.weighted.test.", Port: 4317, Weight: 30},
			{Target: "standby.weighted.test.", Port: 4317, Priority: 10, Weight: 50},
			{Target: "gw-2.weighted.test.", Port: 4317, Weight: 0},
		}
		s.A["repeated.test"] = []net.IP{net.IPv4(127, 0, 0, 2), net.IPv4(127, 0, 0, 2), net.IPv4(127, 0, 0, 3)}
	})
	lookup := func(cfg DNSResolverConfig) []backendSpec {
		cfg.Interval, cfg.Timeout, cfg.Server = time.Hour, time.Second, dns.Addr()
		specs, err := newDNSLookup(cfg)(context.Background())
		require.NoError(t, err)
		slices.SortFunc(specs, func(a, b backendSpec) int { return strings.Compare(a.endpoint, b.endpoint) })
		return specs
	}
	assert.Equal(t, []backendSpec{
		{"gw-0.weighted.test:4317", 10}, {"gw-1.weighted.test:4317", 30}, {"gw-2.weighted.test:4317", 1},
	}, lookup(DNSResolverConfig{Hostname: "_otlp._tcp.weighted.test", SRV: true}))
	assert.Equal(t, []backendSpec{{"127.0.0.2:4317", 1}, {"127.0.0.3:4317", 1}},
		lookup(DNSResolverConfig{Hostname: "repeated.test", Port: "4317"}))
}
