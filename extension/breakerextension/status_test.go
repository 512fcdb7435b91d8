// Copyright The otelcsp Authors
// SPDX-License-Identifier: Apache-2.0

package breakerextension

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/confighttp"
	"go.opentelemetry.io/collector/config/configoptional"
	"golang.org/x/net/html"

	"github.com/otelcsp/otelcsp/internal/clock/clocktest"
	"github.com/otelcsp/otelcsp/internal/collectortest"
)

// hostileKey would run a script, end an attribute or open a tag if the page
// printed it raw; keys come from config and from data (resolved endpoints).
const hostileKey = `evil"><script>alert('x')</script>&amp;<b>`

// parseStatus reads the page's rows by data-key (as the DOM holds it, i.e.
// unescaped), failing on any element or attribute that loads or runs
// something, or that a key could have injected.
func parseStatus(t *testing.T, page string) map[string]collectortest.HTMLRow {
	t.Helper()
	collectortest.Walk(collectortest.ParseHTML(t, page), func(n *html.Node) {
		switch n.Data {
		case "script", "link", "img", "iframe", "object", "embed", "b":
			t.Errorf("the page has a <%s> element: nothing may load, run or be injected", n.Data)
		}
		for _, a := range n.Attr {
			if a.Key == "src" || strings.HasPrefix(a.Key, "on") {
				t.Errorf("<%s> has attribute %s=%q", n.Data, a.Key, a.Val)
			}
		}
	})
	return collectortest.RowsBy(t, page, "data-key")
}

// The columns of a row, in the template's order.
const (
	colKey = iota
	colState
	colReason
	colInState
	colNextProbe
	colShare
	colWindowCalls
	colWindowFailures
	colSuccess
	colFailure
	colIgnored
	colRejected
	colTrips
	colPolicy
)

func startStatusExtension(t *testing.T) (*breakerExtension, *clocktest.Fake, string) {
	t.Helper()
	cfg := createDefaultConfig()
	cfg.Jitter = 0
	srv := confighttp.NewDefaultServerConfig()
	srv.NetAddr.Endpoint = "127.0.0.1:0"
	cfg.HTTP = configoptional.Some(srv)
	e, clk, breakers := startHTTPExtension(t, cfg, componenttest.NewNopHost())
	return e, clk, strings.TrimSuffix(breakers, breakersPath)
}

// get fetches url with an Accept header and returns the response and body.
func get(t *testing.T, url, accept string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, url, http.NoBody)
	require.NoError(t, err)
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, string(body)
}

const browserAccept = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"

