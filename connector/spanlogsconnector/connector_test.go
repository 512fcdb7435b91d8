package spanlogsconnector

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/connector/connectortest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

const javaStack = `java.lang.IllegalStateException: card 4242 declined
	at com.shop.Payments.charge(Payments.java:42)
	at com.shop.Checkout.pay(Checkout.java:17)`

// goldenInput covers every rule: three resources (one without service.name),
// error and OK spans, a slow client span, exception events and a non-exception
// event, sampled flags.
func goldenInput() ptrace.Traces {
	td := ptrace.NewTraces()
	g := &idGen{}
	addSpans(td, g, "checkout",
		spanSpec{name: "GET /health", kind: ptrace.SpanKindServer, dur: time.Millisecond, attrs: map[string]any{"http.route": "/health"}},
		spanSpec{
			name: "POST /pay", kind: ptrace.SpanKindServer, status: ptrace.StatusCodeError, msg: "card declined",
			dur: 1500 * time.Millisecond, flags: 1,
			attrs:  map[string]any{"http.route": "/pay", "http.response.status_code": 500, "user.id": "u-1"},
			events: []eventSpec{{name: "exception", excType: "java.lang.IllegalStateException", msg: "card 4242 declined", stack: javaStack, offset: time.Second}},
		},
		spanSpec{name: "SELECT orders", kind: ptrace.SpanKindClient, status: ptrace.StatusCodeOk, dur: 750 * time.Millisecond, attrs: map[string]any{"db.system.name": "postgresql"}},
	)
	addSpans(td, g, "frontend",
		spanSpec{name: "GET /", kind: ptrace.SpanKindServer, status: ptrace.StatusCodeOk, dur: 2200 * time.Millisecond, flags: 1},
		spanSpec{
			name: "render", kind: ptrace.SpanKindInternal, status: ptrace.StatusCodeError, dur: 5 * time.Millisecond,
			events: []eventSpec{
				{name: "log", offset: time.Millisecond},
				{name: "exception", excType: "TypeError", msg: "x is undefined", offset: 2 * time.Millisecond},
			},
		},
	)
	addSpans(td, g, "", spanSpec{name: "tick", kind: ptrace.SpanKindInternal, dur: 10 * time.Millisecond})
	return td
}

func TestGoldenRules(t *testing.T) {
	tests := []struct {
		name  string
		rules []RuleConfig
	}{
		{name: "default"},
		{name: "errors", rules: []RuleConfig{{Type: "errors"}}},
		{name: "exceptions", rules: []RuleConfig{{Type: "exceptions"}}},
		{name: "slow", rules: []RuleConfig{{
			Type: "slow", Threshold: time.Second,
			Thresholds: []ThresholdConfig{{Service: "checkout", SpanName: "SELECT *", Threshold: 500 * time.Millisecond}},
		}}},
		{name: "all", rules: []RuleConfig{{Type: "all", RatePerFingerprint: ptr(0.0)}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := createDefaultConfig()
			if tt.rules != nil {
				cfg.Rules = tt.rules
			}
			h := newHarness(t, cfg)
			h.consume(t, goldenInput())
			require.Len(t, h.sink.AllLogs(), 1)
			got := marshalPretty(t, h.sink.AllLogs()[0])
			path := filepath.Join("testdata", "golden", tt.name+".json")
			if *update {
				require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
				require.NoError(t, os.WriteFile(path, got, 0o600))
			}
			want, err := os.ReadFile(path)
			require.NoError(t, err, "run with -update to create the golden file")
			assert.Equal(t, string(want), string(got))
		})
	}
}

func marshalPretty(t *testing.T, l plog.Logs) []byte {
	raw, err := (&plog.JSONMarshaler{}).MarshalLogs(l)
	require.NoError(t, err)
	var buf bytes.Buffer
	require.NoError(t, json.Indent(&buf, raw, "", "  "))
	buf.WriteByte('\n')
	return buf.Bytes()
}

