package syntheticreceiver // import "github.com/otelcsp/otelcsp/receiver/syntheticreceiver"

import (
	_ "embed"
	"fmt"
	"math"
	"slices"
	"strings"

	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.yaml.in/yaml/v3"
)

// Attribute keys the generator writes itself.
const (
	attrServiceName   = "service.name"
	attrInstanceID    = "service.instance.id"
	attrGenerator     = "synthetic.generator"
	attrSequence      = "synthetic.sequence"
	attrErrorType     = "error.type"
	attrHTTPMethod    = "http.request.method"
	attrHTTPStatus    = "http.response.status_code"
	attrRPCSystem     = "rpc.system"
	attrGRPCStatus    = "rpc.grpc.status_code"
	attrExcType       = "exception.type"
	attrExcMessage    = "exception.message"
	attrExcStacktrace = "exception.stacktrace"
	eventException    = "exception"
)

// z99 is the standard normal quantile of 0.99: for a log-normal X with
// median m, P99 = m·exp(σ·z99), hence σ = ln(P99/m)/z99.
const z99 = 2.3263478740408408

//go:embed default_topology.yaml
var defaultTopologyYAML []byte

// defaultServices parses the embedded default topology with the same
// unmarshaling as a user's config, so the two cannot drift apart.
func defaultServices() ([]ServiceConfig, error) {
	var raw map[string]any
	if err := yaml.Unmarshal(defaultTopologyYAML, &raw); err != nil {
		return nil, err
	}
	var cfg Config
	if err := confmap.NewFromStringMap(raw).Unmarshal(&cfg); err != nil {
		return nil, err
	}
	return cfg.Services, nil
}

// topology is the compiled, immutable form of the services config: every
// attribute set a span can carry is built once here as a pcommon.Map, so the
// hot path only copies maps and draws random numbers.
type topology struct {
	services []*service
	roots    []*operation
	// rootCum holds cumulative root weights for a weighted draw.
	rootCum []float64
	// slots is the number of (service, instance) resources.
	slots int
	// perTrace is the mean number of spans a trace has in each slot, used
	// to size span slices once per batch instead of growing them.
	perTrace []float64
}

type service struct {
	index int
	name  string
	// One resource per instance; the spans of instance i go to batch slot
	// slot+i.
	resources []pcommon.Map
	slot      int
}

type operation struct {
	svc        *service
	name       string
	kind       ptrace.SpanKind
	median     float64 // nanoseconds
	sigma      float64
	errorRatio float64
	weight     float64
	// attrsOK and attrsErr are the span attributes for a success and for a
	// failure (status code attributes and error.type differ).
	attrsOK, attrsErr pcommon.Map
	excAttrs          pcommon.Map
	events            []spanEvent
	calls             []*call
	// cfg is the operation's config, which calls to it derive from.
	cfg *OperationConfig
}

type spanEvent struct {
	name  string
	attrs pcommon.Map
}

type call struct {
	caller   *service
	target   *operation
	count    int
	parallel bool
	// paired calls are a client (or producer) span in the caller around the
	// callee's server (or consumer) span.
	paired            bool
	name              string
	kind              ptrace.SpanKind
	attrsOK, attrsErr pcommon.Map
}

var kinds = map[string]ptrace.SpanKind{
	"server":   ptrace.SpanKindServer,
	"client":   ptrace.SpanKindClient,
	"internal": ptrace.SpanKindInternal,
	"producer": ptrace.SpanKindProducer,
	"consumer": ptrace.SpanKindConsumer,
}

// operationIndex finds an operation by service and operation name.
type operationIndex map[string]map[string]*OperationConfig

func indexOperations(services []ServiceConfig) operationIndex {
	idx := operationIndex{}
	for si := range services {
		sc := &services[si]
		ops := map[string]*OperationConfig{}
		for oi := range sc.Operations {
			ops[sc.Operations[oi].Name] = &sc.Operations[oi]
		}
		idx[sc.Name] = ops
	}
	return idx
}

// callerKind says whether a call to an operation of kind is a pair of
// spans (a client span around a server span, a producer span around a
// consumer span) and, if so, the kind of the caller-side span.
func callerKind(kind string) (ptrace.SpanKind, bool) {
	switch kind {
	case "server":
		return ptrace.SpanKindClient, true
	case "consumer":
		return ptrace.SpanKindProducer, true
	}
	return ptrace.SpanKindUnspecified, false
}

