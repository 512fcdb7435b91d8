package spanlogsconnector

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// verdictOf runs a rule's two steps the way the span loop does.
func verdictOf(r *rule, span ptrace.Span, service string) verdict {
	if !r.gate.admits(factsOf(span)) {
		return verdict{}
	}
	return r.match(span, service)
}

// TestRuleMatch pins what each rule type asks to emit for a span, and the
// parts of the records the verdict decides (severity, threshold).
func TestRuleMatch(t *testing.T) {
	compile := func(rc RuleConfig) *rule {
		t.Helper()
		cfg := createDefaultConfig()
		cfg.Rules = []RuleConfig{rc}
		c, err := compileConfig(cfg)
		require.NoError(t, err)
		return c.rules[0]
	}
	span := func(s spanSpec) ptrace.Span {
		td := traces("svc", s)
		return td.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0)
	}
	exc := []eventSpec{{name: "exception", excType: "E"}}
	slow := RuleConfig{Type: "slow", Threshold: time.Second, Thresholds: []ThresholdConfig{{Service: "db", Threshold: 100 * time.Millisecond}}}

	tests := []struct {
		name    string
		rule    RuleConfig
		span    spanSpec
		service string
		want    verdict
	}{
		{"errors: error span", RuleConfig{Type: "errors"}, spanSpec{status: ptrace.StatusCodeError}, "svc", verdict{emit: emitSpan, severity: &sevError}},
		{"errors: ok span", RuleConfig{Type: "errors"}, spanSpec{status: ptrace.StatusCodeOk}, "svc", verdict{}},
		{"errors: kind filter", RuleConfig{Type: "errors", SpanKinds: []string{"client"}}, spanSpec{status: ptrace.StatusCodeError, kind: ptrace.SpanKindServer}, "svc", verdict{}},
		{"errors: unknown kind is unspecified", RuleConfig{Type: "errors", SpanKinds: []string{"unspecified"}}, spanSpec{status: ptrace.StatusCodeError, kind: 42}, "svc", verdict{emit: emitSpan, severity: &sevError}},
		{"exceptions: events", RuleConfig{Type: "exceptions"}, spanSpec{events: exc}, "svc", verdict{emit: emitExceptions, severity: &sevError}},
		{"exceptions: no events", RuleConfig{Type: "exceptions"}, spanSpec{status: ptrace.StatusCodeError}, "svc", verdict{}},
		{"exceptions: name filter", RuleConfig{Type: "exceptions", SpanNames: []string{"GET *"}}, spanSpec{name: "POST /", events: exc}, "svc", verdict{}},
		{"slow: over the default", slow, spanSpec{dur: 1500 * time.Millisecond}, "svc", verdict{emit: emitSpan, severity: &sevWarn, threshold: time.Second}},
		{"slow: under the default", slow, spanSpec{dur: 500 * time.Millisecond}, "svc", verdict{}},
		{"slow: over a service's threshold", slow, spanSpec{dur: 500 * time.Millisecond}, "db", verdict{emit: emitSpan, severity: &sevWarn, threshold: 100 * time.Millisecond}},
		{"slow: under the smallest threshold", slow, spanSpec{dur: 50 * time.Millisecond}, "db", verdict{}},
		{"slow: end before start", slow, spanSpec{dur: -time.Hour}, "db", verdict{}},
		{"all: ok span", RuleConfig{Type: "all"}, spanSpec{status: ptrace.StatusCodeOk}, "svc", verdict{emit: emitSpan, severity: &sevInfo}},
		{"all: error span", RuleConfig{Type: "all"}, spanSpec{status: ptrace.StatusCodeError}, "svc", verdict{emit: emitSpan, severity: &sevError}},
		{"all: fixed severity", RuleConfig{Type: "all", Severity: "debug"}, spanSpec{status: ptrace.StatusCodeError}, "svc", verdict{emit: emitSpan, severity: &sevDebug}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := verdictOf(compile(tt.rule), span(tt.span), tt.service)
			assert.Equal(t, tt.want.emit, got.emit)
			assert.Equal(t, tt.want.threshold, got.threshold)
			if tt.want.severity == nil {
				assert.Nil(t, got.severity)
				return
			}
			require.NotNil(t, got.severity)
			assert.Equal(t, *tt.want.severity, *got.severity)
		})
	}
}

// TestJoinedGate: the joined gate of a resource's rules admits a span
// exactly when some rule's own gate does, so the span loop's early return
// never skips a rule that would have matched.
func TestJoinedGate(t *testing.T) {
	cfg := createDefaultConfig()
	cfg.Rules = []RuleConfig{
		{Type: "errors"}, {Type: "exceptions"},
		{Type: "slow", Threshold: time.Second, Thresholds: []ThresholdConfig{{Service: "db", Threshold: 100 * time.Millisecond}}},
		{Type: "all"},
	}
	c, err := compileConfig(cfg)
	require.NoError(t, err)
	spans := []spanSpec{
		{status: ptrace.StatusCodeOk, dur: time.Millisecond},
		{status: ptrace.StatusCodeError},
		{events: []eventSpec{{name: "log"}}},
		{dur: 150 * time.Millisecond},
		{dur: 2 * time.Second},
		{dur: -time.Hour},
	}
	// Every subset of the four rules, as the services filters could leave.
	for set := 0; set < 1<<len(c.rules); set++ {
		joined := gate{over: maxDuration}
		var rules []*rule
		for i, r := range c.rules {
			if set&(1<<i) != 0 {
				joined = joined.join(r.gate)
				rules = append(rules, r)
			}
		}
		for _, s := range spans {
			f := factsOf(traces("svc", s).ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0))
			someAdmits := false
			for _, r := range rules {
				someAdmits = someAdmits || r.gate.admits(f)
			}
			assert.Equal(t, someAdmits, joined.admits(f), "rules %04b, span %+v", set, s)
		}
	}
}
