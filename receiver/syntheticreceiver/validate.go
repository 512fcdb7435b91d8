package syntheticreceiver // import "github.com/otelcsp/otelcsp/receiver/syntheticreceiver"

import (
	"errors"
	"fmt"
	"math"

	"go.opentelemetry.io/collector/pdata/pcommon"
)

// validateServices checks a topology; every error names the key at fault
// and its bad value. It runs once, from Config.Validate, and is the only
// check: compileTopology builds from what it accepted. It works in three
// passes, each only when the one before found nothing, because each needs
// what the one before guarantees: every entry on its own (names, ranges,
// attributes), then the calls between entries (targets exist, kinds fit),
// then the call graph as a whole (no cycle, bounded traces, a root).
func validateServices(services []ServiceConfig) error {
	if err := validateEntries(services); err != nil {
		return err
	}
	idx := indexOperations(services)
	if err := validateCalls(services, idx); err != nil {
		return err
	}
	return validateGraph(services, idx)
}

// validateEntries checks each service and operation on its own.
func validateEntries(services []ServiceConfig) error {
	var errs []error
	names := map[string]bool{}
	for si := range services {
		sc := &services[si]
		spath := fmt.Sprintf("services[%d]", si)
		if sc.Name == "" {
			errs = append(errs, fmt.Errorf("%q: must not be empty", spath+".name"))
		} else if names[sc.Name] {
			errs = append(errs, fmt.Errorf("%q: duplicate service name %q", spath+".name", sc.Name))
		}
		names[sc.Name] = true
		for _, k := range []string{attrServiceName, attrInstanceID} {
			if _, ok := sc.ResourceAttributes[k]; ok {
				errs = append(errs, fmt.Errorf("%q: must not set %s, the receiver sets it", spath+".resource_attributes", k))
			}
		}
		if n := sc.Instances; n < 1 || n > maxInstances {
			errs = append(errs, fmt.Errorf("%q: must be in [1, %d], got %d", spath+".instances", maxInstances, sc.Instances))
		}
		errs = append(errs, validateAttrs(spath+".resource_attributes", sc.ResourceAttributes))
		if len(sc.Operations) == 0 {
			errs = append(errs, fmt.Errorf("%q: must have at least one operation", spath+".operations"))
		}
		opNames := map[string]bool{}
		for oi := range sc.Operations {
			oc := &sc.Operations[oi]
			opath := fmt.Sprintf("%s.operations[%d]", spath, oi)
			errs = append(errs, validateOperation(oc, opath))
			if oc.Name != "" && opNames[oc.Name] {
				errs = append(errs, fmt.Errorf("%q: duplicate operation name %q in service %q", opath+".name", oc.Name, sc.Name))
			}
			opNames[oc.Name] = true
		}
	}
	return errors.Join(errs...)
}

func validateOperation(oc *OperationConfig, path string) error {
	var errs []error
	if oc.Name == "" {
		errs = append(errs, fmt.Errorf("%q: must not be empty", path+".name"))
	}
	if _, ok := kinds[oc.Kind]; !ok {
		errs = append(errs, fmt.Errorf("%q: must be one of server, client, internal, producer, consumer; got %q", path+".kind", oc.Kind))
	}
	if oc.Latency.Median <= 0 {
		errs = append(errs, fmt.Errorf("%q: must be > 0, got %v", path+".latency.median", oc.Latency.Median))
	} else if oc.Latency.P99 < oc.Latency.Median {
		errs = append(errs, fmt.Errorf("%q: must be >= latency.median (%v), got %v", path+".latency.p99", oc.Latency.Median, oc.Latency.P99))
	}
	if math.IsNaN(oc.ErrorRatio) || oc.ErrorRatio < 0 || oc.ErrorRatio > 1 {
		errs = append(errs, fmt.Errorf("%q: must be in [0, 1], got %v", path+".error_ratio", oc.ErrorRatio))
	}
	if math.IsNaN(oc.Weight) || math.IsInf(oc.Weight, 0) || oc.Weight < 0 {
		errs = append(errs, fmt.Errorf("%q: must be >= 0, got %v", path+".weight", oc.Weight))
	}
	errs = append(errs, validateAttrs(path+".attributes", oc.Attributes))
	for ei := range oc.Events {
		ec := &oc.Events[ei]
		epath := fmt.Sprintf("%s.events[%d]", path, ei)
		if ec.Name == "" {
			errs = append(errs, fmt.Errorf("%q: must not be empty", epath+".name"))
		}
		errs = append(errs, validateAttrs(epath+".attributes", ec.Attributes))
	}
	return errors.Join(errs...)
}

