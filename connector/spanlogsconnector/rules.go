package spanlogsconnector // import "github.com/otelcsp/otelcsp/connector/spanlogsconnector"

import (
	"strings"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/otelcsp/otelcsp/internal/spanname"
)

type ruleKind uint8

const (
	kindErrors ruleKind = iota
	kindExceptions
	kindSlow
	kindAll
)

// severity is a record's severity number with its text.
type severity struct {
	num  plog.SeverityNumber
	text string
}

var (
	sevTrace = severity{plog.SeverityNumberTrace, "TRACE"}
	sevDebug = severity{plog.SeverityNumberDebug, "DEBUG"}
	sevInfo  = severity{plog.SeverityNumberInfo, "INFO"}
	sevWarn  = severity{plog.SeverityNumberWarn, "WARN"}
	sevError = severity{plog.SeverityNumberError, "ERROR"}
	sevFatal = severity{plog.SeverityNumberFatal, "FATAL"}
)

// defaultSeverity per rule type; an `all` rule without a configured severity
// maps the span status instead (see rule.severityFor).
var defaultSeverity = [...]severity{
	kindErrors:     sevError,
	kindExceptions: sevError,
	kindSlow:       sevWarn,
	kindAll:        sevInfo,
}

func parseSeverity(s string) (severity, bool) {
	switch strings.ToUpper(s) {
	case "TRACE":
		return sevTrace, true
	case "DEBUG":
		return sevDebug, true
	case "INFO":
		return sevInfo, true
	case "WARN", "WARNING":
		return sevWarn, true
	case "ERROR":
		return sevError, true
	case "FATAL":
		return sevFatal, true
	}
	return severity{}, false
}

// rule is a compiled RuleConfig.
type rule struct {
	name  string
	index int
	kind  ruleKind

	services  []glob
	spanNames []glob
	kinds     uint8 // bit i set: ptrace.SpanKind(i) passes

	threshold  time.Duration
	thresholds []threshold
	// minThreshold is the smallest threshold of the rule: spans not longer
	// than it skip the threshold globs entirely.
	minThreshold time.Duration
	gate         gate // the rule type's cheap test, see gate

	body          template
	severity      severity
	severityFixed bool
	attrs         *attrFilter

	rate  float64
	burst int
}

type threshold struct {
	service  glob
	spanName glob
	d        time.Duration
}

// emission says which records a rule's match asks for.
type emission uint8

const (
	emitNothing    emission = iota
	emitSpan                // one record of the span
	emitExceptions          // one record per exception event of the span
)

// verdict is a rule's answer for one span: what to emit, and what of the
// records depends on the match (severity, the slow threshold that applied).
//
// It is three words, returned in registers: severity points at the rule's
// or a package-level value rather than holding a copy, which made the
// verdict five words that were spilled and copied on every call.
type verdict struct {
	emit      emission
	severity  *severity
	threshold time.Duration // slow rules: the threshold the span exceeded
}

// facts are what the rule types' cheap tests read of a span, read once
// per span for all the rules.
type facts struct {
	status     ptrace.StatusCode
	events     int
	start, end pcommon.Timestamp
}

func factsOf(span ptrace.Span) facts {
	return facts{status: span.Status().Code(), events: span.Events().Len(), start: span.StartTimestamp(), end: span.EndTimestamp()}
}

// gate is the cheap test of a rule type, the one most spans fail: an error
// status (errors), any events (exceptions), a duration over the rule's
// smallest threshold (slow), nothing (all). The gates of a resource's
// active rules are joined, so a span that no rule wants is turned away
// by one test instead of one per rule.
type gate struct {
	always   bool
	onError  bool
	onEvents bool
	over     time.Duration // a span lasting longer passes; maxDuration: none does
}

const maxDuration = time.Duration(1<<63 - 1)

func gateOf(r *rule) gate {
	g := gate{over: maxDuration}
	switch r.kind {
	case kindErrors:
		g.onError = true
	case kindExceptions:
		g.onEvents = true
	case kindSlow:
		g.over = r.minThreshold
	case kindAll:
		g.always = true
	}
	return g
}

// join is the gate a span passes when it passes either gate.
func (g gate) join(o gate) gate {
	return gate{
		always: g.always || o.always, onError: g.onError || o.onError, onEvents: g.onEvents || o.onEvents,
		over: min(g.over, o.over),
	}
}

// admits is inlined into the span loop: a span no rule wants costs no call.
// match assumes its rule's gate admitted the span.
func (g gate) admits(f facts) bool {
	return g.always || (g.onError && f.status == ptrace.StatusCodeError) || (g.onEvents && f.events > 0) ||
		(f.end > f.start && time.Duration(f.end-f.start) > g.over) // spanDuration > over
}

// match says what r emits for a span its gate admitted: the span filters' globs
// and, for slow rules, the threshold that applies. service is the span's
// resource's service, which passed r's service filter (checked once per
// resource, servicePasses).
func (r *rule) match(span ptrace.Span, service string) verdict {
	if !r.passesSpan(span) {
		return verdict{}
	}
	switch r.kind {
	case kindErrors:
		return verdict{emit: emitSpan, severity: &r.severity}
	case kindExceptions:
		return verdict{emit: emitExceptions, severity: &r.severity}
	case kindSlow:
		if th := r.thresholdFor(service, span.Name()); th > 0 && spanDuration(span) > th {
			return verdict{emit: emitSpan, severity: &r.severity, threshold: th}
		}
		return verdict{}
	}
	return verdict{emit: emitSpan, severity: r.severityFor(span)}
}

// passesSpan applies the rule's span kind and span name filters.
func (r *rule) passesSpan(span ptrace.Span) bool {
	if r.kinds&(1<<uint(spanKind(span))) == 0 {
		return false
	}
	return matchAny(r.spanNames, span.Name())
}

// spanKind is the span's kind, a value the OTLP enum does not define read
// as unspecified (filters and the {span.kind} placeholder agree on it).
func spanKind(span ptrace.Span) ptrace.SpanKind {
	if k := span.Kind(); spanname.Kind(k) != "" {
		return k
	}
	return ptrace.SpanKindUnspecified
}

func (r *rule) servicePasses(service string) bool {
	return matchAny(r.services, service)
}

// thresholdFor returns the slow threshold for a span (0: never slow).
func (r *rule) thresholdFor(service, spanName string) time.Duration {
	for i := range r.thresholds {
		t := &r.thresholds[i]
		if t.service.match(service) && t.spanName.match(spanName) {
			return t.d
		}
	}
	return r.threshold
}

// severityFor maps an `all` rule's span status when no severity is
// configured; every other rule has one fixed severity.
func (r *rule) severityFor(span ptrace.Span) *severity {
	if r.kind == kindAll && !r.severityFixed {
		if span.Status().Code() == ptrace.StatusCodeError {
			return &sevError
		}
		return &sevInfo
	}
	return &r.severity
}

// attrFilter selects span attribute keys for records.
type attrFilter struct {
	include []glob
	exclude []glob
	// none is set when an exclude glob is `*`: no span attribute is kept,
	// so the keys need not be looked at.
	none bool
}

func (f *attrFilter) all() bool { return len(f.include) == 0 && len(f.exclude) == 0 }

func (f *attrFilter) keep(k string) bool {
	if len(f.include) > 0 && !matchAny(f.include, k) {
		return false
	}
	for i := range f.exclude {
		if f.exclude[i].match(k) {
			return false
		}
	}
	return true
}
