package spanlogsconnector // import "github.com/otelcsp/otelcsp/connector/spanlogsconnector"

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/otelcsp/otelcsp/internal/spanname"
)

// Rule types. A rule's type decides which spans it matches and the shape of
// the record it emits.
const (
	ruleTypeErrors     = "errors"
	ruleTypeExceptions = "exceptions"
	ruleTypeSlow       = "slow"
	ruleTypeAll        = "all"
)

// Config is the spanlogs connector's configuration.
type Config struct {
	// Rules decide which spans become log records. Each span is checked
	// against every rule; each matching rule emits its own record.
	Rules []RuleConfig `mapstructure:"rules"`

	// Attributes selects the span attributes copied onto every record
	// (a rule may override it). Default: all of them.
	Attributes AttributesConfig `mapstructure:"attributes"`

	// RatePerFingerprint is the sustained number of records a second one
	// fingerprint may emit; 0 turns the limit (and deduplication) off.
	RatePerFingerprint float64 `mapstructure:"rate_per_fingerprint"`

	// Burst is how many records one fingerprint may emit at once before the
	// rate applies.
	Burst int `mapstructure:"burst"`

	// MaxFingerprints bounds the rate limiter's state; the least recently
	// seen fingerprint is forgotten to make room for a new one.
	MaxFingerprints int `mapstructure:"max_fingerprints"`

	// prevent unkeyed literal initialization
	_ struct{}
}

// RuleConfig is one entry of `rules`.
type RuleConfig struct {
	// Name identifies the rule in metrics and in the {rule} placeholder.
	// Default: the rule's type. Names must be unique.
	Name string `mapstructure:"name"`
	// Type is one of errors, exceptions, slow, all.
	Type string `mapstructure:"type"`

	// Services, SpanNames and SpanKinds filter the spans the rule looks at:
	// each is a list of globs (`*` any run of characters, `?` one character),
	// empty means no filter, a span passes a list when any glob matches.
	Services  []string `mapstructure:"services"`
	SpanNames []string `mapstructure:"span_names"`
	SpanKinds []string `mapstructure:"span_kinds"`

	// Threshold is the slow rule's default threshold: spans lasting longer
	// are slow.
	Threshold time.Duration `mapstructure:"threshold"`
	// Thresholds override Threshold for some services and span names; the
	// first entry that matches a span wins.
	Thresholds []ThresholdConfig `mapstructure:"thresholds"`

	// Body is the record body template; empty selects the type's default.
	Body string `mapstructure:"body"`
	// Severity overrides the type's severity: TRACE, DEBUG, INFO, WARN,
	// ERROR or FATAL.
	Severity string `mapstructure:"severity"`
	// Attributes overrides the connector-wide attribute selection.
	Attributes *AttributesConfig `mapstructure:"attributes"`

	// RatePerFingerprint and Burst override the connector-wide limit for
	// this rule (for example rate 0 for an `all` rule that must not drop).
	RatePerFingerprint *float64 `mapstructure:"rate_per_fingerprint"`
	Burst              *int     `mapstructure:"burst"`
}

// ThresholdConfig is one per-service, per-span-name slow threshold.
type ThresholdConfig struct {
	// Service and SpanName are globs; empty matches everything.
	Service   string        `mapstructure:"service"`
	SpanName  string        `mapstructure:"span_name"`
	Threshold time.Duration `mapstructure:"threshold"`
}

// AttributesConfig selects span attributes by key globs. An empty Include
// keeps every key; Exclude removes keys after Include.
type AttributesConfig struct {
	Include []string `mapstructure:"include"`
	Exclude []string `mapstructure:"exclude"`
}

func createDefaultConfig() *Config {
	return &Config{
		Rules: []RuleConfig{
			{Name: ruleTypeErrors, Type: ruleTypeErrors},
			{Name: ruleTypeExceptions, Type: ruleTypeExceptions},
		},
		RatePerFingerprint: 1,
		Burst:              5,
		MaxFingerprints:    10000,
	}
}

// Validate checks every key; the same compilation the connector runs at
// creation, so a config that validates is a config that runs.
func (c *Config) Validate() error {
	_, err := compileConfig(c)
	return err
}

