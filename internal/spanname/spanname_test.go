package spanname

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// The derived names are spelled out here: a change in pdata's String
// methods must fail this test, not silently rename metric series.
func TestKindNames(t *testing.T) {
	want := []struct {
		k            ptrace.SpanKind
		lower, proto string
	}{
		{ptrace.SpanKindUnspecified, "unspecified", "SPAN_KIND_UNSPECIFIED"},
		{ptrace.SpanKindInternal, "internal", "SPAN_KIND_INTERNAL"},
		{ptrace.SpanKindServer, "server", "SPAN_KIND_SERVER"},
		{ptrace.SpanKindClient, "client", "SPAN_KIND_CLIENT"},
		{ptrace.SpanKindProducer, "producer", "SPAN_KIND_PRODUCER"},
		{ptrace.SpanKindConsumer, "consumer", "SPAN_KIND_CONSUMER"},
	}
	var all []ptrace.SpanKind
	for _, w := range want {
		assert.Equal(t, w.lower, Kind(w.k))
		assert.Equal(t, w.proto, KindProto(w.k))
		all = append(all, w.k)
	}
	assert.Equal(t, all, Kinds())
	for _, bad := range []ptrace.SpanKind{6, 100, -1} {
		assert.Empty(t, Kind(bad), "kind %d", bad)
		assert.Empty(t, KindProto(bad), "kind %d", bad)
	}
}

func TestStatusNames(t *testing.T) {
	want := []struct {
		c            ptrace.StatusCode
		upper, proto string
	}{
		{ptrace.StatusCodeUnset, "UNSET", "STATUS_CODE_UNSET"},
		{ptrace.StatusCodeOk, "OK", "STATUS_CODE_OK"},
		{ptrace.StatusCodeError, "ERROR", "STATUS_CODE_ERROR"},
	}
	for _, w := range want {
		assert.Equal(t, w.upper, Status(w.c))
		assert.Equal(t, w.proto, StatusProto(w.c))
	}
	for _, bad := range []ptrace.StatusCode{3, 1000, -1} {
		assert.Empty(t, Status(bad), "status %d", bad)
		assert.Empty(t, StatusProto(bad), "status %d", bad)
	}
}

// BenchmarkLookups holds the hot-path promise (0 allocs/op).
func BenchmarkLookups(b *testing.B) {
	var n int
	b.ReportAllocs()
	for b.Loop() {
		for _, k := range Kinds() {
			n += len(Kind(k)) + len(KindProto(k))
		}
		n += len(Status(ptrace.StatusCodeError)) + len(StatusProto(ptrace.StatusCodeError))
	}
	if n == 0 {
		b.Fatal("no names")
	}
}
