package deploy

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
)

func TestSelectors(t *testing.T) {
	for _, tc := range []struct {
		expr string
		want []Selector
	}{
		{`up`, []Selector{{Metric: "up"}}},
		{`sum by (service_name, span_name) (rate(traces_span_metrics_calls_total{status_code="STATUS_CODE_ERROR", service_name=~"$service"}[$__rate_interval]))`,
			[]Selector{{Metric: "traces_span_metrics_calls_total", Labels: []string{"status_code", "service_name"}}}},
		{`histogram_quantile(0.99, sum by (le) (rate(traces_span_metrics_duration_milliseconds_bucket{job=~"${job:regex}"}[5m])))`,
			[]Selector{{Metric: "traces_span_metrics_duration_milliseconds_bucket", Labels: []string{"job"}}}},
		{`a / on (x) group_left (y) b offset 5m > bool 1e3`, []Selector{{Metric: "a"}, {Metric: "b"}}},
		{`max without (backend) (otelcol_fanout_load_imbalance) or vector(0)`, []Selector{{Metric: "otelcol_fanout_load_imbalance"}}},
		{`{__name__="otelcol_breaker_state", key="a{b}"}`, []Selector{{Metric: "otelcol_breaker_state", Labels: []string{"__name__", "key"}}}},
		{`count(x{a="by (z)"}) by (job)`, []Selector{{Metric: "x", Labels: []string{"a"}}}},
	} {
		got, err := Selectors(tc.expr)
		if err != nil {
			t.Errorf("%s: %v", tc.expr, err)
			continue
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("Selectors(%s) = %+v, want %+v", tc.expr, got, tc.want)
		}
	}
	for _, bad := range []string{`sum(rate(x[5m])`, `x{a="b}`, `x{a="b"`} {
		if _, err := Selectors(bad); err == nil {
			t.Errorf("Selectors(%s): no error", bad)
		}
	}
}

// TestDashboard: the dashboard is Grafana JSON whose every panel and query
// takes the Prometheus data source from the datasource variable, whose
// queries all parse and select a metric, and whose $variables are
// defined. (That the metrics exist is e2e/dashboard_test.go's part.)
func TestDashboard(t *testing.T) {
	path := filepath.Join(repoRoot, DashboardPath)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	type datasource struct {
		Type string `json:"type"`
		UID  string `json:"uid"`
	}
	type panel struct {
		ID         int         `json:"id"`
		Type       string      `json:"type"`
		Title      string      `json:"title"`
		Datasource *datasource `json:"datasource"`
		GridPos    *struct {
			H, W, X, Y int
		} `json:"gridPos"`
		Targets []struct {
			RefID      string      `json:"refId"`
			Expr       string      `json:"expr"`
			Datasource *datasource `json:"datasource"`
		} `json:"targets"`
	}
	var d struct {
		UID        string  `json:"uid"`
		Title      string  `json:"title"`
		Panels     []panel `json:"panels"`
		Templating struct {
			List []struct {
				Name  string `json:"name"`
				Type  string `json:"type"`
				Query any    `json:"query"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if d.UID == "" || d.Title == "" {
		t.Errorf("the dashboard needs a uid and a title")
	}
	vars := map[string]bool{}
	for _, v := range d.Templating.List {
		vars[v.Name] = true
		if v.Name == "datasource" && (v.Type != "datasource" || v.Query != "prometheus") {
			t.Errorf("variable datasource: type %q query %v, want a prometheus datasource variable", v.Type, v.Query)
		}
	}
	if !vars["datasource"] {
		t.Fatal("no datasource variable: the dashboard must not name a data source of its own")
	}
	ids := map[int]bool{}
	for _, p := range d.Panels {
		if ids[p.ID] {
			t.Errorf("panel %q: id %d used twice", p.Title, p.ID)
		}
		ids[p.ID] = true
		if p.GridPos == nil {
			t.Errorf("panel %q: no gridPos", p.Title)
		}
		if p.Type == "row" {
			continue
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q: no query", p.Title)
		}
		if p.Datasource == nil || p.Datasource.UID != "${datasource}" {
			t.Errorf("panel %q: datasource %+v, want uid ${datasource}", p.Title, p.Datasource)
		}
		for _, tg := range p.Targets {
			if tg.Datasource == nil || tg.Datasource.UID != "${datasource}" {
				t.Errorf("panel %q %s: datasource %+v, want uid ${datasource}", p.Title, tg.RefID, tg.Datasource)
			}
		}
	}
	queries, err := DashboardQueries(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range queries {
		names, err := MetricNames(q.Expr)
		if err != nil || len(names) == 0 {
			t.Errorf("%s: %q: metrics %v, %v", q.Where, q.Expr, names, err)
		}
		for _, m := range grafanaVar.FindAllStringSubmatch(q.Expr, -1) {
			if name := m[1] + m[2]; !strings.HasPrefix(name, "__") && !vars[name] {
				t.Errorf("%s: $%s is not a variable of the dashboard", q.Where, name)
			}
		}
	}
}

var grafanaVar = regexp.MustCompile(`\$(?:\{([A-Za-z_][A-Za-z0-9_]*)[^}]*\}|([A-Za-z_][A-Za-z0-9_]*))`)
