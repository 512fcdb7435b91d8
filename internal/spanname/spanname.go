// Package spanname holds the one copy of the names span kinds and status
// codes are written with: lowercase for configuration and log bodies
// ("server"), and the OTLP protobuf enum names that contrib's span metrics
// put on series ("SPAN_KIND_SERVER", "STATUS_CODE_ERROR").
//
// Every name is derived once, when the package loads, from pdata's own
// SpanKind.String and StatusCode.String ("Server", "Error"), so the tables
// follow pdata instead of restating it; the lookups on the hot path are an
// index into a precomputed array: no formatting, no allocation.
package spanname // import "github.com/otelcsp/otelcsp/internal/spanname"

import (
	"strings"

	"go.opentelemetry.io/collector/pdata/ptrace"
)

// numKinds and numStatuses are the number of values the OTLP enums define;
// pdata numbers them from 0 without gaps.
const (
	numKinds    = int(ptrace.SpanKindConsumer) + 1
	numStatuses = int(ptrace.StatusCodeError) + 1
)

var (
	kinds       [numKinds]ptrace.SpanKind
	kindLower   [numKinds]string
	kindProto   [numKinds]string
	statusUpper [numStatuses]string
	statusProto [numStatuses]string
)

func init() {
	for i := range numKinds {
		k := ptrace.SpanKind(i)
		kinds[i] = k
		kindLower[i] = strings.ToLower(k.String())
		kindProto[i] = "SPAN_KIND_" + strings.ToUpper(k.String())
	}
	for i := range numStatuses {
		c := ptrace.StatusCode(i)
		statusUpper[i] = strings.ToUpper(c.String())
		statusProto[i] = "STATUS_CODE_" + strings.ToUpper(c.String())
	}
}

// Kinds returns every span kind the OTLP enum defines, in enum order. The
// slice is shared: do not modify it.
func Kinds() []ptrace.SpanKind { return kinds[:] }

// Kind returns the lowercase name of k ("server"), or "" when k is not a
// kind the OTLP enum defines.
func Kind(k ptrace.SpanKind) string { return lookup(kindLower[:], k) }

// KindProto returns the OTLP enum name of k ("SPAN_KIND_SERVER"), or ""
// when k is not a kind the enum defines.
func KindProto(k ptrace.SpanKind) string { return lookup(kindProto[:], k) }

// Status returns the uppercase name of c ("ERROR"), or "" when c is not a
// code the OTLP enum defines.
func Status(c ptrace.StatusCode) string { return lookup(statusUpper[:], c) }

// StatusProto returns the OTLP enum name of c ("STATUS_CODE_ERROR"), or ""
// when c is not a code the enum defines.
func StatusProto(c ptrace.StatusCode) string { return lookup(statusProto[:], c) }

// lookup indexes a table by an enum value; negative and unknown values
// (the enums are int32) find "".
func lookup[E ~int32](table []string, v E) string {
	if uint32(v) < uint32(len(table)) {
		return table[v]
	}
	return ""
}