// compiled is the config turned into the data the hot path needs: rules with
// compiled globs and templates, and the limiter's parameters.
type compiled struct {
	rules           []*rule
	maxFingerprints int
}

func compileConfig(c *Config) (*compiled, error) {
	var errs []error
	if err := checkRate("rate_per_fingerprint", c.RatePerFingerprint); err != nil {
		errs = append(errs, err)
	}
	if c.Burst < 1 {
		errs = append(errs, fmt.Errorf("%q: must be >= 1, got %d", "burst", c.Burst))
	}
	if c.MaxFingerprints < 1 {
		errs = append(errs, fmt.Errorf("%q: must be >= 1, got %d", "max_fingerprints", c.MaxFingerprints))
	}
	if len(c.Rules) == 0 {
		errs = append(errs, errors.New(`"rules": at least one rule is needed, got none`))
	}
	globalAttrs, err := compileAttributes("attributes", c.Attributes)
	if err != nil {
		errs = append(errs, err)
	}
	out := &compiled{maxFingerprints: c.MaxFingerprints}
	seen := map[string]int{}
	for i := range c.Rules {
		r, rerrs := compileRule(i, &c.Rules[i], c, globalAttrs)
		errs = append(errs, rerrs...)
		if r == nil {
			continue
		}
		if j, dup := seen[r.name]; dup {
			errs = append(errs, fmt.Errorf("%q: duplicate rule name %q (also rules[%d])", fmt.Sprintf("rules[%d].name", i), r.name, j))
			continue
		}
		seen[r.name] = i
		r.gate = gateOf(r)
		r.index = len(out.rules)
		out.rules = append(out.rules, r)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}

func compileRule(i int, rc *RuleConfig, c *Config, globalAttrs *attrFilter) (*rule, []error) {
	key := func(k string) string { return fmt.Sprintf("rules[%d].%s", i, k) }
	var errs []error
	r := &rule{name: rc.Name, attrs: globalAttrs}
	switch rc.Type {
	case ruleTypeErrors:
		r.kind = kindErrors
	case ruleTypeExceptions:
		r.kind = kindExceptions
	case ruleTypeSlow:
		r.kind = kindSlow
	case ruleTypeAll:
		r.kind = kindAll
	default:
		errs = append(errs, fmt.Errorf("%q: must be one of errors, exceptions, slow, all, got %q", key("type"), rc.Type))
		return nil, errs
	}
	if r.name == "" {
		r.name = rc.Type
	}

	var err error
	if r.services, err = compileGlobs(key("services"), rc.Services); err != nil {
		errs = append(errs, err)
	}
	if r.spanNames, err = compileGlobs(key("span_names"), rc.SpanNames); err != nil {
		errs = append(errs, err)
	}
	if r.kinds, err = compileKinds(key("span_kinds"), rc.SpanKinds); err != nil {
		errs = append(errs, err)
	}

	if r.kind == kindSlow {
		if rc.Threshold < 0 {
			errs = append(errs, fmt.Errorf("%q: must be > 0, got %v", key("threshold"), rc.Threshold))
		}
		if rc.Threshold <= 0 && len(rc.Thresholds) == 0 {
			errs = append(errs, fmt.Errorf("%q: a slow rule needs a threshold > 0 or thresholds, got %v", key("threshold"), rc.Threshold))
		}
		r.threshold = rc.Threshold
		for j, t := range rc.Thresholds {
			tk := fmt.Sprintf("rules[%d].thresholds[%d]", i, j)
			if t.Threshold <= 0 {
				errs = append(errs, fmt.Errorf("%q: must be > 0, got %v", tk+".threshold", t.Threshold))
			}
			svc, err1 := compileGlob(tk+".service", orStar(t.Service))
			name, err2 := compileGlob(tk+".span_name", orStar(t.SpanName))
			if err1 != nil || err2 != nil {
				errs = append(errs, errors.Join(err1, err2))
				continue
			}
			r.thresholds = append(r.thresholds, threshold{service: svc, spanName: name, d: t.Threshold})
		}
		r.minThreshold = r.threshold
		for _, t := range r.thresholds {
			if r.minThreshold <= 0 || t.d < r.minThreshold {
				r.minThreshold = t.d
			}
		}
	} else if rc.Threshold != 0 || len(rc.Thresholds) != 0 {
		errs = append(errs, fmt.Errorf("%q: only a slow rule takes a threshold, this rule is of type %q", key("threshold"), rc.Type))
	}

	bodySrc := rc.Body
	if bodySrc == "" {
		bodySrc = defaultBodies[r.kind]
	}
	if r.body, err = parseTemplate(key("body"), bodySrc); err != nil {
		errs = append(errs, err)
	}

	r.severity = defaultSeverity[r.kind]
	if rc.Severity != "" {
		sev, ok := parseSeverity(rc.Severity)
		if !ok {
			errs = append(errs, fmt.Errorf("%q: must be one of TRACE, DEBUG, INFO, WARN, ERROR, FATAL, got %q", key("severity"), rc.Severity))
		}
		r.severity = sev
		r.severityFixed = true
	}

	if rc.Attributes != nil {
		if r.attrs, err = compileAttributes(key("attributes"), *rc.Attributes); err != nil {
			errs = append(errs, err)
		}
	}

	r.rate, r.burst = c.RatePerFingerprint, c.Burst
	if rc.RatePerFingerprint != nil {
		if err := checkRate(key("rate_per_fingerprint"), *rc.RatePerFingerprint); err != nil {
			errs = append(errs, err)
		}
		r.rate = *rc.RatePerFingerprint
	}
	if rc.Burst != nil {
		if *rc.Burst < 1 {
			errs = append(errs, fmt.Errorf("%q: must be >= 1, got %d", key("burst"), *rc.Burst))
		}
		r.burst = *rc.Burst
	}
	return r, errs
}

// checkRate accepts finite rates >= 0. NaN would pass a plain `< 0` test
// and then starve every bucket (a NaN token count is never >= 1); YAML
// reads `.nan` and `.inf` as floats.
func checkRate(key string, rate float64) error {
	if rate < 0 || math.IsNaN(rate) || math.IsInf(rate, 0) {
		return fmt.Errorf("%q: must be a finite number >= 0, got %v", key, rate)
	}
	return nil
}

func orStar(s string) string {
	if s == "" {
		return "*"
	}
	return s
}

func compileGlobs(key string, pats []string) ([]glob, error) {
	if len(pats) == 0 {
		return nil, nil
	}
	out := make([]glob, 0, len(pats))
	for j, p := range pats {
		g, err := compileGlob(fmt.Sprintf("%s[%d]", key, j), p)
		if err != nil {
			return nil, err
		}
		out = append(out, g)
	}
	return out, nil
}

// compileKinds turns kind globs into a bitmask indexed by ptrace.SpanKind,
// so the hot path tests one bit. A glob that matches no kind is a typo.
func compileKinds(key string, pats []string) (uint8, error) {
	if len(pats) == 0 {
		return 0xff, nil
	}
	var mask uint8
	for j, p := range pats {
		k := fmt.Sprintf("%s[%d]", key, j)
		g, err := compileGlob(k, strings.ToLower(p))
		if err != nil {
			return 0, err
		}
		var m uint8
		for _, kind := range spanname.Kinds() {
			if g.match(spanname.Kind(kind)) {
				m |= 1 << uint(kind)
			}
		}
		if m == 0 {
			return 0, fmt.Errorf("%q: matches no span kind (%s), got %q", k, kindList(), p)
		}
		mask |= m
	}
	return mask, nil
}

// kindList names the kinds span_kinds globs match, for error messages.
func kindList() string {
	names := make([]string, 0, len(spanname.Kinds()))
	for _, k := range spanname.Kinds() {
		names = append(names, spanname.Kind(k))
	}
	return strings.Join(names, ", ")
}

func compileAttributes(key string, a AttributesConfig) (*attrFilter, error) {
	inc, err := compileGlobs(key+".include", a.Include)
	if err != nil {
		return nil, err
	}
	exc, err := compileGlobs(key+".exclude", a.Exclude)
	if err != nil {
		return nil, err
	}
	f := &attrFilter{include: inc, exclude: exc}
	for _, g := range exc {
		if g.MatchesAll() {
			f.none = true
		}
	}
	return f, nil
}
