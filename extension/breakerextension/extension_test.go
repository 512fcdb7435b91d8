// Copyright The otelcsp Authors
// SPDX-License-Identifier: Apache-2.0

package breakerextension

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/open-telemetry/opentelemetry-collector-contrib/extension/bearertokenauthextension"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componentstatus"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/configauth"
	"go.opentelemetry.io/collector/config/confighttp"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/extension/extensiontest"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/metric/metricdata/metricdatatest"

	"github.com/otelcsp/otelcsp/extension/breakerextension/internal/metadata"
	"github.com/otelcsp/otelcsp/extension/breakerextension/internal/metadatatest"
	"github.com/otelcsp/otelcsp/internal/clock/clocktest"
)

// statusHost records status events and serves extensions.
type statusHost struct {
	mu     sync.Mutex
	events []*componentstatus.Event
	exts   map[component.ID]component.Component
}

func (h *statusHost) GetExtensions() map[component.ID]component.Component { return h.exts }

func (h *statusHost) Report(ev *componentstatus.Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.events = append(h.events, ev)
}

func (h *statusHost) last() *componentstatus.Event {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.events) == 0 {
		return nil
	}
	return h.events[len(h.events)-1]
}

func newTestExtension(t *testing.T, cfg *Config, tel *componenttest.Telemetry) (*breakerExtension, *clocktest.Fake) {
	t.Helper()
	clk := newFakeClock()
	set := extensiontest.NewNopSettings(metadata.Type)
	if tel != nil {
		set = metadatatest.NewSettings(tel)
	}
	e, err := newExtension(cfg, set, clk)
	require.NoError(t, err)
	return e, clk
}

func TestLifecycle(t *testing.T) {
	f := NewFactory()
	cfg := f.CreateDefaultConfig()
	require.NoError(t, componenttest.CheckConfigStruct(cfg))

	ext, err := f.Create(context.Background(), extensiontest.NewNopSettings(metadata.Type), cfg)
	require.NoError(t, err)
	require.NoError(t, ext.Shutdown(context.Background()), "shutdown without start")

	ext, err = f.Create(context.Background(), extensiontest.NewNopSettings(metadata.Type), cfg)
	require.NoError(t, err)
	require.NoError(t, ext.Start(context.Background(), componenttest.NewNopHost()))
	require.NoError(t, ext.Shutdown(context.Background()))
	require.NoError(t, ext.Shutdown(context.Background()), "second shutdown")

	// With the HTTP endpoint on.
	c := createDefaultConfig()
	c.HTTP.GetOrInsertDefault().NetAddr.Endpoint = "127.0.0.1:0"
	ext, err = f.Create(context.Background(), extensiontest.NewNopSettings(metadata.Type), c)
	require.NoError(t, err)
	require.NoError(t, ext.Start(context.Background(), componenttest.NewNopHost()))
	require.NoError(t, ext.Shutdown(context.Background()))
	require.NoError(t, ext.Shutdown(context.Background()))
}

func TestFromHost(t *testing.T) {
	id := component.MustNewID("breaker")
	e, _ := newTestExtension(t, createDefaultConfig(), nil)
	host := &statusHost{exts: map[component.ID]component.Component{
		id: e,
	}}
	p, err := FromHost(host, id)
	require.NoError(t, err)
	assert.Same(t, e.get("a"), p.Breaker("a"))
	_, ok := p.(Subscriber)
	assert.True(t, ok, "the provider also offers subscriptions")
	ctl, ok := p.(Controller)
	require.True(t, ok, "and manual control")
	ctl.SetManualState("a", ManualForcedOpen)
	assert.Equal(t, StateOpen, p.Breaker("a").State())

	_, err = FromHost(host, component.MustNewIDWithName("breaker", "missing"))
	assert.ErrorContains(t, err, `breaker extension "breaker/missing" not found`)
	_, err = FromHost(nil, id)
	assert.Error(t, err)
}

func TestFromHostWrongType(t *testing.T) {
	id := component.MustNewID("other")
	host := &statusHost{exts: map[component.ID]component.Component{id: nopComponent{}}}
	_, err := FromHost(host, id)
	assert.ErrorContains(t, err, "not a breaker extension")
}

type nopComponent struct{}

func (nopComponent) Start(context.Context, component.Host) error { return nil }
func (nopComponent) Shutdown(context.Context) error              { return nil }