// TestRecordShape checks the fields golden files make easy to overlook:
// correlation IDs, flags, timestamps, event name, grouping.
func TestRecordShape(t *testing.T) {
	cfg := createDefaultConfig()
	cfg.Rules = []RuleConfig{{Type: "errors"}, {Type: "exceptions"}}
	h := newHarness(t, cfg)
	in := goldenInput()
	h.consume(t, in)
	require.Len(t, h.sink.AllLogs(), 1)
	out := h.sink.AllLogs()[0]

	// Only resources and scopes that produced records appear, in input order,
	// with the resource and scope copied.
	require.Equal(t, 2, out.ResourceLogs().Len())
	for i, svc := range []string{"checkout", "frontend"} {
		rl := out.ResourceLogs().At(i)
		v, _ := rl.Resource().Attributes().Get("service.name")
		assert.Equal(t, svc, v.Str())
		assert.Equal(t, in.ResourceSpans().At(i).Resource().Attributes().AsRaw(), rl.Resource().Attributes().AsRaw())
		require.Equal(t, 1, rl.ScopeLogs().Len())
		assert.Equal(t, "test-scope", rl.ScopeLogs().At(0).Scope().Name())
		assert.Equal(t, "1.0.0", rl.ScopeLogs().At(0).Scope().Version())
	}

	pay := in.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(1)
	recs := h.records()
	require.Len(t, recs, 4) // pay error, pay exception, render error, render exception
	errRec, excRec := recs[0], recs[1]
	for _, r := range []plog.LogRecord{errRec, excRec} {
		assert.Equal(t, pay.TraceID(), r.TraceID())
		assert.Equal(t, pay.SpanID(), r.SpanID())
		assert.Equal(t, plog.LogRecordFlags(1), r.Flags())
		assert.Equal(t, plog.SeverityNumberError, r.SeverityNumber())
		assert.Equal(t, "ERROR", r.SeverityText())
		assert.Equal(t, h.clock.Now().UnixNano(), int64(r.ObservedTimestamp()))
	}
	assert.Equal(t, pay.EndTimestamp(), errRec.Timestamp())
	assert.Empty(t, errRec.EventName())
	assert.Equal(t, "exception", excRec.EventName())
	assert.Equal(t, pay.Events().At(0).Timestamp(), excRec.Timestamp())
	assert.Equal(t, map[string]any{
		"exception.type":            "java.lang.IllegalStateException",
		"exception.message":         "card 4242 declined",
		"exception.stacktrace":      javaStack,
		"http.route":                "/pay",
		"http.response.status_code": int64(500),
		"user.id":                   "u-1",
	}, excRec.Attributes().AsRaw())
	assert.Equal(t, "checkout POST /pay failed after 1.5s: card declined", errRec.Body().Str())
	assert.Equal(t, "checkout POST /pay: java.lang.IllegalStateException: card 4242 declined", excRec.Body().Str())
	// render has no status message: the trailing separator is trimmed.
	assert.Equal(t, "frontend render failed after 5ms", recs[2].Body().Str())
}

func TestNothingMatchesSendsNothing(t *testing.T) {
	h := newHarness(t, createDefaultConfig())
	h.consume(t, traces("svc", spanSpec{name: "ok", status: ptrace.StatusCodeOk, dur: time.Second}))
	assert.Empty(t, h.sink.AllLogs())
	assert.Zero(t, h.counter(t, "otelcol_spanlogs_records_emitted", ""))
}

