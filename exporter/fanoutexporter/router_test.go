package fanoutexporter

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/otelcsp/otelcsp/exporter/fanoutexporter/internal/metadatatest"
)

// fakeBackends stand in for the backends' exporters: each endpoint answers
// with the error its fail function gives (nil: takes the spans).
type fakeBackends struct {
	mu    sync.Mutex
	fail  map[string]error
	spans map[string]int
}

func (fb *fakeBackends) newSub(_ context.Context, _ exporter.Settings, endpoint string) (component.Component, func(context.Context, ptrace.Traces) error, error) {
	return nopComponent{}, func(_ context.Context, td ptrace.Traces) error {
		fb.mu.Lock()
		defer fb.mu.Unlock()
		if err := fb.fail[endpoint]; err != nil {
			return err
		}
		fb.spans[endpoint] += td.SpanCount()
		return nil
	}, nil
}

func (fb *fakeBackends) set(endpoint string, err error) {
	fb.mu.Lock()
	defer fb.mu.Unlock()
	fb.fail[endpoint] = err
}

func (fb *fakeBackends) total() int {
	fb.mu.Lock()
	defer fb.mu.Unlock()
	n := 0
	for _, s := range fb.spans {
		n += s
	}
	return n
}

// routerFanout is a started traces fanout over endpoints a, b, c served by
// fakeBackends, with its telemetry.
func routerFanout(t *testing.T) (*fanout[ptrace.Traces], *fakeBackends, *componenttest.Telemetry) {
	t.Helper()
	cfg := createDefaultConfig().(*Config)
	cfg.Resolver.Static = configoptional.Some(StaticResolverConfig{Endpoints: []string{"a:4317", "b:4317", "c:4317"}})
	fb := &fakeBackends{fail: map[string]error{}, spans: map[string]int{}}
	ops := tracesOps(cfg, keyTraceID, subExporter{})
	ops.newSub = fb.newSub
	tt := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tt.Shutdown(context.Background())) })
	f, err := newFanout(metadatatest.NewSettings(tt), cfg, ops)
	require.NoError(t, err)
	require.NoError(t, f.start(context.Background(), componenttest.NewNopHost()))
	t.Cleanup(func() { require.NoError(t, f.shutdown(context.Background())) })
	return f, fb, tt
}

// A round sorts each part's outcome: a failed part is re-routed to the
// next backends of its keys, in the same push and exactly once; a router
// taken again from the pool starts with every backend allowed.
func TestRouterReroutesAFailedPartAndForgetsItAfterThePush(t *testing.T) {
	f, fb, tt := routerFanout(t)
	fb.set("b:4317", errors.New("unavailable"))
	td := genTraces(rand.New(rand.NewPCG(5, 5)), 300, 2)
	total := td.SpanCount()

	left, n, perr := f.route(context.Background(), td)
	require.NoError(t, perr)
	require.Zero(t, n, "the other backends took b's part")
	assert.Equal(t, ptrace.Traces{}, left)
	assert.Equal(t, total, fb.total())
	assert.Zero(t, fb.spans["b:4317"])
	failed := counter(t, tt, "otelcol_fanout_items_failed")
	assert.Positive(t, failed)
	assert.Equal(t, failed, counter(t, tt, "otelcol_fanout_items_rerouted"), "everything b failed went elsewhere")
	assert.Equal(t, int64(total), counter(t, tt, "otelcol_fanout_items_sent"))

	fb.set("b:4317", nil)
	_, n, perr = f.route(context.Background(), genTraces(rand.New(rand.NewPCG(5, 5)), 300, 2))
	require.NoError(t, perr)
	require.Zero(t, n)
	assert.Positive(t, fb.spans["b:4317"], "b is back in the next push")
	assert.Equal(t, failed, counter(t, tt, "otelcol_fanout_items_rerouted"), "nothing rerouted once b is healthy")
}

// Items a backend refuses as invalid are not re-routed: they come back as
// a permanent error naming the backend, while the other parts are
// delivered.
func TestRouterKeepsPermanentRefusals(t *testing.T) {
	f, fb, _ := routerFanout(t)
	fb.set("c:4317", consumererror.NewPermanent(errors.New("bad span")))
	_, n, perr := f.route(context.Background(), genTraces(rand.New(rand.NewPCG(6, 6)), 300, 2))
	require.Zero(t, n)
	require.True(t, consumererror.IsPermanent(perr))
	assert.ErrorContains(t, perr, "backend c:4317")
	assert.Positive(t, fb.spans["a:4317"])
	assert.Positive(t, fb.spans["b:4317"])
}

// When every backend fails, every item comes back, once, for the caller.
func TestRouterGivesBackWhatNoBackendTook(t *testing.T) {
	f, fb, _ := routerFanout(t)
	for _, e := range []string{"a", "b", "c"} {
		fb.set(e+":4317", fmt.Errorf("%s down", e))
	}
	td := genTraces(rand.New(rand.NewPCG(7, 7)), 300, 2)
	total := td.SpanCount()
	left, n, perr := f.route(context.Background(), td)
	require.NoError(t, perr)
	assert.Equal(t, total, n)
	assert.Equal(t, total, left.SpanCount())
	assert.Zero(t, fb.total())
}
