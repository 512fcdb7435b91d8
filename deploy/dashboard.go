// Package deploy holds what installs and watches otelcsp: Kubernetes
// manifests (k8s/), Helm values (helm/), OpenTelemetry Operator resources
// (operator/) and a Grafana dashboard (grafana/). Its tests check them
// against the Kubernetes API types, against each other and against the
// built binary; this file reads the dashboard's queries, for those tests
// and for the e2e test that checks every metric they ask for is exposed.
package deploy

import (
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strings"
	"unicode"
)

// DashboardPath is the dashboard, relative to the repository root.
const DashboardPath = "deploy/grafana/otelcsp.json"

// Query is one PromQL expression of the dashboard and where it is.
type Query struct {
	Where string // panel title and refId, or "variable <name>"
	Expr  string
}

// grafanaDashboard is the part of Grafana's dashboard model the queries
// live in.
type grafanaDashboard struct {
	Panels     []grafanaPanel `json:"panels"`
	Templating struct {
		List []struct {
			Name  string          `json:"name"`
			Type  string          `json:"type"`
			Query json.RawMessage `json:"query"`
		} `json:"list"`
	} `json:"templating"`
}

type grafanaPanel struct {
	Title   string `json:"title"`
	Targets []struct {
		RefID string `json:"refId"`
		Expr  string `json:"expr"`
	} `json:"targets"`
	Panels []grafanaPanel `json:"panels"` // a collapsed row's panels
}