func TestFilters(t *testing.T) {
	g := &idGen{}
	td := ptrace.NewTraces()
	addSpans(td, g, "checkout",
		spanSpec{name: "GET /api/users/42", kind: ptrace.SpanKindServer, status: ptrace.StatusCodeError},
		spanSpec{name: "SELECT users", kind: ptrace.SpanKindClient, status: ptrace.StatusCodeError},
		spanSpec{name: "publish", kind: ptrace.SpanKindProducer, status: ptrace.StatusCodeError},
	)
	addSpans(td, g, "cart-v2", spanSpec{name: "GET /api/cart", kind: ptrace.SpanKindServer, status: ptrace.StatusCodeError})
	addSpans(td, g, "", spanSpec{name: "orphan", kind: ptrace.SpanKindInternal, status: ptrace.StatusCodeError})

	tests := []struct {
		name string
		rule RuleConfig
		want []string // span names, in output order
	}{
		{"no filter", RuleConfig{}, []string{"GET /api/users/42", "SELECT users", "publish", "GET /api/cart", "orphan"}},
		{"service exact", RuleConfig{Services: []string{"checkout"}}, []string{"GET /api/users/42", "SELECT users", "publish"}},
		{"service glob", RuleConfig{Services: []string{"cart-*"}}, []string{"GET /api/cart"}},
		{"service list", RuleConfig{Services: []string{"nope", "cart-v?"}}, []string{"GET /api/cart"}},
		{"unknown service", RuleConfig{Services: []string{"unknown_service"}}, []string{"orphan"}},
		{"span name star crosses slashes", RuleConfig{SpanNames: []string{"GET /api/*"}}, []string{"GET /api/users/42", "GET /api/cart"}},
		{"span name infix", RuleConfig{SpanNames: []string{"*users*"}}, []string{"GET /api/users/42", "SELECT users"}},
		{"span name general glob", RuleConfig{SpanNames: []string{"GET /api/*/4?"}}, []string{"GET /api/users/42"}},
		{"kind", RuleConfig{SpanKinds: []string{"client", "PRODUCER"}}, []string{"SELECT users", "publish"}},
		// "*er" matches the server, producer and consumer kinds.
		{"kind glob", RuleConfig{SpanKinds: []string{"*er"}}, []string{"GET /api/users/42", "publish", "GET /api/cart"}},
		{"all filters", RuleConfig{Services: []string{"check*"}, SpanNames: []string{"*"}, SpanKinds: []string{"server"}}, []string{"GET /api/users/42"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.rule.Type = "errors"
			cfg := createDefaultConfig()
			cfg.Rules = []RuleConfig{tt.rule}
			h := newHarness(t, cfg)
			h.consume(t, td)
			var got []string
			for _, r := range h.records() {
				got = append(got, spanNameOf(td, r))
			}
			assert.Equal(t, tt.want, got)
		})
	}
}

// spanNameOf finds the input span a record came from by span ID.
func spanNameOf(td ptrace.Traces, r plog.LogRecord) string {
	for i := 0; i < td.ResourceSpans().Len(); i++ {
		sss := td.ResourceSpans().At(i).ScopeSpans()
		for j := 0; j < sss.Len(); j++ {
			for k := 0; k < sss.At(j).Spans().Len(); k++ {
				if s := sss.At(j).Spans().At(k); s.SpanID() == r.SpanID() {
					return s.Name()
				}
			}
		}
	}
	return ""
}

func TestSlowThresholds(t *testing.T) {
	rule := RuleConfig{
		Type: "slow", Threshold: time.Second,
		Thresholds: []ThresholdConfig{
			{Service: "db-*", SpanName: "SELECT *", Threshold: 100 * time.Millisecond},
			{Service: "db-*", Threshold: 300 * time.Millisecond},
			{SpanName: "batch *", Threshold: time.Minute},
		},
	}
	tests := []struct {
		service, span string
		dur           time.Duration
		slow          bool
	}{
		{"api", "GET /", 999 * time.Millisecond, false},
		{"api", "GET /", time.Second, false}, // longer than, not equal
		{"api", "GET /", 1001 * time.Millisecond, true},
		{"db-main", "SELECT x", 150 * time.Millisecond, true},
		{"db-main", "UPDATE x", 150 * time.Millisecond, false},
		{"db-main", "UPDATE x", 350 * time.Millisecond, true},
		{"api", "batch nightly", 30 * time.Second, false},
		{"api", "batch nightly", 61 * time.Second, true},
	}
	for _, tt := range tests {
		cfg := createDefaultConfig()
		cfg.Rules = []RuleConfig{rule}
		h := newHarness(t, cfg)
		h.consume(t, traces(tt.service, spanSpec{name: tt.span, status: ptrace.StatusCodeOk, dur: tt.dur}))
		recs := h.records()
		if !tt.slow {
			assert.Empty(t, recs, "%s %s %v", tt.service, tt.span, tt.dur)
			continue
		}
		require.Len(t, recs, 1, "%s %s %v", tt.service, tt.span, tt.dur)
		assert.Equal(t, plog.SeverityNumberWarn, recs[0].SeverityNumber())
		assert.Equal(t, "WARN", recs[0].SeverityText())
	}
}

