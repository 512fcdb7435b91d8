package fanoutexporter

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
)

// resolver keeps the backend set fresh: it calls apply with the full set
// whenever the set changes.
type resolver interface {
	start(ctx context.Context) error
	shutdown(ctx context.Context) error
}

// resolverHooks are what a resolver reports to.
type resolverHooks struct {
	logger *zap.Logger
	// apply installs a new backend set.
	apply func(context.Context, []backendSpec)
	// report counts a refresh, successful or not.
	report func(ok bool)
}

func newResolver(cfg ResolverConfig, hooks resolverHooks) (resolver, error) {
	switch {
	case cfg.DNS.HasValue():
		return newPoller(cfg.DNS.Get().Interval, hooks, newDNSLookup(*cfg.DNS.Get())), nil
	case cfg.File.HasValue():
		return newPoller(cfg.File.Get().Interval, hooks, fileLookup(cfg.File.Get().Path)), nil
	case cfg.K8s.HasValue():
		return newK8sResolver(*cfg.K8s.Get(), hooks, nil), nil
	case cfg.Static.HasValue():
		return staticResolver{specs: staticSpecs(*cfg.Static.Get()), hooks: hooks}, nil
	}
	return nil, errors.New(`"resolver": configure exactly one of static, dns, file and k8s`)
}

// staticResolver installs its fixed list once.
type staticResolver struct {
	specs []backendSpec
	hooks resolverHooks
}

func staticSpecs(cfg StaticResolverConfig) []backendSpec {
	specs := make([]backendSpec, 0, len(cfg.Endpoints))
	for _, e := range cfg.Endpoints {
		w, ok := cfg.Weights[e]
		if !ok {
			w = 1
		}
		specs = append(specs, backendSpec{endpoint: e, weight: w})
	}
	return specs
}

func (s staticResolver) start(ctx context.Context) error {
	s.hooks.apply(ctx, s.specs)
	s.hooks.report(true)
	return nil
}

func (staticResolver) shutdown(context.Context) error { return nil }

// poller runs a lookup at start and then every interval. A failed lookup
// keeps the last good set; it is counted and logged, never fatal.
type poller struct {
	interval time.Duration
	hooks    resolverHooks
	lookup   func(context.Context) ([]backendSpec, error)

	cancel context.CancelFunc
	wg     sync.WaitGroup
	keeper lastGood
}

func newPoller(interval time.Duration, hooks resolverHooks, lookup func(context.Context) ([]backendSpec, error)) *poller {
	return &poller{interval: interval, hooks: hooks, lookup: lookup, keeper: lastGood{hooks: hooks}}
}

func (p *poller) start(ctx context.Context) error {
	// The first lookup runs before start returns, so that data flowing
	// right after start finds backends.
	p.refresh(ctx)
	runCtx, cancel := context.WithCancel(context.Background())
	p.cancel = cancel
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		t := time.NewTicker(p.interval)
		defer t.Stop()
		for {
			select {
			case <-runCtx.Done():
				return
			case <-t.C:
				p.refresh(runCtx)
			}
		}
	}()
	return nil
}

func (p *poller) refresh(ctx context.Context) {
	specs, err := p.lookup(ctx)
	if err != nil && ctx.Err() != nil {
		return
	}
	p.keeper.update(ctx, specs, err)
}

func (p *poller) shutdown(context.Context) error {
	if p.cancel != nil {
		p.cancel()
	}
	p.wg.Wait()
	return nil
}

// lastGood applies what a resolver found, unless the lookup failed or
// found nothing: then the last good set stays. Every update is counted; an
// unchanged set is not applied again.
type lastGood struct {
	hooks resolverHooks
	mu    sync.Mutex
	last  []backendSpec
}

func (k *lastGood) update(ctx context.Context, specs []backendSpec, err error) {
	if err == nil && len(specs) == 0 {
		// An empty answer is far more often a glitch (a ConfigMap being
		// rewritten, a DNS server restarting, a Service being recreated)
		// than a wish to drop all data.
		err = errors.New("no backends found")
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if err != nil {
		k.hooks.report(false)
		k.hooks.logger.Warn("Resolving backends failed; keeping the last good set",
			zap.Strings("backends", specEndpoints(k.last)), zap.Error(err))
		return
	}
	k.hooks.report(true)
	slices.SortFunc(specs, func(a, b backendSpec) int { return strings.Compare(a.endpoint, b.endpoint) })
	if k.last != nil && slices.Equal(specs, k.last) {
		return
	}
	k.last = specs
	k.hooks.apply(ctx, specs)
}

func specEndpoints(specs []backendSpec) []string {
	out := make([]string, len(specs))
	for i, s := range specs {
		out[i] = s.endpoint
	}
	return out
}
