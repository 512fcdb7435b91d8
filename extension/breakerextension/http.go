// Copyright The otelcsp Authors
// SPDX-License-Identifier: Apache-2.0

package breakerextension // import "github.com/otelcsp/otelcsp/extension/breakerextension"

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"strconv"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/confighttp"
	"go.uber.org/zap"

	"github.com/otelcsp/otelcsp/extension/breakerextension/internal/engine"
)

// The operator endpoint: GET lists every key (JSON; the status page for a
// browser, see status.go); POST or PUT sets a manual state. It is off unless
// `http:` is configured and listens on loopback by default, because it can
// force backends open.
const breakersPath = "/breakers"

type manualRequest struct {
	Key    string `json:"key"`
	Manual string `json:"manual"`
}

type listResponse struct {
	Keys []KeySnapshot `json:"keys"`
}

func (e *breakerExtension) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", e.handleStatus)
	mux.HandleFunc("GET "+breakersPath, e.handleList)
	mux.HandleFunc("POST "+breakersPath, e.handleSet)
	mux.HandleFunc("PUT "+breakersPath, e.handleSet)
	return mux
}

func (e *breakerExtension) handleList(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Vary", "Accept")
	if wantsHTML(r) && !r.URL.Query().Has("key") {
		e.handleStatus(w, r)
		return
	}
	snaps := e.Snapshot()
	if key := r.URL.Query().Get("key"); key != "" {
		var one []KeySnapshot
		for _, s := range snaps {
			if s.Key == key {
				one = append(one, s)
			}
		}
		if one == nil {
			writeJSON(w, http.StatusNotFound, map[string]string{"error": "unknown key " + key})
			return
		}
		snaps = one
	}
	if snaps == nil {
		snaps = []KeySnapshot{}
	}
	writeJSON(w, http.StatusOK, listResponse{Keys: snaps})
}

func (e *breakerExtension) handleSet(w http.ResponseWriter, r *http.Request) {
	// A browser sends a cross-site form or simple request only with a
	// form, multipart or text/plain type; application/json needs a CORS
	// preflight, which this endpoint never answers. So requiring it keeps
	// other sites' pages from changing states (cross-site request forgery).
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		writeJSON(w, http.StatusUnsupportedMediaType, map[string]string{"error": "Content-Type must be application/json"})
		return
	}
	var req manualRequest
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<16))
	if err == nil {
		err = json.Unmarshal(body, &req)
	}
	if err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "body must be JSON {\"key\": ..., \"manual\": ...}: " + err.Error()})
		return
	}
	if req.Key == "" {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "\"key\" is required"})
		return
	}
	m, err := ParseManualState(req.Manual)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
		return
	}
	if !e.reg.Known(req.Key) {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "unknown key " + strconv.Quote(req.Key) +
			": not in use and matching no glob of keys or manual"})
		return
	}
	if err := e.reg.SetManual(req.Key, engine.Manual(m)); err != nil {
		writeJSON(w, http.StatusConflict, map[string]string{"error": err.Error()})
		return
	}
	e.set.Logger.Info("breaker manual state set over HTTP", zap.String("key", req.Key),
		zap.Stringer("manual", m), zap.String("remote", r.RemoteAddr))
	writeJSON(w, http.StatusOK, e.snapshot(req.Key))
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func (e *breakerExtension) startHTTP(ctx context.Context, host component.Host, cfg *confighttp.ServerConfig) error {
	ln, err := cfg.ToListener(ctx)
	if err != nil {
		return err
	}
	srv, err := cfg.ToServer(ctx, host.GetExtensions(), e.set.TelemetrySettings, e.handler())
	if err != nil {
		_ = ln.Close()
		return err
	}
	e.srv = srv
	e.addr = ln.Addr().String()
	e.srvDone = make(chan struct{})
	e.set.Logger.Info("breaker HTTP endpoint listening", zap.String("address", ln.Addr().String()))
	go func() {
		defer close(e.srvDone)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			e.set.Logger.Error("breaker HTTP endpoint stopped", zap.Error(err))
		}
	}()
	return nil
}

// listenAddr is the endpoint's bound address (useful with port 0).
func (e *breakerExtension) listenAddr() string { return e.addr }
