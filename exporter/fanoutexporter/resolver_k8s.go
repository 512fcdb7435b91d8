package fanoutexporter

import (
	"context"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"

	"go.uber.org/zap"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	discoverylisters "k8s.io/client-go/listers/discovery/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
)

// namespaceFile is where a pod finds its own namespace.
const namespaceFile = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"

// k8sResolver watches the EndpointSlices of one Service with a client-go
// informer (namespaced, selected by the kubernetes.io/service-name label)
// and applies, on every change, the ready endpoints on the configured
// ports. A watch error or an empty answer keeps the last good set.
type k8sResolver struct {
	cfg       K8sResolverConfig
	hooks     resolverHooks
	newClient func() (kubernetes.Interface, error)
	keeper    lastGood

	mu      sync.Mutex
	synced  bool
	stop    chan struct{}
	factory informers.SharedInformerFactory
	lister  discoverylisters.EndpointSliceLister
	name    string
	ns      string
}

func newK8sResolver(cfg K8sResolverConfig, hooks resolverHooks, newClient func() (kubernetes.Interface, error)) *k8sResolver {
	if newClient == nil {
		newClient = inClusterClient
	}
	return &k8sResolver{cfg: cfg, hooks: hooks, newClient: newClient, keeper: lastGood{hooks: hooks}}
}

func inClusterClient() (kubernetes.Interface, error) {
	rc, err := rest.InClusterConfig()
	if err != nil {
		return nil, err
	}
	return kubernetes.NewForConfig(rc)
}

// serviceName splits "name.namespace"; without a namespace, the pod's own.
func (cfg K8sResolverConfig) serviceName() (name, ns string, err error) {
	name, ns, found := strings.Cut(cfg.Service, ".")
	if found {
		return name, ns, nil
	}
	b, err := os.ReadFile(namespaceFile)
	if err != nil {
		return "", "", fmt.Errorf(`"resolver.k8s.service": %q has no namespace, and this pod's could not be read: %w`, cfg.Service, err)
	}
	return name, strings.TrimSpace(string(b)), nil
}

func (r *k8sResolver) start(ctx context.Context) error {
	name, ns, err := r.cfg.serviceName()
	if err != nil {
		return err
	}
	client, err := r.newClient()
	if err != nil {
		return fmt.Errorf(`"resolver.k8s": cannot reach the Kubernetes API: %w`, err)
	}
	r.name, r.ns = name, ns
	r.factory = informers.NewSharedInformerFactoryWithOptions(client, r.cfg.Resync,
		informers.WithNamespace(ns),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.LabelSelector = discoveryv1.LabelServiceName + "=" + name
		}))
	slices := r.factory.Discovery().V1().EndpointSlices()
	inf := slices.Informer()
	r.lister = slices.Lister()
	if err := inf.SetWatchErrorHandlerWithContext(func(_ context.Context, _ *cache.Reflector, err error) {
		// The informer retries on its own; the set it had stays.
		r.keeper.update(context.Background(), nil, fmt.Errorf("watching the EndpointSlices of %s.%s: %w", name, ns, err))
	}); err != nil {
		return err
	}
	refresh := func() { r.refresh(context.Background()) }
	if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { refresh() },
		UpdateFunc: func(any, any) { refresh() },
		DeleteFunc: func(any) { refresh() },
	}); err != nil {
		return err
	}
	r.stop = make(chan struct{})
	r.factory.Start(r.stop)

	// Wait, within the timeout, for the first full list, so that data right
	// after start finds backends; past it the collector starts anyway and
	// the set arrives when the API answers.
	syncCtx, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
	defer cancel()
	if !cache.WaitForCacheSync(syncCtx.Done(), inf.HasSynced) {
		r.hooks.report(false)
		r.hooks.logger.Warn("The EndpointSlices of the Service are not listed yet; starting without backends",
			zap.String("service", name+"."+ns), zap.Duration("timeout", r.cfg.Timeout))
	}
	r.mu.Lock()
	r.synced = true
	r.mu.Unlock()
	r.refresh(ctx)
	return nil
}

// refresh applies the current endpoints; events during the first list wait
// for it to finish, so that start applies one complete set.
func (r *k8sResolver) refresh(ctx context.Context) {
	r.mu.Lock()
	synced := r.synced
	r.mu.Unlock()
	if !synced {
		return
	}
	list, err := r.lister.EndpointSlices(r.ns).List(labels.SelectorFromSet(labels.Set{discoveryv1.LabelServiceName: r.name}))
	if err != nil {
		r.keeper.update(ctx, nil, err)
		return
	}
	r.keeper.update(ctx, readyEndpoints(list, r.cfg.Ports), nil)
}

// readyEndpoints lists, for every port configured (a name or a number), the
// endpoints that are ready: a terminating endpoint gets no new keys. An
// endpoint in several slices (during an update) counts once.
func readyEndpoints(slices []*discoveryv1.EndpointSlice, ports []string) []backendSpec {
	var specs []backendSpec
	for _, s := range slices {
		if s.AddressType == discoveryv1.AddressTypeFQDN {
			continue
		}
		for _, want := range ports {
			port, ok := slicePort(s, want)
			if !ok {
				continue
			}
			for _, e := range s.Endpoints {
				if len(e.Addresses) == 0 || !isReady(e.Conditions) {
					continue
				}
				specs = append(specs, backendSpec{endpoint: net.JoinHostPort(e.Addresses[0], strconv.Itoa(int(port))), weight: 1})
			}
		}
	}
	return dedupSpecs(specs)
}

// slicePort finds the port named, or numbered, want among the slice's.
func slicePort(s *discoveryv1.EndpointSlice, want string) (int32, bool) {
	n, numErr := strconv.Atoi(want)
	for _, p := range s.Ports {
		if p.Port == nil {
			continue
		}
		if (numErr == nil && int(*p.Port) == n) || (p.Name != nil && *p.Name == want) {
			return *p.Port, true
		}
	}
	return 0, false
}

// isReady reads the ready condition; the API says an unset one means ready.
func isReady(c discoveryv1.EndpointConditions) bool {
	return c.Ready == nil || *c.Ready
}

func (r *k8sResolver) shutdown(context.Context) error {
	if r.stop != nil {
		close(r.stop)
		r.factory.Shutdown()
		r.stop = nil
	}
	return nil
}
