package fanoutexporter

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/otelcsp/otelcsp/exporter/fanoutexporter/internal/metadatatest"
	"github.com/otelcsp/otelcsp/internal/otlptest"
)

// Each backend's exporter is named otlp_grpc/<fanout id>/<endpoint> in the
// core exporter metrics, with the endpoint once.
func TestBackendExporterID(t *testing.T) {
	s := otlptest.Start(t)
	exp, tt, _ := observed(t, testConfig(s), nil)
	in, total := batches(21, 1, 5, 2)
	accepted, _ := sendAll(t, exp, in)
	require.Equal(t, total, accepted)
	require.NoError(t, exp.Shutdown(context.Background()))
	assert.Equal(t, int64(total), counter(t, tt, "otelcol_exporter_sent_spans",
		attribute.String("exporter", "otlp_grpc/fanout/"+s.Addr())))
}

// The fanout's own metrics carry exporter=<its ID>, so the fanouts of one
// collector keep their own series (counters and gauges alike).
func TestOwnMetricsCarryExporterID(t *testing.T) {
	s := otlptest.Start(t)
	exp, tt, _ := observed(t, testConfig(s), nil)
	in, total := batches(5, 1, 5, 2)
	accepted, _ := sendAll(t, exp, in)
	require.Equal(t, total, accepted)
	self := attribute.String("exporter", "fanout")
	assert.Equal(t, int64(total), counter(t, tt, "otelcol_fanout_items_sent", self, attribute.String("backend", s.Addr())))
	m, err := tt.GetMetric("otelcol_fanout_backends")
	require.NoError(t, err)
	for _, dp := range m.Data.(metricdata.Gauge[int64]).DataPoints {
		v, ok := dp.Attributes.Value("exporter")
		assert.True(t, ok && v.AsString() == "fanout", "backends gauge point %v", dp.Attributes.ToSlice())
	}
	require.NoError(t, exp.Shutdown(context.Background()))
}

// metricsRecorder stands in for the backends' exporters of a metrics fanout.
type metricsRecorder struct {
	mu     sync.Mutex
	points map[string]int
}

func (r *metricsRecorder) newSub(_ context.Context, _ exporter.Settings, endpoint string) (component.Component, func(context.Context, pmetric.Metrics) error, error) {
	return nopComponent{}, func(_ context.Context, md pmetric.Metrics) error {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.points[endpoint] += md.DataPointCount()
		return nil
	}, nil
}

// otelcol_fanout_items_rerouted counts data points for metrics, whatever
// the routing key, not routing decisions.
func TestReroutedCountsDataPoints(t *testing.T) {
	for _, key := range []string{keyService, keyResource, keyMetric, keyStreamID} {
		t.Run(key, func(t *testing.T) {
			cfg := createDefaultConfig().(*Config)
			cfg.RoutingKey = key
			cfg.Resolver.Static = configoptional.Some(StaticResolverConfig{Endpoints: []string{"a:4317", "b:4317"}})
			id := component.MustNewID("breaker")
			cfg.Breaker = &id
			cfg.MaxEjectedPercent = 100 // ejection, never panic mode
			breakers := &fakeBreakers{open: map[string]bool{}, allows: map[string]*atomic.Int64{}}
			rec := &metricsRecorder{points: map[string]int{}}
			ops := metricsOps(cfg, key, subExporter{})
			ops.newSub = rec.newSub
			tt := componenttest.NewTelemetry()
			t.Cleanup(func() { require.NoError(t, tt.Shutdown(context.Background())) })
			f, err := newFanout(metadatatest.NewSettings(tt), cfg, ops)
			require.NoError(t, err)
			h := host{Host: componenttest.NewNopHost(), extensions: map[component.ID]component.Component{id: breakers}}
			require.NoError(t, f.start(context.Background(), h))
			t.Cleanup(func() { require.NoError(t, f.shutdown(context.Background())) })

			// One service, one metric of 7 points: first find its owner.
			batch := func() pmetric.Metrics {
				md := pmetric.NewMetrics()
				rm := md.ResourceMetrics().AppendEmpty()
				rm.Resource().Attributes().PutStr("service.name", "checkout")
				m := rm.ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
				m.SetName("calls")
				dps := m.SetEmptyGauge().DataPoints()
				for range 7 {
					dps.AppendEmpty().SetIntValue(1)
				}
				return md
			}
			require.NoError(t, f.push(context.Background(), batch()))
			owner := "a:4317"
			if rec.points["b:4317"] > 0 {
				owner = "b:4317"
			}
			require.Equal(t, 7, rec.points[owner])
			// Eject the owner: its 7 points go to the other backend and
			// count as 7 rerouted items.
			breakers.setOpen(owner, true)
			require.NoError(t, f.push(context.Background(), batch()))
			assert.Equal(t, int64(7), counter(t, tt, "otelcol_fanout_items_rerouted"))
		})
	}
}