func TestStatusListsOpenKeys(t *testing.T) {
	cfg := createDefaultConfig()
	cfg.Jitter = 0
	cfg.SuccessThreshold = 1
	e, clk := newTestExtension(t, cfg, nil)
	host := &statusHost{}
	require.NoError(t, e.Start(context.Background(), host))
	defer func() { require.NoError(t, e.Shutdown(context.Background())) }()

	for _, key := range []string{"b:4317", "a:4317"} {
		for range 5 {
			call(t, e.Breaker(key), errBackend)
		}
	}
	ev := host.last()
	require.NotNil(t, ev)
	assert.Equal(t, componentstatus.StatusRecoverableError, ev.Status())
	keys, ok := ev.Attributes().Get("open_keys")
	require.True(t, ok)
	assert.Equal(t, []any{"a:4317", "b:4317"}, keys.Slice().AsRaw())
	assert.ErrorContains(t, ev.Err(), "2 breaker key(s) open: a:4317, b:4317")

	clk.Advance(time.Second) // both half-open: no longer "open"
	call(t, e.Breaker("a:4317"), nil)
	assert.Equal(t, componentstatus.StatusOK, host.last().Status())
}

func TestMetrics(t *testing.T) {
	tel := componenttest.NewTelemetry()
	defer func() { require.NoError(t, tel.Shutdown(context.Background())) }()
	cfg := createDefaultConfig()
	cfg.Jitter = 0
	e, _ := newTestExtension(t, cfg, tel)
	require.NoError(t, e.Start(context.Background(), componenttest.NewNopHost()))
	defer func() { require.NoError(t, e.Shutdown(context.Background())) }()

	b := e.Breaker("k")
	call(t, b, nil)
	call(t, b, context.Canceled)
	for range 5 {
		call(t, b, errBackend)
	}
	_, err := b.Allow()
	require.ErrorIs(t, err, ErrOpen)
	call(t, e.Breaker("k2"), nil)

	// Every own metric carries the extension's ID (two breaker extensions
	// of one collector keep their own series).
	self := attribute.String("extension", "breaker")
	metadatatest.AssertEqualBreakerCalls(t, tel, []metricdata.DataPoint[int64]{
		{Value: 2, Attributes: attribute.NewSet(self, attribute.String("outcome", "success"))},
		{Value: 5, Attributes: attribute.NewSet(self, attribute.String("outcome", "failure"))},
		{Value: 1, Attributes: attribute.NewSet(self, attribute.String("outcome", "ignored"))},
		{Value: 1, Attributes: attribute.NewSet(self, attribute.String("outcome", "rejected"))},
	}, metricdatatest.IgnoreTimestamp())
	metadatatest.AssertEqualBreakerState(t, tel, []metricdata.DataPoint[int64]{
		{Value: 2, Attributes: attribute.NewSet(self, attribute.String("key", "k"))},
		{Value: 0, Attributes: attribute.NewSet(self, attribute.String("key", "k2"))},
	}, metricdatatest.IgnoreTimestamp())
	metadatatest.AssertEqualBreakerTransitions(t, tel, []metricdata.DataPoint[int64]{
		{Value: 1, Attributes: attribute.NewSet(self, attribute.String("from", "closed"), attribute.String("to", "open"), attribute.Bool("shadow", false))},
	}, metricdatatest.IgnoreTimestamp())
	metadatatest.AssertEqualBreakerKeys(t, tel, []metricdata.DataPoint[int64]{{Value: 2, Attributes: attribute.NewSet(self)}}, metricdatatest.IgnoreTimestamp())
}