func TestAttributesIncludeExclude(t *testing.T) {
	attrs := map[string]any{"http.route": "/x", "http.method": "GET", "user.id": "u", "db.statement": "SELECT 1"}
	tests := []struct {
		name   string
		global AttributesConfig
		rule   *AttributesConfig
		want   []string
	}{
		{"default all", AttributesConfig{}, nil, []string{"db.statement", "http.method", "http.route", "user.id"}},
		{"include glob", AttributesConfig{Include: []string{"http.*"}}, nil, []string{"http.method", "http.route"}},
		{"exclude", AttributesConfig{Exclude: []string{"user.id", "db.*"}}, nil, []string{"http.method", "http.route"}},
		{"include then exclude", AttributesConfig{Include: []string{"http.*"}, Exclude: []string{"*.method"}}, nil, []string{"http.route"}},
		{"exclude everything", AttributesConfig{Exclude: []string{"*"}}, nil, nil},
		{"rule overrides global", AttributesConfig{Exclude: []string{"*"}}, &AttributesConfig{Include: []string{"user.id"}}, []string{"user.id"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := createDefaultConfig()
			cfg.Attributes = tt.global
			cfg.Rules = []RuleConfig{{Type: "errors", Attributes: tt.rule}, {Type: "exceptions", Attributes: tt.rule}}
			h := newHarness(t, cfg)
			s := excSpan("op", "E", "")
			s.attrs = attrs
			h.consume(t, traces("svc", s))
			recs := h.records()
			require.Len(t, recs, 2)
			assert.ElementsMatch(t, tt.want, keys(recs[0]))
			// Exception records always keep the event's exception.* attributes.
			assert.ElementsMatch(t, append([]string{"exception.type", "exception.message"}, tt.want...), keys(recs[1]))
		})
	}
}

func keys(r plog.LogRecord) []string {
	var out []string
	for k := range r.Attributes().All() {
		out = append(out, k)
	}
	return out
}

func TestBodyTemplates(t *testing.T) {
	s := spanSpec{
		name: "GET /items", kind: ptrace.SpanKindClient, status: ptrace.StatusCodeError, msg: "timeout",
		dur: 1234567 * time.Microsecond, attrs: map[string]any{"http.response.status_code": 504, "peer": "db", "ratio": 0.5, "ok": false},
	}
	tests := []struct {
		tmpl, want string
	}{
		{"{service} {span.name}", "shop GET /items"},
		{"{span.kind} {status.code} {status.message}", "client ERROR timeout"},
		{"{duration} = {duration_ms}ms", "1.235s = 1234.567ms"},
		{"{trace_id}/{span_id}", "aa000000000000000000000000000001/bb00000000000001"},
		{"rule={rule}", "rule=errs"},
		{"{attr:http.response.status_code} {attr:peer} {attr:ratio} {attr:ok} [{attr:missing}]", "504 db 0.5 false []"},
		{"env={resource:deployment.environment.name}", "env=test"},
		{"{{literal}} braces }}", "{literal} braces }"},
		{"no placeholders", "no placeholders"},
		{"trailing: {exception.type}", "trailing"},
		{"", "shop GET /items failed after 1.235s: timeout"}, // default
	}
	for _, tt := range tests {
		t.Run(tt.tmpl, func(t *testing.T) {
			cfg := createDefaultConfig()
			cfg.Rules = []RuleConfig{{Name: "errs", Type: "errors", Body: tt.tmpl}}
			h := newHarness(t, cfg)
			h.consume(t, traces("shop", s))
			assert.Equal(t, []string{tt.want}, h.bodies())
		})
	}
}

func TestBodyDurations(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0:                        "0ns",
		850 * time.Nanosecond:    "850ns",
		1500 * time.Nanosecond:   "1.5µs",
		12500 * time.Microsecond: "12.5ms",
		2 * time.Second:          "2s",
		90 * time.Minute:         "5400s",
	} {
		assert.Equal(t, want, string(appendDuration(nil, d)))
	}
}

