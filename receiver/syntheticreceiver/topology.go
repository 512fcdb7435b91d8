package syntheticreceiver // import "github.com/otelcsp/otelcsp/receiver/syntheticreceiver"

import (
	_ "embed"
	"errors"
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
	// spans is the number of spans one execution produces, children included.
	spans float64

	// Where the operation sits in the config, for error messages.
	path string
	cfg  *OperationConfig
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

// compileTopology validates services and builds the topology. generatorID,
// when not empty, is added to every resource as synthetic.generator.
func compileTopology(services []ServiceConfig, generatorID string) (*topology, error) {
	t := &topology{}
	var errs []error
	byName := map[string]*service{}
	ops := map[string]map[string]*operation{}
	var all []*operation

	for si := range services {
		sc := &services[si]
		spath := fmt.Sprintf("services[%d]", si)
		if sc.Name == "" {
			errs = append(errs, fmt.Errorf("%q: must not be empty", spath+".name"))
		} else if _, dup := byName[sc.Name]; dup {
			errs = append(errs, fmt.Errorf("%q: duplicate service name %q", spath+".name", sc.Name))
		}
		svc := &service{index: si, name: sc.Name, slot: t.slots}
		for _, k := range []string{attrServiceName, attrInstanceID} {
			if _, ok := sc.ResourceAttributes[k]; ok {
				errs = append(errs, fmt.Errorf("%q: must not set %s, the receiver sets it", spath+".resource_attributes", k))
			}
		}
		instances := sc.Instances
		if instances == 0 { // a Config built in Go rather than unmarshaled
			instances = 1
		}
		if instances < 1 || instances > maxInstances {
			errs = append(errs, fmt.Errorf("%q: must be in [1, %d], got %d", spath+".instances", maxInstances, sc.Instances))
			instances = 1
		}
		for i := range instances {
			res := map[string]any{attrServiceName: sc.Name, attrInstanceID: fmt.Sprintf("%s-%d", sc.Name, i+1)}
			if generatorID != "" {
				res[attrGenerator] = generatorID
			}
			m := pcommon.NewMap()
			if err := buildAttrs(m, spath+".resource_attributes", sc.ResourceAttributes, res); err != nil {
				errs = append(errs, err)
			}
			svc.resources = append(svc.resources, m)
		}
		t.slots += instances
		if sc.Name != "" {
			byName[sc.Name] = svc
		}
		t.services = append(t.services, svc)
		if len(sc.Operations) == 0 {
			errs = append(errs, fmt.Errorf("%q: must have at least one operation", spath+".operations"))
		}
		svcOps := map[string]*operation{}
		ops[sc.Name] = svcOps
		for oi := range sc.Operations {
			oc := &sc.Operations[oi]
			op, err := compileOperation(svc, oc, fmt.Sprintf("%s.operations[%d]", spath, oi))
			errs = append(errs, err)
			if oc.Name != "" {
				if _, dup := svcOps[oc.Name]; dup {
					errs = append(errs, fmt.Errorf("%q: duplicate operation name %q in service %q", op.path+".name", oc.Name, sc.Name))
				}
				svcOps[oc.Name] = op
			}
			all = append(all, op)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}

	// Resolve calls now that every operation exists.
	called := map[*operation]bool{}
	for _, op := range all {
		for ci := range op.cfg.Calls {
			cc := &op.cfg.Calls[ci]
			cpath := fmt.Sprintf("%s.calls[%d]", op.path, ci)
			c, err := compileCall(op, cc, cpath, ops)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			called[c.target] = true
			op.calls = append(op.calls, c)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}

	// A cycle would make a trace infinite; count spans per operation with a
	// depth-first walk that also finds cycles.
	state := map[*operation]int{} // 0 unvisited, 1 on the stack, 2 done
	var visit func(op *operation) error
	visit = func(op *operation) error {
		switch state[op] {
		case 1:
			return fmt.Errorf("%q: calls form a cycle through %s/%s", op.path+".calls", op.svc.name, op.name)
		case 2:
			return nil
		}
		state[op] = 1
		n := 1.0
		for _, c := range op.calls {
			if err := visit(c.target); err != nil {
				return err
			}
			per := c.target.spans
			if c.paired {
				per++
			}
			n += float64(c.count) * per
		}
		op.spans = n
		state[op] = 2
		return nil
	}
	for _, op := range all {
		if err := visit(op); err != nil {
			return nil, err
		}
	}

	total := 0.0
	for _, op := range all {
		if called[op] {
			continue
		}
		if op.spans > maxSpansPerTrace {
			errs = append(errs, fmt.Errorf("%q: a trace starting at %s/%s has %.0f spans, more than the limit of %d; lower the calls' counts", op.path, op.svc.name, op.name, op.spans, maxSpansPerTrace))
		}
		if op.weight == 0 {
			continue
		}
		if generatorID != "" {
			// Reserve the canary attribute in the root's precomputed sets, so
			// numbering a trace is an in-place update, not a slice regrowth.
			op.attrsOK.PutInt(attrSequence, 0)
			op.attrsErr.PutInt(attrSequence, 0)
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
	if len(t.roots) == 0 {
		errs = append(errs, errors.New(`"services": no operation can start a trace: every operation is called by another one or has weight 0`))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return t, nil
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

func compileOperation(svc *service, oc *OperationConfig, path string) (*operation, error) {
	var errs []error
	op := &operation{svc: svc, name: oc.Name, path: path, cfg: oc, errorRatio: oc.ErrorRatio, weight: oc.Weight}
	if oc.Name == "" {
		errs = append(errs, fmt.Errorf("%q: must not be empty", path+".name"))
	}
	kind, ok := kinds[oc.Kind]
	if !ok {
		errs = append(errs, fmt.Errorf("%q: must be one of server, client, internal, producer, consumer; got %q", path+".kind", oc.Kind))
	}
	op.kind = kind
	if oc.Latency.Median <= 0 {
		errs = append(errs, fmt.Errorf("%q: must be > 0, got %v", path+".latency.median", oc.Latency.Median))
	} else if oc.Latency.P99 < oc.Latency.Median {
		errs = append(errs, fmt.Errorf("%q: must be >= latency.median (%v), got %v", path+".latency.p99", oc.Latency.Median, oc.Latency.P99))
	} else {
		op.median = float64(oc.Latency.Median)
		op.sigma = math.Log(float64(oc.Latency.P99)/float64(oc.Latency.Median)) / z99
	}
	if math.IsNaN(oc.ErrorRatio) || oc.ErrorRatio < 0 || oc.ErrorRatio > 1 {
		errs = append(errs, fmt.Errorf("%q: must be in [0, 1], got %v", path+".error_ratio", oc.ErrorRatio))
	}
	if math.IsNaN(oc.Weight) || math.IsInf(oc.Weight, 0) || oc.Weight < 0 {
		errs = append(errs, fmt.Errorf("%q: must be >= 0, got %v", path+".weight", oc.Weight))
	}

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
	errs = append(errs,
		buildAttrs(op.attrsOK, path+".attributes", oc.Attributes, ok200),
		buildAttrs(op.attrsErr, path+".attributes", oc.Attributes, err500))

	msg := oc.Exception.Message
	if msg == "" {
		msg = oc.Name + " failed"
	}
	stack := oc.Exception.Stacktrace
	if stack == "" {
		stack = defaultStacktrace(svc.name, oc.Name, excType, msg)
	}
	op.excAttrs = pcommon.NewMap()
	errs = append(errs, buildAttrs(op.excAttrs, path+".exception", nil, map[string]any{
		attrExcType: excType, attrExcMessage: msg, attrExcStacktrace: stack,
	}))

	for ei := range oc.Events {
		ec := &oc.Events[ei]
		epath := fmt.Sprintf("%s.events[%d]", path, ei)
		if ec.Name == "" {
			errs = append(errs, fmt.Errorf("%q: must not be empty", epath+".name"))
		}
		ev := spanEvent{name: ec.Name, attrs: pcommon.NewMap()}
		errs = append(errs, buildAttrs(ev.attrs, epath+".attributes", ec.Attributes, nil))
		op.events = append(op.events, ev)
	}
	return op, errors.Join(errs...)
}

func compileCall(caller *operation, cc *CallConfig, path string, ops map[string]map[string]*operation) (*call, error) {
	svcName := cc.Service
	if svcName == "" {
		svcName = caller.svc.name
	}
	svcOps, ok := ops[svcName]
	if !ok {
		return nil, fmt.Errorf("%q: no service named %q", path+".service", svcName)
	}
	target, ok := svcOps[cc.Operation]
	if !ok {
		return nil, fmt.Errorf("%q: service %q has no operation named %q", path+".operation", svcName, cc.Operation)
	}
	if cc.Count < 1 || cc.Count > maxFanOut {
		return nil, fmt.Errorf("%q: must be in [1, %d], got %d", path+".count", maxFanOut, cc.Count)
	}
	c := &call{caller: caller.svc, target: target, count: cc.Count, parallel: cc.Parallel}
	switch target.kind {
	case ptrace.SpanKindServer:
		c.paired, c.kind = true, ptrace.SpanKindClient
	case ptrace.SpanKindConsumer:
		c.paired, c.kind = true, ptrace.SpanKindProducer
	default:
		if target.svc != caller.svc {
			// Spans of another process are only reached over the wire.
			return nil, fmt.Errorf("%q: %q of service %q is a %s operation; a call to another service must target a server or consumer operation", path+".operation", cc.Operation, svcName, target.cfg.Kind)
		}
		if cc.Name != "" || len(cc.Attributes) > 0 {
			return nil, fmt.Errorf("%q: name and attributes only apply to calls to a server or consumer operation, %q is %s", path, cc.Operation, target.cfg.Kind)
		}
		return c, nil
	}
	c.name = cc.Name
	if c.name == "" {
		c.name = target.name
	}

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
	return c, errors.Join(
		buildAttrs(c.attrsOK, path+".attributes", derived, ok200),
		buildAttrs(c.attrsErr, path+".attributes", derived, err500))
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
// ones, in sorted key order so that the same seed gives byte-identical output.
func buildAttrs(dst pcommon.Map, path string, user, extra map[string]any) error {
	keys := make([]string, 0, len(user)+len(extra))
	for k := range user {
		keys = append(keys, k)
	}
	for k := range extra {
		if _, dup := user[k]; !dup {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	dst.EnsureCapacity(len(keys))
	for _, k := range keys {
		v, ok := user[k]
		if !ok {
			v = extra[k]
		}
		if k == "" {
			return fmt.Errorf("%q: attribute keys must not be empty", path)
		}
		if err := dst.PutEmpty(k).FromRaw(normalize(v)); err != nil {
			return fmt.Errorf("%q: attribute %q: %w", path, k, err)
		}
	}
	return nil
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
