package fanoutexporter

import (
	"context"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/pdata/plog"
)

var logsShape = &shape[plog.Logs, plog.ResourceLogs, plog.ScopeLogs, plog.LogRecord,
	plog.ResourceLogsSlice, plog.ScopeLogsSlice, plog.LogRecordSlice]{
	newData:   plog.NewLogs,
	resources: plog.Logs.ResourceLogs,
	scopes:    plog.ResourceLogs.ScopeLogs,
	items:     plog.ScopeLogs.LogRecords,
	copyResource: func(src, dst plog.ResourceLogs) {
		copyResource(src.Resource(), dst.Resource())
		dst.SetSchemaUrl(src.SchemaUrl())
	},
	copyScope: func(src, dst plog.ScopeLogs) {
		copyScope(src.Scope(), dst.Scope())
		dst.SetSchemaUrl(src.SchemaUrl())
	},
	moveItem:  plog.LogRecord.MoveTo,
	moveItems: plog.LogRecordSlice.MoveAndAppendTo,
	newItems:  plog.NewLogRecordSlice,
}

type logsSplit = split[plog.Logs, plog.ResourceLogs, plog.ScopeLogs, plog.LogRecord,
	plog.ResourceLogsSlice, plog.ScopeLogsSlice, plog.LogRecordSlice]

// logsSplitter routes each log record by the hash of its routing key.
type logsSplitter struct {
	*logsSplit
	key func(plog.ResourceLogs, plog.LogRecord) uint64
	// perResource is set for keys of the resource alone.
	perResource bool
}

func (s logsSplitter) add(ld plog.Logs, choose func(uint64, int) int) {
	key := s.key
	if s.perResource {
		key = onePerResource(key)
	}
	s.logsSplit.add(ld, func(rl plog.ResourceLogs, lr plog.LogRecord) int {
		return choose(key(rl, lr), 1)
	})
}

// logKeyFunc returns the hash of a log record's routing key.
func logKeyFunc(key string, attrs []string) func(plog.ResourceLogs, plog.LogRecord) uint64 {
	switch key {
	case keyService:
		return func(rl plog.ResourceLogs, _ plog.LogRecord) uint64 { return serviceHash(rl.Resource()) }
	case keyResource:
		return func(rl plog.ResourceLogs, _ plog.LogRecord) uint64 { return resourceHash(rl.Resource()) }
	case keyAttributes:
		return func(rl plog.ResourceLogs, lr plog.LogRecord) uint64 {
			return attributesHash(attrs, lr.Attributes(), rl.Resource().Attributes())
		}
	default:
		// Records of a trace go where its spans go; records outside any
		// trace go by service, so they at least stay together.
		return func(rl plog.ResourceLogs, lr plog.LogRecord) uint64 {
			if id := lr.TraceID(); !id.IsEmpty() {
				return traceIDHash(id)
			}
			return serviceHash(rl.Resource())
		}
	}
}

func logsOps(cfg *Config, key string, sub subExporter) signalOps[plog.Logs] {
	keyFn := logKeyFunc(key, cfg.RoutingAttributes)
	return signalOps[plog.Logs]{
		newSplit: func(n int) splitter[plog.Logs] {
			return logsSplitter{logsSplit: newSplit(logsShape, n), key: keyFn, perResource: key == keyService || key == keyResource}
		},
		count:    plog.Logs.LogRecordCount,
		moveAll:  func(src, dst plog.Logs) { src.ResourceLogs().MoveAndAppendTo(dst.ResourceLogs()) },
		empty:    plog.NewLogs,
		withData: func(err error, ld plog.Logs) error { return consumererror.NewLogs(err, ld) },
		newSub: func(ctx context.Context, set exporter.Settings, endpoint string) (component.Component, func(context.Context, plog.Logs) error, error) {
			exp, err := sub.logs(ctx, set, endpoint)
			if err != nil {
				return nil, nil, err
			}
			return exp, exp.ConsumeLogs, nil
		},
	}
}