// validateAttrs checks that every attribute has a key and a value pdata
// can hold (strings, numbers, booleans, lists and maps of those).
func validateAttrs(path string, attrs map[string]any) error {
	for _, k := range sortedKeys(attrs, nil) {
		if k == "" {
			return fmt.Errorf("%q: attribute keys must not be empty", path)
		}
		if err := pcommon.NewValueEmpty().FromRaw(normalize(attrs[k])); err != nil {
			return fmt.Errorf("%q: attribute %q: %w", path, k, err)
		}
	}
	return nil
}

// validateCalls checks that every call reaches an operation it may call.
func validateCalls(services []ServiceConfig, idx operationIndex) error {
	var errs []error
	for si := range services {
		sc := &services[si]
		for oi := range sc.Operations {
			for ci := range sc.Operations[oi].Calls {
				cpath := fmt.Sprintf("services[%d].operations[%d].calls[%d]", si, oi, ci)
				errs = append(errs, validateCall(sc.Name, &sc.Operations[oi].Calls[ci], cpath, idx))
			}
		}
	}
	return errors.Join(errs...)
}

func validateCall(caller string, cc *CallConfig, path string, idx operationIndex) error {
	svcName := cc.target(caller)
	svcOps, ok := idx[svcName]
	if !ok {
		return fmt.Errorf("%q: no service named %q", path+".service", svcName)
	}
	target, ok := svcOps[cc.Operation]
	if !ok {
		return fmt.Errorf("%q: service %q has no operation named %q", path+".operation", svcName, cc.Operation)
	}
	if cc.Count < 1 || cc.Count > maxFanOut {
		return fmt.Errorf("%q: must be in [1, %d], got %d", path+".count", maxFanOut, cc.Count)
	}
	if _, paired := callerKind(target.Kind); !paired {
		if svcName != caller {
			// Spans of another process are only reached over the wire.
			return fmt.Errorf("%q: %q of service %q is a %s operation; a call to another service must target a server or consumer operation", path+".operation", cc.Operation, svcName, target.Kind)
		}
		if cc.Name != "" || len(cc.Attributes) > 0 {
			return fmt.Errorf("%q: name and attributes only apply to calls to a server or consumer operation, %q is %s", path, cc.Operation, target.Kind)
		}
	}
	return validateAttrs(path+".attributes", cc.Attributes)
}

// validateGraph checks the call graph: a cycle would make a trace
// infinite, a trace may have at most maxSpansPerTrace spans, and some
// operation must be able to start one.
func validateGraph(services []ServiceConfig, idx operationIndex) error {
	type node struct {
		svc, path string
		state     int // 0 unvisited, 1 on the stack, 2 done
		spans     float64
	}
	nodes := map[*OperationConfig]*node{}
	var order []*OperationConfig
	for si := range services {
		for oi := range services[si].Operations {
			oc := &services[si].Operations[oi]
			nodes[oc] = &node{svc: services[si].Name, path: fmt.Sprintf("services[%d].operations[%d]", si, oi)}
			order = append(order, oc)
		}
	}
	called := map[*OperationConfig]bool{}
	// A depth-first walk counts the spans one execution of an operation
	// produces, children included, and finds cycles on the way.
	var visit func(oc *OperationConfig) error
	visit = func(oc *OperationConfig) error {
		n := nodes[oc]
		switch n.state {
		case 1:
			return fmt.Errorf("%q: calls form a cycle through %s/%s", n.path+".calls", n.svc, oc.Name)
		case 2:
			return nil
		}
		n.state = 1
		n.spans = 1
		for ci := range oc.Calls {
			cc := &oc.Calls[ci]
			target := idx[cc.target(n.svc)][cc.Operation]
			called[target] = true
			if err := visit(target); err != nil {
				return err
			}
			per := nodes[target].spans
			if _, paired := callerKind(target.Kind); paired {
				per++ // the caller-side client or producer span
			}
			n.spans += float64(cc.Count) * per
		}
		n.state = 2
		return nil
	}
	for _, oc := range order {
		if err := visit(oc); err != nil {
			return err
		}
	}

	var errs []error
	hasRoot := false
	for _, oc := range order {
		if called[oc] {
			continue
		}
		if n := nodes[oc]; n.spans > maxSpansPerTrace {
			errs = append(errs, fmt.Errorf("%q: a trace starting at %s/%s has %.0f spans, more than the limit of %d; lower the calls' counts", n.path, n.svc, oc.Name, n.spans, maxSpansPerTrace))
		}
		hasRoot = hasRoot || oc.Weight > 0
	}
	if !hasRoot {
		errs = append(errs, errors.New(`"services": no operation can start a trace: every operation is called by another one or has weight 0`))
	}
	return errors.Join(errs...)
}
