package fanoutexporter

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

const testNS = "observability"

// ep is one endpoint of a test EndpointSlice.
type ep struct {
	addr                        string
	ready, serving, terminating bool
}

func readyEP(addr string) ep { return ep{addr: addr, ready: true, serving: true} }

func endpointSlice(name, service string, addrType discoveryv1.AddressType, ports map[string]int32, eps ...ep) *discoveryv1.EndpointSlice {
	s := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{
			Name: name, Namespace: testNS,
			Labels: map[string]string{discoveryv1.LabelServiceName: service},
		},
		AddressType: addrType,
	}
	for n, p := range ports {
		s.Ports = append(s.Ports, discoveryv1.EndpointPort{Name: &n, Port: &p})
	}
	for _, e := range eps {
		s.Endpoints = append(s.Endpoints, discoveryv1.Endpoint{
			Addresses:  []string{e.addr},
			Conditions: discoveryv1.EndpointConditions{Ready: &e.ready, Serving: &e.serving, Terminating: &e.terminating},
		})
	}
	return s
}

var otlpPort = map[string]int32{"otlp-grpc": 4317}

func startK8s(t *testing.T, client kubernetes.Interface, cfg K8sResolverConfig) (*k8sResolver, *recorder) {
	t.Helper()
	if cfg.Service == "" {
		cfg.Service = "gateways." + testNS
	}
	if len(cfg.Ports) == 0 {
		cfg.Ports = []string{"otlp-grpc"}
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 5 * time.Second
	}
	rec := &recorder{}
	r := newK8sResolver(cfg, rec.hooks(), func() (kubernetes.Interface, error) { return client, nil })
	require.NoError(t, r.start(context.Background()))
	t.Cleanup(func() { require.NoError(t, r.shutdown(context.Background())) })
	return r, rec
}

func eventually(t *testing.T, rec *recorder, want ...string) {
	t.Helper()
	require.Eventually(t, func() bool { return assert.ObjectsAreEqual(want, rec.last()) }, 10*time.Second, 5*time.Millisecond,
		"want %v", want)
}

func TestK8sResolverFollowsEndpointSlices(t *testing.T) {
	ctx := context.Background()
	slices := func(c *fake.Clientset) interface {
		Create(context.Context, *discoveryv1.EndpointSlice, metav1.CreateOptions) (*discoveryv1.EndpointSlice, error)
		Update(context.Context, *discoveryv1.EndpointSlice, metav1.UpdateOptions) (*discoveryv1.EndpointSlice, error)
		Delete(context.Context, string, metav1.DeleteOptions) error
	} {
		return c.DiscoveryV1().EndpointSlices(testNS)
	}
	client := fake.NewClientset(
		endpointSlice("gateways-a", "gateways", discoveryv1.AddressTypeIPv4, otlpPort, readyEP("10.0.0.1"), readyEP("10.0.0.2")),
		// Another Service's slice in the namespace: not ours.
		endpointSlice("other-a", "other", discoveryv1.AddressTypeIPv4, otlpPort, readyEP("10.9.9.9")),
	)
	_, rec := startK8s(t, client, K8sResolverConfig{})
	assert.Equal(t, []string{"10.0.0.1:4317", "10.0.0.2:4317"}, rec.last(), "start applies the first list")

	// A second slice (the Service grew past one slice, or an IPv6 family).
	_, err := slices(client).Create(ctx, endpointSlice("gateways-b", "gateways", discoveryv1.AddressTypeIPv6, otlpPort, readyEP("fd00::3")), metav1.CreateOptions{})
	require.NoError(t, err)
	eventually(t, rec, "10.0.0.1:4317", "10.0.0.2:4317", "[fd00::3]:4317")

	// A pod starts terminating: still serving, but no longer ready. It gets
	// no new keys.
	_, err = slices(client).Update(ctx, endpointSlice("gateways-a", "gateways", discoveryv1.AddressTypeIPv4, otlpPort,
		ep{addr: "10.0.0.1", serving: true, terminating: true}, readyEP("10.0.0.2")), metav1.UpdateOptions{})
	require.NoError(t, err)
	eventually(t, rec, "10.0.0.2:4317", "[fd00::3]:4317")

	// Gone, and the port renumbered.
	_, err = slices(client).Update(ctx, endpointSlice("gateways-a", "gateways", discoveryv1.AddressTypeIPv4,
		map[string]int32{"otlp-grpc": 14317}, readyEP("10.0.0.2")), metav1.UpdateOptions{})
	require.NoError(t, err)
	eventually(t, rec, "10.0.0.2:14317", "[fd00::3]:4317")

	// A slice deleted; then the last one: an empty answer keeps the last
	// good set.
	require.NoError(t, slices(client).Delete(ctx, "gateways-b", metav1.DeleteOptions{}))
	eventually(t, rec, "10.0.0.2:14317")
	sets, _, failures := rec.counts()
	require.NoError(t, slices(client).Delete(ctx, "gateways-a", metav1.DeleteOptions{}))
	require.Eventually(t, func() bool { _, _, f := rec.counts(); return f >= failures+1 }, 10*time.Second, 5*time.Millisecond)
	n, _, _ := rec.counts()
	assert.Equal(t, sets, n)
	assert.Equal(t, []string{"10.0.0.2:14317"}, rec.last())
}

