package fanoutexporter

import (
	"context"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

var tracesShape = &shape[ptrace.Traces, ptrace.ResourceSpans, ptrace.ScopeSpans, ptrace.Span,
	ptrace.ResourceSpansSlice, ptrace.ScopeSpansSlice, ptrace.SpanSlice]{
	newData:   ptrace.NewTraces,
	resources: ptrace.Traces.ResourceSpans,
	scopes:    ptrace.ResourceSpans.ScopeSpans,
	items:     ptrace.ScopeSpans.Spans,
	copyResource: func(src, dst ptrace.ResourceSpans) {
		copyResource(src.Resource(), dst.Resource())
		dst.SetSchemaUrl(src.SchemaUrl())
	},
	copyScope: func(src, dst ptrace.ScopeSpans) {
		copyScope(src.Scope(), dst.Scope())
		dst.SetSchemaUrl(src.SchemaUrl())
	},
	moveItem:  ptrace.Span.MoveTo,
	moveItems: ptrace.SpanSlice.MoveAndAppendTo,
	newItems:  ptrace.NewSpanSlice,
}

type tracesSplit = split[ptrace.Traces, ptrace.ResourceSpans, ptrace.ScopeSpans, ptrace.Span,
	ptrace.ResourceSpansSlice, ptrace.ScopeSpansSlice, ptrace.SpanSlice]

// tracesSplitter routes each span by the hash of its routing key.
type tracesSplitter struct {
	*tracesSplit
	key func(ptrace.ResourceSpans, ptrace.Span) uint64
	// perResource is set for keys of the resource alone.
	perResource bool
}

func (s tracesSplitter) add(td ptrace.Traces, choose func(uint64, int) int) {
	key := s.key
	if s.perResource {
		key = onePerResource(key)
	}
	s.tracesSplit.add(td, func(rs ptrace.ResourceSpans, span ptrace.Span) int {
		return choose(key(rs, span), 1)
	})
}

func tracesOps(cfg *Config, key string, sub subExporter) signalOps[ptrace.Traces] {
	keyFn := spanKeyFunc(key, cfg.RoutingAttributes)
	return signalOps[ptrace.Traces]{
		newSplit: func(n int) splitter[ptrace.Traces] {
			return tracesSplitter{tracesSplit: newSplit(tracesShape, n), key: keyFn, perResource: key == keyService}
		},
		count:    ptrace.Traces.SpanCount,
		moveAll:  func(src, dst ptrace.Traces) { src.ResourceSpans().MoveAndAppendTo(dst.ResourceSpans()) },
		empty:    ptrace.NewTraces,
		withData: func(err error, td ptrace.Traces) error { return consumererror.NewTraces(err, td) },
		newSub: func(ctx context.Context, set exporter.Settings, endpoint string) (component.Component, func(context.Context, ptrace.Traces) error, error) {
			exp, err := sub.traces(ctx, set, endpoint)
			if err != nil {
				return nil, nil, err
			}
			return exp, exp.ConsumeTraces, nil
		},
	}
}
