// Copyright The otelcsp Authors
// SPDX-License-Identifier: Apache-2.0

package breakerextension // import "github.com/otelcsp/otelcsp/extension/breakerextension"

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componentstatus"
	"go.opentelemetry.io/collector/extension"
	"go.opentelemetry.io/collector/extension/extensionmiddleware"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.uber.org/zap"

	"github.com/otelcsp/otelcsp/internal/clock"
)

// breakerExtension is the collector-facing side: lifecycle, telemetry,
// component status and the HTTP endpoint around the engine.
type breakerExtension struct {
	*provider
	cfg *Config
	set extension.Settings

	mu       sync.Mutex
	started  bool
	stopped  bool
	host     component.Host
	tel      *telemetry
	unsub    func()
	srv      *http.Server
	srvDone  chan struct{}
	addr     string
	statusMu sync.Mutex // guards host; orders status reports with each other
}

var (
	_ extension.Extension            = (*breakerExtension)(nil)
	_ Provider                       = (*breakerExtension)(nil)
	_ Subscriber                     = (*breakerExtension)(nil)
	_ Controller                     = (*breakerExtension)(nil)
	_ extensionmiddleware.GRPCClient = (*breakerExtension)(nil)
	_ extensionmiddleware.HTTPClient = (*breakerExtension)(nil)
)

func newExtension(cfg *Config, set extension.Settings, clk clock.TimerClock) (*breakerExtension, error) {
	logger := set.Logger
	if logger == nil {
		logger = zap.NewNop()
	}
	return &breakerExtension{
		provider: newProvider(cfg, clk, logger, uint64(time.Now().UnixNano())),
		cfg:      cfg,
		set:      set,
	}, nil
}

// Start wires telemetry and status, starts the sweeper/stall ticker and the
// optional HTTP endpoint.
func (e *breakerExtension) Start(ctx context.Context, host component.Host) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.started {
		return nil
	}
	tel, err := newTelemetry(e.set.TelemetrySettings, e.set.ID, e.reg)
	if err != nil {
		return err
	}
	e.tel = tel
	e.statusMu.Lock()
	e.host = host
	e.statusMu.Unlock()
	e.unsub = e.Subscribe(func(ch StateChange) {
		tel.transition(ch)
		e.set.Logger.Info("breaker state change", zap.String("key", ch.Key),
			zap.Stringer("from", ch.From), zap.Stringer("to", ch.To),
			zap.String("reason", ch.Reason), zap.Bool("shadow", ch.Shadow))
	})
	e.reg.OnStatus(e.reportStatus)

	if srvCfg := e.cfg.HTTP.Get(); srvCfg != nil {
		if err := e.startHTTP(ctx, host, srvCfg); err != nil {
			e.unsub()
			tel.shutdown()
			return err
		}
	}
	e.reg.Start()
	e.started = true
	// Keys may have opened before Start (the API works without it).
	if open := e.reg.OpenKeys(); len(open) > 0 {
		e.reportStatus(open)
	}
	return nil
}

// Shutdown stops timers, the endpoint and telemetry. Safe to call twice and
// without Start.
func (e *breakerExtension) Shutdown(ctx context.Context) error {
	e.reg.Stop()
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.started || e.stopped {
		return nil
	}
	e.stopped = true
	var err error
	if e.srv != nil {
		err = e.srv.Shutdown(ctx)
		<-e.srvDone
	}
	e.reg.OnStatus(nil)
	e.unsub()
	e.tel.shutdown()
	return err
}

// reportStatus runs in delivery order, outside breaker locks.
func (e *breakerExtension) reportStatus(open []string) {
	e.statusMu.Lock()
	defer e.statusMu.Unlock()
	host := e.host
	if host == nil {
		return
	}
	if len(open) == 0 {
		componentstatus.ReportStatus(host, componentstatus.NewEvent(componentstatus.StatusOK))
		return
	}
	attrs := pcommon.NewMap()
	keys := attrs.PutEmptySlice("open_keys")
	for _, k := range open {
		keys.AppendEmpty().SetStr(k)
	}
	err := fmt.Errorf("%d breaker key(s) open: %s", len(open), strings.Join(open, ", "))
	componentstatus.ReportStatus(host, componentstatus.NewEvent(componentstatus.StatusRecoverableError,
		componentstatus.WithError(err), componentstatus.WithAttributes(attrs)))
}