func TestK8sResolverNumberedPortsAndSeveralPorts(t *testing.T) {
	client := fake.NewClientset(endpointSlice("gateways-a", "gateways", discoveryv1.AddressTypeIPv4,
		map[string]int32{"otlp-grpc": 4317, "otlp-http": 4318}, readyEP("10.0.0.1")))
	_, rec := startK8s(t, client, K8sResolverConfig{Ports: []string{"4317"}})
	assert.Equal(t, []string{"10.0.0.1:4317"}, rec.last())
	_, rec = startK8s(t, client, K8sResolverConfig{Ports: []string{"otlp-grpc", "otlp-http"}})
	assert.Equal(t, []string{"10.0.0.1:4317", "10.0.0.1:4318"}, rec.last())
	_, rec = startK8s(t, client, K8sResolverConfig{Ports: []string{"metrics"}})
	assert.Empty(t, rec.last(), "no such port: nothing applied")
}

// Resyncs deliver the same objects again: the set is not applied again.
// (Informers resync at most once a second, whatever is asked.)
func TestK8sResolverResyncCausesNoChurn(t *testing.T) {
	client := fake.NewClientset(endpointSlice("gateways-a", "gateways", discoveryv1.AddressTypeIPv4, otlpPort, readyEP("10.0.0.1")))
	_, rec := startK8s(t, client, K8sResolverConfig{Resync: time.Second})
	require.Eventually(t, func() bool { _, ok, _ := rec.counts(); return ok >= 3 }, 15*time.Second, 5*time.Millisecond,
		"resyncs refresh the set")
	sets, _, failures := rec.counts()
	assert.Equal(t, 1, sets, "an unchanged set is applied once")
	assert.Zero(t, failures)
}

// The API fails at first: start does not hang past its timeout, counts the
// failure, and the set arrives once the API answers.
func TestK8sResolverAPIErrors(t *testing.T) {
	client := fake.NewClientset(endpointSlice("gateways-a", "gateways", discoveryv1.AddressTypeIPv4, otlpPort, readyEP("10.0.0.1")))
	var failing atomic.Bool
	failing.Store(true)
	client.PrependReactor("list", "endpointslices", func(k8stesting.Action) (bool, runtime.Object, error) {
		if failing.Load() {
			return true, nil, errors.New("the API server is restarting")
		}
		return false, nil, nil
	})
	start := time.Now()
	_, rec := startK8s(t, client, K8sResolverConfig{Timeout: 300 * time.Millisecond})
	assert.Less(t, time.Since(start), 5*time.Second)
	_, _, failures := rec.counts()
	assert.Positive(t, failures)
	assert.Empty(t, rec.last())
	failing.Store(false)
	eventually(t, rec, "10.0.0.1:4317")
}

func TestK8sResolverConfig(t *testing.T) {
	for _, tt := range []struct {
		cfg  K8sResolverConfig
		want string
	}{
		{K8sResolverConfig{Ports: []string{"4317"}, Timeout: time.Second}, `"resolver.k8s.service": required`},
		{K8sResolverConfig{Service: ".ns", Ports: []string{"4317"}, Timeout: time.Second}, `"resolver.k8s.service": must be name.namespace`},
		{K8sResolverConfig{Service: "a.b.c", Ports: []string{"4317"}, Timeout: time.Second}, `got "a.b.c"`},
		{K8sResolverConfig{Service: "a.b", Timeout: time.Second}, `"resolver.k8s.ports": at least one`},
		{K8sResolverConfig{Service: "a.b", Ports: []string{"70000"}, Timeout: time.Second}, `"70000" is not a port number`},
		{K8sResolverConfig{Service: "a.b", Ports: []string{"4317"}}, `"resolver.k8s.timeout": must be > 0`},
		{K8sResolverConfig{Service: "a.b", Ports: []string{"4317"}, Timeout: time.Second, Resync: -time.Second}, `"resolver.k8s.resync"`},
	} {
		require.ErrorContains(t, tt.cfg.validate(), tt.want)
	}
	require.NoError(t, (&K8sResolverConfig{Service: "gateways", Ports: []string{"otlp-grpc"}, Timeout: time.Second}).validate())
}