func TestHTTPEndpoint(t *testing.T) {
	cfg := createDefaultConfig()
	cfg.Jitter = 0
	srv := confighttp.NewDefaultServerConfig()
	srv.NetAddr.Endpoint = "127.0.0.1:0"
	cfg.HTTP = configoptional.Some(srv)
	e, clk := newTestExtension(t, cfg, nil)
	require.NoError(t, e.Start(context.Background(), componenttest.NewNopHost()))
	defer func() { require.NoError(t, e.Shutdown(context.Background())) }()
	base := "http://" + e.listenAddr() + breakersPath

	for range 5 {
		call(t, e.Breaker("a:4317"), errBackend)
	}
	call(t, e.Breaker("b:4317"), nil)

	var list listResponse
	getJSON(t, base, http.StatusOK, &list)
	require.Len(t, list.Keys, 2)
	assert.Equal(t, "a:4317", list.Keys[0].Key)
	assert.Equal(t, "open", list.Keys[0].State)
	assert.Equal(t, uint64(5), list.Keys[0].Failure)
	require.NotNil(t, list.Keys[0].NextProbe)
	assert.Equal(t, clk.Now().Add(time.Second), list.Keys[0].NextProbe.UTC(), "open_duration (1s, no jitter) after the trip")
	assert.Equal(t, clk.Now(), list.Keys[0].StateSince.UTC(), "it tripped just now")
	assert.Equal(t, "closed", list.Keys[1].State)
	assert.Nil(t, list.Keys[1].NextProbe)

	getJSON(t, base+"?key=b:4317", http.StatusOK, &list)
	require.Len(t, list.Keys, 1)
	getJSON(t, base+"?key=zzz", http.StatusNotFound, nil)

	var snap KeySnapshot
	postJSON(t, http.MethodPost, base, `{"key":"b:4317","manual":"forced_open"}`, http.StatusOK, &snap)
	assert.Equal(t, "open", snap.State)
	assert.Equal(t, "forced_open", snap.Manual)
	assert.Equal(t, StateOpen, e.Breaker("b:4317").State())
	postJSON(t, http.MethodPut, base, `{"key":"b:4317","manual":"none"}`, http.StatusOK, &snap)
	assert.Equal(t, StateClosed, e.Breaker("b:4317").State())

	postJSON(t, http.MethodPost, base, `{"key":"b:4317","manual":"sideways"}`, http.StatusBadRequest, nil)
	postJSON(t, http.MethodPost, base, `{"manual":"disabled"}`, http.StatusBadRequest, nil)
	postJSON(t, http.MethodPost, base, `not json`, http.StatusBadRequest, nil)
	postJSON(t, http.MethodDelete, base, ``, http.StatusMethodNotAllowed, nil)
}

func getJSON(t *testing.T, url string, code int, into any) {
	t.Helper()
	resp, err := http.Get(url) //nolint:noctx // test against loopback
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, code, resp.StatusCode)
	if into != nil {
		require.NoError(t, json.NewDecoder(resp.Body).Decode(into))
	}
}

func postJSON(t *testing.T, method, url, body string, code int, into any) {
	t.Helper()
	request(t, method, url, "application/json", "", body, code, into)
}

// request sends one request with the given Content-Type and bearer token
// (none when empty) and checks the status code.
func request(t *testing.T, method, url, contentType, token, body string, code int, into any) {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), method, url, bytes.NewBufferString(body))
	require.NoError(t, err)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, code, resp.StatusCode)
	if into != nil {
		require.NoError(t, json.NewDecoder(resp.Body).Decode(into))
	}
}

func TestHTTPEndpointBadAddress(t *testing.T) {
	cfg := createDefaultConfig()
	srv := confighttp.NewDefaultServerConfig()
	srv.NetAddr.Endpoint = "127.0.0.1:99999"
	cfg.HTTP = configoptional.Some(srv)
	e, _ := newTestExtension(t, cfg, nil)
	err := e.Start(context.Background(), componenttest.NewNopHost())
	require.Error(t, err)
	require.NoError(t, e.Shutdown(context.Background()))
	assert.True(t, strings.Contains(err.Error(), "99999"))
}

func TestStatusForKeysOpenedBeforeStart(t *testing.T) {
	e, _ := newTestExtension(t, createDefaultConfig(), nil)
	for range 5 {
		call(t, e.Breaker("early"), errBackend)
	}
	host := &statusHost{}
	require.NoError(t, e.Start(context.Background(), host))
	defer func() { require.NoError(t, e.Shutdown(context.Background())) }()
	ev := host.last()
	require.NotNil(t, ev)
	assert.Equal(t, componentstatus.StatusRecoverableError, ev.Status())
}

// startHTTPExtension starts the extension on a fake clock, stopped when the
// test ends, and returns the URL of its /breakers.
func startHTTPExtension(t *testing.T, cfg *Config, host component.Host) (*breakerExtension, *clocktest.Fake, string) {
	t.Helper()
	e, clk := newTestExtension(t, cfg, nil)
	require.NoError(t, e.Start(context.Background(), host))
	t.Cleanup(func() { require.NoError(t, e.Shutdown(context.Background())) })
	return e, clk, "http://" + e.listenAddr() + breakersPath
}

