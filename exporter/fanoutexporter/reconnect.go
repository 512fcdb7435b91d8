package fanoutexporter

import (
	"context"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/configmiddleware"
	"go.opentelemetry.io/collector/extension/extensionmiddleware"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
)

// gRPC redials a backend that went away with exponential backoff up to
// 120s by default; while it waits, every call fails at once, so a breaker's
// half-open probes keep failing long after the backend is back (after a 10s
// outage the channel next dials ~16s in). The fanout has its own failover
// and breakers, so its backend connections redial quickly instead: up to
// once a second, a few TCP connection attempts a second per backend at
// most, only while a backend is down.
var reconnectParams = grpc.ConnectParams{
	Backoff: backoff.Config{
		BaseDelay:  100 * time.Millisecond,
		Multiplier: 1.6,
		Jitter:     0.2,
		MaxDelay:   time.Second,
	},
	MinConnectTimeout: 2 * time.Second,
}

// reconnectID names the middleware that sets reconnectParams on every
// backend's gRPC client. It cannot clash with a configured extension: there
// is no extension of type fanout.
var reconnectID = component.MustNewIDWithName("fanout", "reconnect")

// reconnectMiddleware is the middleware behind reconnectID, found by the
// backends' exporters through reconnectHost.
type reconnectMiddleware struct {
	component.StartFunc
	component.ShutdownFunc
}

func (reconnectMiddleware) GetGRPCClientOptions(context.Context) ([]grpc.DialOption, error) {
	return []grpc.DialOption{grpc.WithConnectParams(reconnectParams)}, nil
}

var _ extensionmiddleware.GRPCClient = reconnectMiddleware{}

// withReconnect adds the middleware to a backend's gRPC client settings.
func withReconnect(mws []configmiddleware.Config) []configmiddleware.Config {
	return append(append([]configmiddleware.Config(nil), mws...), configmiddleware.Config{ID: reconnectID})
}

// reconnectHost is the collector's host with the middleware among its
// extensions, for starting backends' exporters.
type reconnectHost struct{ component.Host }

func (h reconnectHost) GetExtensions() map[component.ID]component.Component {
	exts := h.Host.GetExtensions()
	out := make(map[component.ID]component.Component, len(exts)+1)
	for id, e := range exts {
		out[id] = e
	}
	out[reconnectID] = reconnectMiddleware{}
	return out
}
