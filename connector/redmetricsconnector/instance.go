package redmetricsconnector // import "github.com/otelcsp/otelcsp/connector/redmetricsconnector"

import (
	"crypto/rand"
	"fmt"

	"go.opentelemetry.io/collector/pdata/pcommon"
)

// serviceInstanceIDKey is the collector resource attribute the service sets
// on every component's TelemetrySettings (a random UUID per process unless
// service::telemetry::resource sets it).
const serviceInstanceIDKey = "service.instance.id"

// collectorInstanceID is the writer identity added to every series as
// collector.instance.id. It is the collector's own service.instance.id, so
// RED series and the collector's own telemetry name the same instance.
// contrib's span metrics connector (v0.161.0) reads collector.instance.id
// from that same resource, and falls back to a random UUID since the
// collector does not set that key: a collector.instance.id set under
// service::telemetry::resource is therefore honoured first, so a config
// that pinned it for contrib keeps its series. Without either (tests, or a
// host that builds components itself) the value is a random UUID, as in
// contrib.
func collectorInstanceID(res pcommon.Resource) string {
	attrs := res.Attributes()
	for _, k := range []string{collectorInstanceKey, serviceInstanceIDKey} {
		if v, ok := attrs.Get(k); ok {
			if s := v.AsString(); s != "" {
				return s
			}
		}
	}
	return randomUUID()
}

// randomUUID returns a version 4 UUID.
func randomUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand panics rather than return an error)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
