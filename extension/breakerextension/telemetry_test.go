// Copyright The otelcsp Authors
// SPDX-License-Identifier: Apache-2.0

package breakerextension

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// TestStateMetricKeyAttributes: a key's attribute set is built once and
// reused while the key is observed, and dropped with the key when the
// sweeper forgets it, so forgotten keys leave nothing behind.
func TestStateMetricKeyAttributes(t *testing.T) {
	tel := componenttest.NewTelemetry()
	defer func() { require.NoError(t, tel.Shutdown(context.Background())) }()
	e, clk := newTestExtension(t, createDefaultConfig(), tel)
	require.NoError(t, e.Start(context.Background(), componenttest.NewNopHost()))
	defer func() { require.NoError(t, e.Shutdown(context.Background())) }()

	states := func() int {
		m, err := tel.GetMetric("otelcol_breaker_state")
		require.NoError(t, err)
		return len(m.Data.(metricdata.Gauge[int64]).DataPoints)
	}
	call(t, e.Breaker("a:4317"), nil)
	call(t, e.Breaker("b:4317"), nil)
	require.Equal(t, 2, states())
	first := e.tel.keys["a:4317"]
	require.NotNil(t, first)
	require.Equal(t, 2, states())
	assert.Same(t, first, e.tel.keys["a:4317"], "built once, reused")

	// b stays in use; a goes idle and is forgotten (idle_expiry 10m, swept
	// every 5m).
	for range 5 {
		clk.Advance(5 * time.Minute)
		call(t, e.Breaker("b:4317"), nil)
	}
	require.Equal(t, int64(1), e.reg.Count(), "a was forgotten")
	assert.Equal(t, 1, states())
	assert.NotContains(t, e.tel.keys, "a:4317")
	assert.Contains(t, e.tel.keys, "b:4317")
}
