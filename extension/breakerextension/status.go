// Copyright The otelcsp Authors
// SPDX-License-Identifier: Apache-2.0

package breakerextension // import "github.com/otelcsp/otelcsp/extension/breakerextension"

import (
	"bytes"
	_ "embed"
	"html/template"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// The status page: the endpoint's listing as one self-contained HTML page
// for operators (GET /, or GET /breakers from a browser). It reloads itself
// with a meta refresh, so it needs no script; it loads nothing from
// elsewhere, and its Content-Security-Policy forbids it to. html/template
// escapes every value, keys included (they come from config and from
// data, e.g. resolved endpoints).

//go:embed status.html
var statusHTML string

var statusTemplate = template.Must(template.New("status").Parse(statusHTML))

// statusRefresh is how often the page reloads itself.
const statusRefresh = 5 * time.Second

// statusCSP allows the page its inline style and nothing else: no script,
// font, image or frame from anywhere.
const statusCSP = "default-src 'none'; style-src 'unsafe-inline'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'"

type statusPage struct {
	AsOf, AsOfISO          string
	RefreshSeconds         int
	JSONPath               string
	Open, HalfOpen, Closed int
	Keys                   []statusRow
}

type statusRow struct {
	KeySnapshot
	Reason    string
	InState   string
	NextProbe string
	// Share is the key's share of the calls that finished within the
	// window of every key: the load each backend takes now, not since the
	// start.
	Share, SharePercent string
}

func newStatusPage(snaps []KeySnapshot, now time.Time) statusPage {
	p := statusPage{
		AsOf:           now.UTC().Format(time.DateTime + " UTC"),
		AsOfISO:        now.UTC().Format(time.RFC3339),
		RefreshSeconds: int(statusRefresh / time.Second),
		JSONPath:       breakersPath,
		Keys:           make([]statusRow, 0, len(snaps)),
	}
	var windowCalls int64
	for _, s := range snaps {
		windowCalls += s.WindowCalls
	}
	for _, s := range snaps {
		switch s.State {
		case StateOpen.String():
			p.Open++
		case StateHalfOpen.String():
			p.HalfOpen++
		default:
			p.Closed++
		}
		r := statusRow{KeySnapshot: s, Reason: s.LastReason, InState: roundDuration(now.Sub(s.StateSince)), Share: "–", SharePercent: "0"}
		switch {
		case s.Manual == ManualForcedOpen.String() || s.Manual == ManualDisabled.String():
			// The machine's reason is not why callers see this state.
			r.Reason = "manual:" + s.Manual
		case r.Reason == "":
			r.Reason = "–"
		}
		if s.NextProbe != nil && s.Machine == StateOpen.String() {
			r.NextProbe = roundDuration(s.NextProbe.Sub(now))
		}
		if windowCalls > 0 {
			pct := 100 * float64(s.WindowCalls) / float64(windowCalls)
			r.SharePercent = strconv.FormatFloat(pct, 'f', 1, 64)
			r.Share = r.SharePercent + " %"
		}
		p.Keys = append(p.Keys, r)
	}
	return p
}

// roundDuration shows a duration to the second (to the millisecond below
// one second), never negative.
func roundDuration(d time.Duration) string {
	switch {
	case d <= 0:
		return "0s"
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}

func renderStatus(w io.Writer, snaps []KeySnapshot, now time.Time) error {
	return statusTemplate.Execute(w, newStatusPage(snaps, now))
}

func (e *breakerExtension) handleStatus(w http.ResponseWriter, _ *http.Request) {
	var buf bytes.Buffer
	if err := renderStatus(&buf, e.Snapshot(), e.clk.Now()); err != nil {
		http.Error(w, "rendering the status page: "+err.Error(), http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", statusCSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	_, _ = w.Write(buf.Bytes())
}

// wantsHTML says whether a request prefers HTML to JSON: a browser's
// navigation (text/html listed, JSON not preferred). Clients that ask for
// nothing in particular (curl's */*) get JSON, the API.
func wantsHTML(r *http.Request) bool {
	var html, json float64 = -1, -1
	for _, part := range strings.Split(r.Header.Get("Accept"), ",") {
		mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		q := 1.0
		if v, ok := params["q"]; ok {
			if f, err := strconv.ParseFloat(v, 64); err == nil {
				q = f
			}
		}
		switch mt {
		case "text/html":
			html = max(html, q)
		case "application/json":
			json = max(json, q)
		}
	}
	return html > 0 && html > json
}