func TestSeverityMapping(t *testing.T) {
	spans := []spanSpec{
		{name: "err", status: ptrace.StatusCodeError, dur: 2 * time.Second},
		{name: "ok", status: ptrace.StatusCodeOk, dur: 2 * time.Second},
		{name: "unset", status: ptrace.StatusCodeUnset, dur: 2 * time.Second},
	}
	type sev struct {
		num  plog.SeverityNumber
		text string
	}
	tests := []struct {
		name string
		rule RuleConfig
		want []sev
	}{
		{"errors", RuleConfig{Type: "errors"}, []sev{{plog.SeverityNumberError, "ERROR"}}},
		{"slow", RuleConfig{Type: "slow", Threshold: time.Second}, []sev{{plog.SeverityNumberWarn, "WARN"}, {plog.SeverityNumberWarn, "WARN"}, {plog.SeverityNumberWarn, "WARN"}}},
		{"all by status", RuleConfig{Type: "all"}, []sev{{plog.SeverityNumberError, "ERROR"}, {plog.SeverityNumberInfo, "INFO"}, {plog.SeverityNumberInfo, "INFO"}}},
		{"all fixed", RuleConfig{Type: "all", Severity: "debug"}, []sev{{plog.SeverityNumberDebug, "DEBUG"}, {plog.SeverityNumberDebug, "DEBUG"}, {plog.SeverityNumberDebug, "DEBUG"}}},
		{"errors as fatal", RuleConfig{Type: "errors", Severity: "FATAL"}, []sev{{plog.SeverityNumberFatal, "FATAL"}}},
		{"slow as info", RuleConfig{Type: "slow", Threshold: time.Second, Severity: "Info", SpanNames: []string{"ok"}}, []sev{{plog.SeverityNumberInfo, "INFO"}}},
		{"exceptions", RuleConfig{Type: "exceptions"}, []sev{{plog.SeverityNumberError, "ERROR"}}},
		{"exceptions as warning", RuleConfig{Type: "exceptions", Severity: "WARNING"}, []sev{{plog.SeverityNumberWarn, "WARN"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := createDefaultConfig()
			cfg.Rules = []RuleConfig{tt.rule}
			h := newHarness(t, cfg)
			in := append([]spanSpec(nil), spans...)
			in[0].events = []eventSpec{{name: "exception", excType: "E"}}
			h.consume(t, traces("svc", in...))
			var got []sev
			for _, r := range h.records() {
				got = append(got, sev{r.SeverityNumber(), r.SeverityText()})
			}
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestRateLimitAndDedup(t *testing.T) {
	cfg := createDefaultConfig()
	cfg.RatePerFingerprint = 1
	cfg.Burst = 2
	h := newHarness(t, cfg)

	// Five identical errors at one instant: the burst lets two through.
	for i := 0; i < 5; i++ {
		h.consume(t, traces("svc", errSpan("op")))
	}
	require.Len(t, h.records(), 2)
	assert.EqualValues(t, 2, h.counter(t, "otelcol_spanlogs_records_emitted", "errors"))
	assert.EqualValues(t, 3, h.counter(t, "otelcol_spanlogs_records_suppressed", "errors"))
	for _, r := range h.records() {
		_, has := r.Attributes().Get(attrSuppressedCount)
		assert.False(t, has)
	}

	// Another span name is another fingerprint with its own bucket.
	h.consume(t, traces("svc", errSpan("other")))
	require.Len(t, h.records(), 3)

	// Half a second refills half a token: still suppressed.
	h.clock.Advance(500 * time.Millisecond)
	h.consume(t, traces("svc", errSpan("op")))
	require.Len(t, h.records(), 3)

	// A full token: the next record carries the four suppressed so far.
	h.clock.Advance(500 * time.Millisecond)
	h.consume(t, traces("svc", errSpan("op")))
	recs := h.records()
	require.Len(t, recs, 4)
	v, ok := recs[3].Attributes().Get(attrSuppressedCount)
	require.True(t, ok)
	assert.EqualValues(t, 4, v.Int())
	assert.EqualValues(t, 4, h.counter(t, "otelcol_spanlogs_records_suppressed", "errors"))

	// The count was handed over: the next emitted one starts from zero.
	h.clock.Advance(time.Second)
	h.consume(t, traces("svc", errSpan("op")))
	recs = h.records()
	require.Len(t, recs, 5)
	_, ok = recs[4].Attributes().Get(attrSuppressedCount)
	assert.False(t, ok)

	// Tokens never exceed the burst, however long the pause.
	h.clock.Advance(time.Hour)
	for i := 0; i < 5; i++ {
		h.consume(t, traces("svc", errSpan("op")))
	}
	assert.Len(t, h.records(), 7)
}

func TestExceptionFingerprints(t *testing.T) {
	cfg := createDefaultConfig()
	cfg.Rules = []RuleConfig{{Type: "exceptions"}}
	cfg.Burst = 1
	h := newHarness(t, cfg)

	stackAt := func(line, addr string) string {
		return "java.lang.IllegalStateException: order " + line + " failed\n\tat a.B.c(B.java:" + line + ")\n\tat 0x" + addr + " main\n"
	}
	send := func(svc, op, typ, stack string) {
		h.consume(t, traces(svc, excSpan(op, typ, stack)))
	}
	send("svc", "op", "java.lang.IllegalStateException", stackAt("10", "c0ffee"))
	// Same code path: other line numbers, addresses, message and span name.
	send("svc", "op2", "java.lang.IllegalStateException", stackAt("99", "deadbeef"))
	require.Len(t, h.records(), 1)
	// Another exception type, another service, another code path: new fingerprints.
	send("svc", "op", "java.lang.NullPointerException", stackAt("10", "c0ffee"))
	send("other", "op", "java.lang.IllegalStateException", stackAt("10", "c0ffee"))
	send("svc", "op", "java.lang.IllegalStateException", "java.lang.IllegalStateException: x\n\tat z.Y.w(Y.java:1)")
	require.Len(t, h.records(), 4)
	// Without a stack trace the span name tells exceptions apart.
	send("svc", "a", "E", "")
	send("svc", "b", "E", "")
	send("svc", "a", "E", "")
	require.Len(t, h.records(), 6)
	assert.EqualValues(t, 2, h.counter(t, "otelcol_spanlogs_records_suppressed", "exceptions"))
}

func TestRulesHaveSeparateFingerprints(t *testing.T) {
	cfg := createDefaultConfig()
	cfg.Burst = 1
	cfg.Rules = []RuleConfig{{Name: "a", Type: "errors"}, {Name: "b", Type: "errors"}}
	h := newHarness(t, cfg)
	h.consume(t, traces("svc", errSpan("op"), errSpan("op")))
	assert.Len(t, h.records(), 2)
	assert.EqualValues(t, 1, h.counter(t, "otelcol_spanlogs_records_emitted", "a"))
	assert.EqualValues(t, 1, h.counter(t, "otelcol_spanlogs_records_emitted", "b"))
	assert.EqualValues(t, 1, h.counter(t, "otelcol_spanlogs_records_suppressed", "a"))
	assert.EqualValues(t, 1, h.counter(t, "otelcol_spanlogs_records_suppressed", "b"))
}

func TestRateZeroDisablesLimit(t *testing.T) {
	cfg := createDefaultConfig()
	cfg.RatePerFingerprint = 0
	h := newHarness(t, cfg)
	for i := 0; i < 50; i++ {
		h.consume(t, traces("svc", errSpan("op")))
	}
	assert.Len(t, h.records(), 50)
	assert.Zero(t, h.c.limiter.len(), "no state is kept without a limit")
}

func TestBoundedFingerprints(t *testing.T) {
	cfg := createDefaultConfig()
	cfg.Rules = []RuleConfig{{Type: "exceptions"}}
	cfg.MaxFingerprints = 8
	cfg.Burst = 1
	h := newHarness(t, cfg)

	// fp i is kept warm; a flood of unique exceptions must evict the cold
	// ones first.
	warm := "warm\n\tat W.w"
	send := func(stack string) { h.consume(t, traces("svc", excSpan("op", "E", stack))) }
	send(warm)
	const unique = 2000
	for i := 0; i < unique; i++ {
		send("at F.f" + string(rune('a'+i%26)) + string(rune('a'+(i/26)%26)) + string(rune('a'+(i/676)%26)))
		if i%4 == 0 {
			send(warm) // touches warm: it stays most recently used
		}
		require.LessOrEqual(t, h.c.limiter.len(), 8)
	}
	assert.Equal(t, 8, h.c.limiter.len())
	assert.Equal(t, 8, cap(h.c.limiter.entries), "entry storage is recycled, never grown past max")
	assert.EqualValues(t, unique+1-8, h.counter(t, "otelcol_spanlogs_fingerprints_evicted", ""))
	// warm was never evicted, so it was suppressed every time after the first.
	assert.EqualValues(t, unique/4, h.counter(t, "otelcol_spanlogs_records_suppressed", "exceptions"))
}

func TestLRUOrder(t *testing.T) {
	l := newLimiter(3)
	for fp := uint64(1); fp <= 3; fp++ {
		assert.True(t, l.allow(fp, 1, 1, 0).allow)
	}
	assert.False(t, l.allow(1, 1, 1, 0).allow) // touch 1: LRU is now 2
	d := l.allow(4, 1, 1, 0)
	assert.True(t, d.allow)
	assert.True(t, d.evicted)
	_, has2 := l.index[2]
	_, has1 := l.index[1]
	assert.False(t, has2, "least recently used goes first")
	assert.True(t, has1)
}

func TestConcurrentConsume(t *testing.T) {
	cfg := createDefaultConfig()
	cfg.Rules = []RuleConfig{{Type: "errors"}, {Type: "exceptions"}, {Type: "all", RatePerFingerprint: ptr(0.0)}}
	cfg.MaxFingerprints = 16
	h := newHarness(t, cfg)
	const workers, rounds = 8, 50
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < rounds; i++ {
				td := traces("svc", errSpan("op"), excSpan("op", "E", "at X.y"+string(rune('a'+i%26))), spanSpec{name: "fine"})
				assert.NoError(t, h.c.ConsumeTraces(context.Background(), td))
			}
		}()
	}
	wg.Wait()
	total := int64(workers * rounds)
	assert.Equal(t, total*3, h.counter(t, "otelcol_spanlogs_records_emitted", "all"))
	// Every candidate record is either emitted or suppressed, none lost
	// (both input spans have status ERROR, one carries the exception).
	for r, want := range map[string]int64{"errors": 2 * total, "exceptions": total} {
		assert.Equal(t, want, h.counter(t, "otelcol_spanlogs_records_emitted", r)+h.counter(t, "otelcol_spanlogs_records_suppressed", r), r)
	}
	assert.Equal(t, int(total*3+h.counter(t, "otelcol_spanlogs_records_emitted", "errors")+h.counter(t, "otelcol_spanlogs_records_emitted", "exceptions")), len(h.records()))
}

// A logs pipeline that refuses must not fail the spans: the traces were
// delivered to the pipeline's other consumers, and an error would make the
// sender retry the batch elsewhere (traces twice, RED counted twice). The
// refusal is counted by rule in records_refused and logged at most once per
// 10 s of monotonic time, with what the quiet period added up to.
func TestRefusedRecordsCountedAndLoggedNotFailed(t *testing.T) {
	refused := errors.New("logs pipeline is full")
	comp, err := compileConfig(createDefaultConfig())
	require.NoError(t, err)
	tel := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tel.Shutdown(context.Background())) })
	core, logs := observer.New(zapcore.InfoLevel)
	set := tel.NewTelemetrySettings()
	set.Logger = zap.New(core)
	c, err := newSpanLogs(set, testID, comp, consumertest.NewErr(refused))
	require.NoError(t, err)
	clock := newFakeClock()
	c.now, c.mono = clock.Now, clock.Monotonic
	h := &harness{c: c, tel: tel, clock: clock}

	// Each batch: two error spans (two fingerprints), one with an
	// exception: three records, two by the errors rule, one by exceptions.
	batch := func(i int) ptrace.Traces {
		n := fmt.Sprint(i)
		return traces("svc", errSpan("op-a"+n), excSpan("op-b"+n, "E", "at x"))
	}
	for i := range 3 {
		require.NoError(t, c.ConsumeTraces(context.Background(), batch(i)))
		clock.Advance(time.Second)
	}
	assert.EqualValues(t, 6, h.counter(t, "otelcol_spanlogs_records_refused", "errors"))
	assert.EqualValues(t, 3, h.counter(t, "otelcol_spanlogs_records_refused", "exceptions"))
	assert.EqualValues(t, 9, h.counter(t, "otelcol_spanlogs_records_emitted", ""), "built, then refused")
	require.Equal(t, 1, logs.Len(), "one line for three refusals within 10s")
	first := logs.All()[0]
	assert.Equal(t, zapcore.ErrorLevel, first.Level)
	assert.Equal(t, map[string]any{
		"error": refused.Error(), "times": int64(1), "records": int64(3), "log_period": refusalLogEvery,
	}, first.ContextMap())

	// Ten seconds after the first line (a wall-clock step does not count).
	clock.StepWall(time.Hour)
	require.NoError(t, c.ConsumeTraces(context.Background(), batch(3)))
	assert.Equal(t, 1, logs.Len(), "a wall-clock step is no time for the log's pace")
	clock.Advance(7 * time.Second)
	require.NoError(t, c.ConsumeTraces(context.Background(), batch(4)))
	require.Equal(t, 2, logs.Len())
	assert.Equal(t, int64(4), logs.All()[1].ContextMap()["times"])
	assert.Equal(t, int64(12), logs.All()[1].ContextMap()["records"])

	// A batch without records sends nothing, so nothing is refused.
	require.NoError(t, c.ConsumeTraces(context.Background(), traces("svc", spanSpec{name: "fine", dur: time.Millisecond})))
	assert.EqualValues(t, 15, h.counter(t, "otelcol_spanlogs_records_refused", ""))
	assert.NoError(t, c.Shutdown(context.Background()))
}