// TestHTTPEndpointRefusesUnsafeChanges: changes need Content-Type
// application/json (a browser's cross-site simple request cannot send it),
// name a key in use or matching a configured glob (a POST cannot make up
// keys: 2,000 POSTs of new keys leave none behind), and at most
// max_manual_keys keys carry a runtime manual state. GET changes nothing.
func TestHTTPEndpointRefusesUnsafeChanges(t *testing.T) {
	cfg := createDefaultConfig()
	cfg.Keys = map[string]string{"backend-*": "default"}
	cfg.MaxManualKeys = 2
	srv := confighttp.NewDefaultServerConfig()
	srv.NetAddr.Endpoint = "127.0.0.1:0"
	cfg.HTTP = configoptional.Some(srv)
	e, _, base := startHTTPExtension(t, cfg, componenttest.NewNopHost())
	call(t, e.Breaker("a:4317"), nil)

	body := `{"key":"a:4317","manual":"forced_open"}`
	for _, ct := range []string{"", "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"} {
		request(t, http.MethodPost, base, ct, "", body, http.StatusUnsupportedMediaType, nil)
		request(t, http.MethodPut, base, ct, "", body, http.StatusUnsupportedMediaType, nil)
	}
	assert.Equal(t, StateClosed, e.Breaker("a:4317").State(), "no change without application/json")
	request(t, http.MethodPost, base, "application/json; charset=utf-8", "", body, http.StatusOK, nil)
	assert.Equal(t, StateOpen, e.Breaker("a:4317").State())

	for i := range 2000 {
		postJSON(t, http.MethodPost, base, fmt.Sprintf(`{"key":"made-up-%d:4317","manual":"forced_open"}`, i), http.StatusNotFound, nil)
	}
	getJSON(t, base+"?key=made-up-1:4317", http.StatusNotFound, nil)
	assert.Len(t, e.Snapshot(), 1, "neither POST nor GET created a key")

	// A key matching a configured glob may be set before it is used, up to
	// max_manual_keys runtime overrides.
	postJSON(t, http.MethodPost, base, `{"key":"backend-1:4317","manual":"disabled"}`, http.StatusOK, nil)
	var msg map[string]string
	postJSON(t, http.MethodPost, base, `{"key":"backend-2:4317","manual":"forced_open"}`, http.StatusConflict, &msg)
	assert.Contains(t, msg["error"], "max_manual_keys: 2")
	assert.Equal(t, StateClosed, e.Breaker("backend-2:4317").State())
	postJSON(t, http.MethodPost, base, `{"key":"a:4317","manual":"none"}`, http.StatusOK, nil)
	postJSON(t, http.MethodPost, base, `{"key":"backend-2:4317","manual":"forced_open"}`, http.StatusOK, nil)
	assert.Equal(t, StateOpen, e.Breaker("backend-2:4317").State())
	// The Go API is bounded the same way.
	e.SetManualState("backend-3:4317", ManualForcedOpen)
	assert.Equal(t, StateClosed, e.Breaker("backend-3:4317").State())
}

// TestHTTPEndpointBearerToken: the endpoint authenticates through the
// collector's auth extensions (confighttp's auth); with bearertokenauth
// every request, GET included, needs the token.
func TestHTTPEndpointBearerToken(t *testing.T) {
	authID := component.MustNewID("bearertokenauth")
	af := bearertokenauthextension.NewFactory()
	acfg := af.CreateDefaultConfig().(*bearertokenauthextension.Config)
	acfg.BearerToken = "s3cr3t-t0ken"
	auth, err := af.Create(context.Background(), extensiontest.NewNopSettings(af.Type()), acfg)
	require.NoError(t, err)
	host := &statusHost{exts: map[component.ID]component.Component{authID: auth}}
	require.NoError(t, auth.Start(context.Background(), host))
	t.Cleanup(func() { require.NoError(t, auth.Shutdown(context.Background())) })

	cfg := createDefaultConfig()
	srv := confighttp.NewDefaultServerConfig()
	srv.NetAddr.Endpoint = "127.0.0.1:0"
	srv.Auth = configoptional.Some(confighttp.AuthConfig{Config: configauth.Config{AuthenticatorID: authID}})
	cfg.HTTP = configoptional.Some(srv)
	e, _, base := startHTTPExtension(t, cfg, host)
	call(t, e.Breaker("a:4317"), nil)

	body := `{"key":"a:4317","manual":"forced_open"}`
	request(t, http.MethodGet, base, "", "", "", http.StatusUnauthorized, nil)
	request(t, http.MethodPost, base, "application/json", "", body, http.StatusUnauthorized, nil)
	request(t, http.MethodPost, base, "application/json", "wrong", body, http.StatusUnauthorized, nil)
	assert.Equal(t, StateClosed, e.Breaker("a:4317").State(), "no change without the token")

	var list listResponse
	request(t, http.MethodGet, base, "", "s3cr3t-t0ken", "", http.StatusOK, &list)
	require.Len(t, list.Keys, 1)
	request(t, http.MethodPost, base, "application/json", "s3cr3t-t0ken", body, http.StatusOK, nil)
	assert.Equal(t, StateOpen, e.Breaker("a:4317").State())
}