// compileTopology builds the topology of services, which validateServices
// has accepted (the embedded default topology is checked by a test).
// generatorID, when not empty, is added to every resource as
// synthetic.generator.
func compileTopology(services []ServiceConfig, generatorID string) *topology {
	t := &topology{}
	compiled := map[*OperationConfig]*operation{}
	var all []*operation
	for si := range services {
		sc := &services[si]
		svc := &service{index: si, name: sc.Name, slot: t.slots}
		for i := range sc.Instances {
			res := map[string]any{attrServiceName: sc.Name, attrInstanceID: fmt.Sprintf("%s-%d", sc.Name, i+1)}
			if generatorID != "" {
				res[attrGenerator] = generatorID
			}
			m := pcommon.NewMap()
			buildAttrs(m, sc.ResourceAttributes, res)
			svc.resources = append(svc.resources, m)
		}
		t.slots += len(svc.resources)
		t.services = append(t.services, svc)
		for oi := range sc.Operations {
			op := compileOperation(svc, &sc.Operations[oi])
			compiled[&sc.Operations[oi]] = op
			all = append(all, op)
		}
	}

	// Link calls now that every operation exists.
	idx := indexOperations(services)
	called := map[*operation]bool{}
	for _, op := range all {
		for ci := range op.cfg.Calls {
			cc := &op.cfg.Calls[ci]
			target := compiled[idx[cc.target(op.svc.name)][cc.Operation]]
			called[target] = true
			op.calls = append(op.calls, compileCall(op, cc, target))
		}
	}

	// Roots are the operations no call targets; they start traces in
	// proportion to their weights.
	total := 0.0
	for _, op := range all {
		if called[op] || op.weight == 0 {
			continue
		}
		total += op.weight
		t.roots = append(t.roots, op)
		t.rootCum = append(t.rootCum, total)
	}
	perService := make([]float64, len(t.services))
	for _, root := range t.roots {
		root.addSpansPerService(perService, root.weight/total)
	}
	t.perTrace = make([]float64, t.slots)
	for _, svc := range t.services {
		for i := range svc.resources {
			t.perTrace[svc.slot+i] = perService[svc.index] / float64(len(svc.resources))
		}
	}
	return t
}

// addSpansPerService adds to acc, per service index, the spans one execution
// of op produces, times mult.
func (op *operation) addSpansPerService(acc []float64, mult float64) {
	acc[op.svc.index] += mult
	for _, c := range op.calls {
		m := mult * float64(c.count)
		if c.paired {
			acc[c.caller.index] += m
		}
		c.target.addSpansPerService(acc, m)
	}
}

func compileOperation(svc *service, oc *OperationConfig) *operation {
	op := &operation{svc: svc, name: oc.Name, kind: kinds[oc.Kind], cfg: oc,
		median: float64(oc.Latency.Median), errorRatio: oc.ErrorRatio, weight: oc.Weight}
	op.sigma = math.Log(float64(oc.Latency.P99)/float64(oc.Latency.Median)) / z99

	op.attrsOK, op.attrsErr = pcommon.NewMap(), pcommon.NewMap()
	excType := oc.Exception.Type
	if excType == "" {
		excType = "Error"
	}
	// An uninstrumented peer (a client leaf span) fails as unavailable; an
	// instrumented server reports its own failure.
	failCode := 500
	if oc.Kind == "client" {
		failCode = 503
	}
	ok200, err500 := statusAttrs(oc.Attributes, failCode, excType)
	buildAttrs(op.attrsOK, oc.Attributes, ok200)
	buildAttrs(op.attrsErr, oc.Attributes, err500)

	msg := oc.Exception.Message
	if msg == "" {
		msg = oc.Name + " failed"
	}
	stack := oc.Exception.Stacktrace
	if stack == "" {
		stack = defaultStacktrace(svc.name, oc.Name, excType, msg)
	}
	op.excAttrs = pcommon.NewMap()
	buildAttrs(op.excAttrs, nil, map[string]any{
		attrExcType: excType, attrExcMessage: msg, attrExcStacktrace: stack,
	})

	for ei := range oc.Events {
		ec := &oc.Events[ei]
		ev := spanEvent{name: ec.Name, attrs: pcommon.NewMap()}
		buildAttrs(ev.attrs, ec.Attributes, nil)
		op.events = append(op.events, ev)
	}
	return op
}

