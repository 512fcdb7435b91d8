package redmetricsconnector

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/connector/connectortest"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/otelcsp/otelcsp/connector/redmetricsconnector/internal/metadata"
)

// blockingConsumer holds ConsumeMetrics until released.
type blockingConsumer struct {
	entered chan struct{}
	release chan struct{}
}

func (b *blockingConsumer) Capabilities() consumer.Capabilities { return consumer.Capabilities{} }

func (b *blockingConsumer) ConsumeMetrics(context.Context, pmetric.Metrics) error {
	b.entered <- struct{}{}
	<-b.release
	return nil
}

// A slow metrics pipeline must not stall span ingestion: the flush hands
// its metrics over after releasing every shard.
func TestSlowExportDoesNotBlockIngestion(t *testing.T) {
	next := &blockingConsumer{entered: make(chan struct{}, 1), release: make(chan struct{})}
	clk := newManualClock()
	c, err := newConnector(connectortest.NewNopSettings(metadata.Type), createDefaultConfig(), next, clk)
	require.NoError(t, err)
	consume(t, c, spanSpec{service: "a", name: "op", durMs: 1})

	flushed := make(chan struct{})
	go func() {
		c.flush(context.Background())
		close(flushed)
	}()
	<-next.entered // the flush is now inside the (stuck) next consumer

	ingested := make(chan struct{})
	go func() {
		consume(t, c, spanSpec{service: "a", name: "op", durMs: 1}, spanSpec{service: "b", name: "new", durMs: 1})
		close(ingested)
	}()
	select {
	case <-ingested:
	case <-time.After(10 * time.Second):
		t.Fatal("ConsumeTraces blocked behind a slow export")
	}
	close(next.release)
	<-flushed
	assert.Equal(t, int64(2), c.live.Load())
}