// DashboardQueries reads every PromQL expression of a dashboard file: the
// panels' targets (rows included) and the query variables' queries.
func DashboardQueries(path string) ([]Query, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var d grafanaDashboard
	if err := json.Unmarshal(b, &d); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	var out []Query
	var walk func([]grafanaPanel)
	walk = func(panels []grafanaPanel) {
		for _, p := range panels {
			for _, tg := range p.Targets {
				if tg.Expr != "" {
					out = append(out, Query{Where: fmt.Sprintf("panel %q %s", p.Title, tg.RefID), Expr: tg.Expr})
				}
			}
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		// The query is a string, or an object with a "query" string
		// (Grafana's newer variable editor).
		var q string
		if err := json.Unmarshal(v.Query, &q); err != nil {
			var obj struct {
				Query string `json:"query"`
			}
			if err := json.Unmarshal(v.Query, &obj); err != nil {
				return nil, fmt.Errorf("%s: variable %s: query: %w", path, v.Name, err)
			}
			q = obj.Query
		}
		// label_values(selector, label) asks what group by (label)
		// (selector) would: the same metric and label must exist.
		if m := labelValues.FindStringSubmatch(q); m != nil {
			q = "group by (" + m[2] + ") (" + m[1] + ")"
		}
		out = append(out, Query{Where: "variable " + v.Name, Expr: q})
	}
	return out, nil
}

// labelValues is Grafana's Prometheus variable function
// label_values(<series selector>, <label>).
var labelValues = regexp.MustCompile(`^\s*label_values\((.*),\s*([A-Za-z_][A-Za-z0-9_]*)\s*\)\s*$`)

// promqlKeywords are identifiers of PromQL that are not metric names.
var promqlKeywords = map[string]bool{
	"and": true, "or": true, "unless": true, "bool": true, "offset": true,
	"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true,
	"inf": true, "nan": true, "start": true, "end": true,
}

// aggregations are PromQL's aggregation operators, which may be followed
// by a by/without clause before their parenthesis.
var aggregations = map[string]bool{
	"sum": true, "min": true, "max": true, "avg": true, "group": true, "stddev": true, "stdvar": true,
	"count": true, "count_values": true, "bottomk": true, "topk": true, "quantile": true, "limitk": true, "limit_ratio": true,
}

// labelListKeywords are followed by a parenthesised list of label names.
var labelListKeywords = map[string]bool{"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true}

// Selector is one metric a PromQL expression selects, and the label names
// its matchers and the grouping around it use.
type Selector struct {
	Metric string
	Labels []string
}

// MetricNames lists the metric names a PromQL expression selects (sorted,
// once each). Grafana variables ($var, ${var}, $__rate_interval) may
// appear anywhere a value does.
func MetricNames(expr string) ([]string, error) {
	sels, err := Selectors(expr)
	if err != nil {
		return nil, err
	}
	set := map[string]bool{}
	for _, s := range sels {
		set[s.Metric] = true
	}
	out := make([]string, 0, len(set))
	for n := range set {
		out = append(out, n)
	}
	sort.Strings(out)
	return out, nil
}

// Selectors lists the vector selectors of a PromQL expression: each metric
// name with the label names of its own matchers. It is a scanner, not a
// parser: it knows strings, label matchers, ranges, label lists after
// by/without/on/ignoring/group_left/group_right, function calls and
// numbers, which is what tells a metric name from the rest.
func Selectors(expr string) ([]Selector, error) {
	var out []Selector
	s := []rune(expr)
	i := 0
	skipSpace := func(j int) int {
		for j < len(s) && unicode.IsSpace(s[j]) {
			j++
		}
		return j
	}
	isIdentStart := func(r rune) bool { return r == '_' || r == ':' || unicode.IsLetter(r) }
	isIdent := func(r rune) bool { return isIdentStart(r) || unicode.IsDigit(r) }
	// closing finds the rune that closes the bracket at j, skipping strings.
	closing := func(j int, open, shut rune) (int, error) {
		depth := 0
		for ; j < len(s); j++ {
			switch s[j] {
			case '"', '\'', '`':
				q := s[j]
				for j++; j < len(s) && s[j] != q; j++ {
					if s[j] == '\\' && q != '`' {
						j++
					}
				}
			case open:
				depth++
			case shut:
				depth--
				if depth == 0 {
					return j, nil
				}
			}
		}
		return 0, fmt.Errorf("%q: unbalanced %c", expr, open)
	}
	// matcherLabels lists the label names of a {...} matcher list.
	matcherLabels := func(body string) []string {
		var names []string
		for _, m := range matcher.FindAllStringSubmatch(body, -1) {
			names = append(names, m[1])
		}
		return names
	}
	parens := 0
	for i < len(s) {
		r := s[i]
		switch {
		case unicode.IsSpace(r):
			i++
		case r == '(' || r == ')':
			if r == '(' {
				parens++
			} else if parens--; parens < 0 {
				return nil, fmt.Errorf("%q: unbalanced )", expr)
			}
			i++
		case r == '"' || r == '\'' || r == '`':
			j := i + 1
			for j < len(s) && s[j] != r {
				if s[j] == '\\' && r != '`' {
					j++
				}
				j++
			}
			if j >= len(s) {
				return nil, fmt.Errorf("%q: unterminated string", expr)
			}
			i = j + 1
		case r == '$':
			// A Grafana variable: $name, ${name}, ${name:format}.
			i++
			if i < len(s) && s[i] == '{' {
				for i < len(s) && s[i] != '}' {
					i++
				}
				i++
			} else {
				for i < len(s) && isIdent(s[i]) {
					i++
				}
			}
		case r == '{':
			// Matchers without a metric name before them: {__name__="x"}.
			end, err := closing(i, '{', '}')
			if err != nil {
				return nil, err
			}
			if m := nameMatcher.FindStringSubmatch(string(s[i+1 : end])); m != nil {
				out = append(out, Selector{Metric: m[1], Labels: matcherLabels(string(s[i+1 : end]))})
			}
			i = end + 1
		case r == '[':
			end, err := closing(i, '[', ']')
			if err != nil {
				return nil, err
			}
			i = end + 1
		case unicode.IsDigit(r) || (r == '.' && i+1 < len(s) && unicode.IsDigit(s[i+1])):
			// A number or a duration (5m, 1e3, 0x1f).
			for i < len(s) && (isIdent(s[i]) || s[i] == '.') {
				i++
			}
		case isIdentStart(r):
			j := i
			for j < len(s) && isIdent(s[j]) {
				j++
			}
			word := string(s[i:j])
			next := skipSpace(j)
			switch {
			case labelListKeywords[strings.ToLower(word)]:
				if next < len(s) && s[next] == '(' {
					end, err := closing(next, '(', ')')
					if err != nil {
						return nil, err
					}
					j = end + 1
				}
			case promqlKeywords[strings.ToLower(word)], aggregations[strings.ToLower(word)]:
			case next < len(s) && s[next] == '(':
				// A function or an aggregation; its arguments are scanned next.
			default:
				sel := Selector{Metric: word}
				if next < len(s) && s[next] == '{' {
					end, err := closing(next, '{', '}')
					if err != nil {
						return nil, err
					}
					sel.Labels = matcherLabels(string(s[next+1 : end]))
					j = end + 1
				}
				out = append(out, sel)
			}
			i = j
		default:
			i++
		}
	}
	if parens != 0 {
		return nil, fmt.Errorf("%q: unbalanced (", expr)
	}
	return out, nil
}

var (
	matcher     = regexp.MustCompile(`([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*"`)
	nameMatcher = regexp.MustCompile(`__name__\s*=\s*"([^"]+)"`)
)

// GroupingLabels lists the label names an expression groups or joins by
// (by, without, on, ignoring, group_left, group_right lists).
func GroupingLabels(expr string) []string {
	var out []string
	for _, m := range grouping.FindAllStringSubmatch(expr, -1) {
		for _, l := range strings.Split(m[2], ",") {
			if l = strings.TrimSpace(l); l != "" {
				out = append(out, l)
			}
		}
	}
	return out
}

var grouping = regexp.MustCompile(`\b(by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)`)