// TestStatusPage: every key with its state, reason, time in state, next
// probe, share of the load and counts; the hostile key escaped.
func TestStatusPage(t *testing.T) {
	e, clk, base := startStatusExtension(t)

	e.SetManualState(hostileKey, ManualForcedOpen)
	clk.Advance(90 * time.Second)
	for range 30 {
		call(t, e.Breaker("a:4317"), nil)
	}
	for range 10 {
		call(t, e.Breaker("b:4317"), nil)
	}
	for range 5 {
		call(t, e.Breaker("c:4317"), errBackend) // trips: consecutive_failures
	}
	_, err := e.Breaker(hostileKey).Allow()
	require.ErrorIs(t, err, ErrOpen)
	clk.Advance(250 * time.Millisecond)

	resp, page := get(t, base+"/", "")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "text/html; charset=utf-8", resp.Header.Get("Content-Type"))
	assert.Contains(t, resp.Header.Get("Content-Security-Policy"), "default-src 'none'")
	assert.NotContains(t, page, "<script>", "the key is escaped")
	assert.Contains(t, page, `<meta http-equiv="refresh" content="5">`)

	rows := parseStatus(t, page)
	require.Len(t, rows, 4)
	a, b, c, evil := rows["a:4317"], rows["b:4317"], rows["c:4317"], rows[hostileKey]
	assert.Equal(t, "closed", a.Attrs["data-state"])
	assert.Equal(t, "open", c.Attrs["data-state"])
	assert.Equal(t, "open", evil.Attrs["data-state"], "the hostile key round-trips through the DOM unchanged")
	assert.Equal(t, hostileKey, evil.Cells[colKey])
	assert.Equal(t, "open (forced_open, machine closed)", evil.Cells[colState])
	assert.Equal(t, "manual:forced_open", evil.Cells[colReason])
	assert.Equal(t, "1m30s", evil.Cells[colInState])
	assert.Equal(t, "1", evil.Cells[colRejected])

	assert.Equal(t, "consecutive_failures", c.Cells[colReason])
	assert.Equal(t, "250ms", c.Cells[colInState])
	assert.Equal(t, "750ms", c.Cells[colNextProbe], "open_duration 1s, no jitter")
	assert.Equal(t, "5", c.Cells[colFailure])
	assert.Equal(t, "1", c.Cells[colTrips])
	assert.Equal(t, "–", a.Cells[colReason])
	assert.Empty(t, a.Cells[colNextProbe])
	assert.Equal(t, "30", a.Cells[colSuccess])
	assert.Equal(t, "30", a.Cells[colWindowCalls])
	assert.Equal(t, "default", a.Cells[colPolicy])

	// Share of the calls in the window: 30, 10 and 5 of 45.
	assert.Equal(t, "66.7 %", a.Cells[colShare])
	assert.Equal(t, "22.2 %", b.Cells[colShare])
	assert.Equal(t, "11.1 %", c.Cells[colShare])
	assert.Equal(t, "0.0 %", evil.Cells[colShare], "no call reached it")
	assert.Contains(t, page, `<span id="open-count">2</span> open, 0 half-open, 2 closed (4 keys`)
}

func TestStatusPageWithoutKeys(t *testing.T) {
	_, _, base := startStatusExtension(t)
	_, page := get(t, base+"/", "")
	assert.Contains(t, page, `id="no-keys"`)
	assert.Empty(t, parseStatus(t, page))
}

// TestStatusPageNegotiation: a browser asking for /breakers gets the page;
// API clients (curl's */*, JSON, no Accept) get the JSON as before.
func TestStatusPageNegotiation(t *testing.T) {
	e, _, base := startStatusExtension(t)
	call(t, e.Breaker("a:4317"), nil)

	resp, body := get(t, base+breakersPath, browserAccept)
	assert.Equal(t, "text/html; charset=utf-8", resp.Header.Get("Content-Type"))
	assert.Equal(t, "Accept", resp.Header.Get("Vary"))
	assert.Contains(t, parseStatus(t, body), "a:4317")

	for _, accept := range []string{"", "*/*", "application/json", "application/json, text/html;q=0.5", "text/html;q=0"} {
		resp, body := get(t, base+breakersPath, accept)
		assert.Equal(t, "application/json", resp.Header.Get("Content-Type"), "Accept %q", accept)
		var list listResponse
		require.NoError(t, json.Unmarshal([]byte(body), &list), "Accept %q", accept)
		require.Len(t, list.Keys, 1)
	}
	// A key lookup is an API call, whoever asks.
	resp, _ = get(t, base+breakersPath+"?key=a:4317", browserAccept)
	assert.Equal(t, "application/json", resp.Header.Get("Content-Type"))
	// Only the root is the page.
	resp, _ = get(t, base+"/other", browserAccept)
	assert.Equal(t, http.StatusNotFound, resp.StatusCode)
}

func TestWantsHTML(t *testing.T) {
	for accept, want := range map[string]bool{
		"":                                  false,
		"*/*":                               false,
		browserAccept:                       true,
		"text/html":                         true,
		"text/html;q=0":                     false,
		"application/json":                  false,
		"application/json;q=0.9, text/html": true,
		"text/html;q=0.5, application/json": false,
		"text/html;q=bogus":                 true,
		"garbage;;, text/html":              true,
		"application/json, text/html;q=1.0": false,
	} {
		r, err := http.NewRequestWithContext(context.Background(), http.MethodGet, "/", http.NoBody)
		require.NoError(t, err)
		r.Header.Set("Accept", accept)
		assert.Equal(t, want, wantsHTML(r), "Accept %q", accept)
	}
}
