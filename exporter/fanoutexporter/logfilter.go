package fanoutexporter

import (
	"strings"

	"go.opentelemetry.io/collector/exporter"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// exporterhelper logs every failed export at ERROR with advice about
// retry and queue settings. Inside the fanout those lines are wrong: a
// backend's failed send is re-routed (the fanout logs it, rate-limited,
// with the backend and the counts), and what the fanout hands back at
// drain_timeout it has already counted and logged once. These settings
// drop exactly those lines and keep everything else.

// quietSettings is for the fanout's own exporterhelper: it drops the
// per-request "Exporting failed" lines for data given up at drain_timeout.
func quietSettings(set exporter.Settings) exporter.Settings {
	return withLogFilter(set, func(e zapcore.Entry, fields []zapcore.Field) bool {
		if !strings.HasPrefix(e.Message, "Exporting failed.") {
			return true
		}
		for _, f := range fields {
			if err, ok := f.Interface.(error); ok && f.Key == "error" && strings.Contains(err.Error(), errDrainTimeout.Error()) {
				return false
			}
		}
		return true
	})
}

// backendSettings is for a backend's exporter: its failed exports are the
// fanout's to report.
func backendSettings(set exporter.Settings) exporter.Settings {
	return withLogFilter(set, func(e zapcore.Entry, _ []zapcore.Field) bool {
		return !strings.HasPrefix(e.Message, "Exporting failed.")
	})
}

func withLogFilter(set exporter.Settings, keep func(zapcore.Entry, []zapcore.Field) bool) exporter.Settings {
	set.Logger = set.Logger.WithOptions(zap.WrapCore(func(c zapcore.Core) zapcore.Core {
		return filterCore{Core: c, keep: keep}
	}))
	return set
}

// filterCore drops the entries keep refuses.
type filterCore struct {
	zapcore.Core
	keep func(zapcore.Entry, []zapcore.Field) bool
}

func (c filterCore) With(fields []zapcore.Field) zapcore.Core {
	return filterCore{Core: c.Core.With(fields), keep: c.keep}
}

func (c filterCore) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if !c.Enabled(e.Level) {
		return ce
	}
	return ce.AddCore(e, c)
}

func (c filterCore) Write(e zapcore.Entry, fields []zapcore.Field) error {
	if !c.keep(e, fields) {
		return nil
	}
	return c.Core.Write(e, fields)
}