func compileCall(caller *operation, cc *CallConfig, target *operation) *call {
	c := &call{caller: caller.svc, target: target, count: cc.Count, parallel: cc.Parallel}
	c.kind, c.paired = callerKind(target.cfg.Kind)
	if !c.paired {
		return c
	}
	c.name = cc.Name
	if c.name == "" {
		c.name = target.name
	}
	svcName := target.svc.name

	// The caller-side span describes the same request from the other end:
	// protocol attributes carry over, server-only ones do not, and the peer
	// is named.
	derived := map[string]any{}
	for k, v := range target.cfg.Attributes {
		switch k {
		case "http.route", "url.path", "url.scheme", "url.query", "client.address", "user_agent.original",
			"messaging.consumer.group.name":
			continue
		}
		derived[k] = v
	}
	if p, ok := target.cfg.Attributes["url.path"].(string); ok {
		scheme := "http"
		if s, ok := target.cfg.Attributes["url.scheme"].(string); ok {
			scheme = s
		}
		derived["url.full"] = scheme + "://" + svcName + p
	}
	if _, ok := derived["messaging.operation.type"]; ok {
		derived["messaging.operation.type"] = "send"
	}
	derived["server.address"] = svcName
	derived["peer.service"] = svcName
	for k, v := range cc.Attributes {
		derived[k] = v
	}
	// The caller sees the status the callee's server span reports.
	ok200, err500 := statusAttrs(derived, 500, "")
	// A failed call surfaces in the caller as the callee's error type (for
	// HTTP statusAttrs already made it the status code).
	if _, isHTTP := derived[attrHTTPMethod]; !isHTTP {
		excType := target.cfg.Exception.Type
		if excType == "" {
			excType = "Error"
		}
		if _, userSet := derived[attrErrorType]; !userSet {
			err500[attrErrorType] = excType
		}
	}
	c.attrsOK, c.attrsErr = pcommon.NewMap(), pcommon.NewMap()
	buildAttrs(c.attrsOK, derived, ok200)
	buildAttrs(c.attrsErr, derived, err500)
	return c
}

// statusAttrs returns the attributes that differ between a successful and a
// failed span of an operation with attrs, following the semantic
// conventions: HTTP status code (error.type is the status code for HTTP),
// gRPC status code, error.type otherwise. Attributes the user set win.
func statusAttrs(attrs map[string]any, code int, excType string) (ok, failed map[string]any) {
	ok, failed = map[string]any{}, map[string]any{}
	if _, isHTTP := attrs[attrHTTPMethod]; isHTTP {
		ok[attrHTTPStatus] = 200
		failed[attrHTTPStatus] = code
		failed[attrErrorType] = fmt.Sprint(code)
	} else if excType != "" {
		failed[attrErrorType] = excType
	}
	if attrs[attrRPCSystem] == "grpc" {
		ok[attrGRPCStatus] = 0
		failed[attrGRPCStatus] = 2 // UNKNOWN: the error is the application's.
	}
	for k := range attrs {
		delete(ok, k)
		delete(failed, k)
	}
	return ok, failed
}

// buildAttrs fills dst with user's attributes and the generator's extra
// ones, in sorted key order so that the same seed gives byte-identical
// output. User attributes win over extra ones of the same key.
func buildAttrs(dst pcommon.Map, user, extra map[string]any) {
	keys := sortedKeys(user, extra)
	dst.EnsureCapacity(len(keys))
	for _, k := range keys {
		v, ok := user[k]
		if !ok {
			v = extra[k]
		}
		// validateAttrs accepted every user value; extra ones are the
		// generator's own strings and numbers.
		_ = dst.PutEmpty(k).FromRaw(normalize(v))
	}
}

// sortedKeys returns the keys of a and b, each once, sorted.
func sortedKeys(a, b map[string]any) []string {
	keys := make([]string, 0, len(a)+len(b))
	for k := range a {
		keys = append(keys, k)
	}
	for k := range b {
		if _, dup := a[k]; !dup {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return keys
}

// normalize turns the YAML decoder's map[any]any into map[string]any, which
// is what pcommon accepts.
func normalize(v any) any {
	switch x := v.(type) {
	case map[any]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[fmt.Sprint(k)] = normalize(e)
		}
		return m
	case map[string]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[k] = normalize(e)
		}
		return m
	case []any:
		s := make([]any, len(x))
		for i, e := range x {
			s[i] = normalize(e)
		}
		return s
	}
	return v
}

// defaultStacktrace writes a plausible Go-style stack for an operation that
// has none configured: what a backend shows must look like a real one.
func defaultStacktrace(svc, op, excType, msg string) string {
	fn := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			return r
		}
		return '_'
	}, op)
	return fmt.Sprintf("%s: %s\n\ngoroutine 1 [running]:\nmain.(*%sHandler).%s(...)\n\t/src/%s/handler.go:142 +0x1c4\nmain.(*server).serve(...)\n\t/src/%s/server.go:88 +0x2a8\nmain.main()\n\t/src/%s/main.go:42 +0x5c",
		excType, msg, svc, fn, svc, svc, svc)
}