// Token buckets refill on the monotonic clock: a wall-clock step back does
// not stop the refill until the wall clock catches up, and a step forward
// does not refill every bucket at once.
func TestWallClockStepDoesNotStopRefill(t *testing.T) {
	cfg := createDefaultConfig()
	cfg.RatePerFingerprint = 1
	cfg.Burst = 1
	h := newHarness(t, cfg)
	h.consume(t, traces("svc", errSpan("op")))
	h.consume(t, traces("svc", errSpan("op")))
	require.Len(t, h.records(), 1, "the burst is spent")

	// The wall clock jumps an hour back; a second later a token is back.
	h.clock.StepWall(-time.Hour)
	h.clock.Advance(time.Second)
	h.consume(t, traces("svc", errSpan("op")))
	recs := h.records()
	require.Len(t, recs, 2, "a wall-clock step back stopped the refill")
	v, ok := recs[1].Attributes().Get(attrSuppressedCount)
	require.True(t, ok)
	assert.EqualValues(t, 1, v.Int())
	assert.Equal(t, baseTime.Add(time.Minute-time.Hour+time.Second).UnixNano(), int64(recs[1].ObservedTimestamp()), "observed timestamps are wall time")

	// The wall clock jumps a day ahead: no time has passed for the bucket.
	h.clock.StepWall(24 * time.Hour)
	h.consume(t, traces("svc", errSpan("op")))
	assert.Len(t, h.records(), 2, "a wall-clock step forward refilled the bucket")
}

func TestLifecycle(t *testing.T) {
	f := NewFactory()
	set := connectortest.NewNopSettings(f.Type())
	ctx := context.Background()

	c, err := f.CreateTracesToLogs(ctx, set, f.CreateDefaultConfig(), consumertest.NewNop())
	require.NoError(t, err)
	assert.False(t, c.Capabilities().MutatesData)
	require.NoError(t, c.Start(ctx, componenttest.NewNopHost()))
	require.NoError(t, c.ConsumeTraces(ctx, goldenInput()))
	require.NoError(t, c.Shutdown(ctx))
	require.NoError(t, c.Shutdown(ctx), "second shutdown")

	never, err := f.CreateTracesToLogs(ctx, set, f.CreateDefaultConfig(), consumertest.NewNop())
	require.NoError(t, err)
	require.NoError(t, never.Shutdown(ctx), "shutdown without start")

	bad := createDefaultConfig()
	bad.Rules = []RuleConfig{{Type: "nope"}}
	_, err = f.CreateTracesToLogs(ctx, set, bad, consumertest.NewNop())
	assert.ErrorContains(t, err, `"rules[0].type"`)
}
