package spanlogsconnector // import "github.com/otelcsp/otelcsp/connector/spanlogsconnector"

import (
	"encoding/hex"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/otelcsp/otelcsp/internal/spanname"
)

// A body template is text with placeholders in braces, parsed once at config
// time into a list of segments; rendering appends to a reused buffer, so
// producing a body costs no allocation beyond the final string.
type placeholder uint8

const (
	phLiteral placeholder = iota
	phService
	phSpanName
	phSpanKind
	phStatusCode
	phStatusMessage
	phDuration
	phDurationMS
	phTraceID
	phSpanID
	phRule
	phThreshold
	phExceptionType
	phExceptionMessage
	phAttr
	phResource
)

// placeholders maps the names users write to what they render; README.md
// documents each one.
var placeholders = map[string]placeholder{
	"service":           phService,
	"span.name":         phSpanName,
	"span.kind":         phSpanKind,
	"status.code":       phStatusCode,
	"status.message":    phStatusMessage,
	"duration":          phDuration,
	"duration_ms":       phDurationMS,
	"trace_id":          phTraceID,
	"span_id":           phSpanID,
	"rule":              phRule,
	"threshold":         phThreshold,
	"exception.type":    phExceptionType,
	"exception.message": phExceptionMessage,
}

const (
	attrPrefix     = "attr:"
	resourcePrefix = "resource:"
)

// defaultBodies give one readable line per rule type.
var defaultBodies = [...]string{
	kindErrors:     "{service} {span.name} failed after {duration}: {status.message}",
	kindExceptions: "{service} {span.name}: {exception.type}: {exception.message}",
	kindSlow:       "{service} {span.name} took {duration} (threshold {threshold})",
	kindAll:        "{service} {span.name} {status.code} in {duration}",
}

type segment struct {
	ph  placeholder
	lit string // literal text, or the attribute key for phAttr/phResource
}

type template struct {
	src  string
	segs []segment
}

// parseTemplate compiles src. `{{` and `}}` stand for literal braces; an
// unknown placeholder or an unclosed brace is an error naming it.
func parseTemplate(key, src string) (template, error) {
	t := template{src: src}
	var lit strings.Builder
	flush := func() {
		if lit.Len() > 0 {
			t.segs = append(t.segs, segment{ph: phLiteral, lit: lit.String()})
			lit.Reset()
		}
	}
	for i := 0; i < len(src); i++ {
		c := src[i]
		switch {
		case c == '{' && i+1 < len(src) && src[i+1] == '{':
			lit.WriteByte('{')
			i++
		case c == '}' && i+1 < len(src) && src[i+1] == '}':
			lit.WriteByte('}')
			i++
		case c == '}':
			return template{}, fmt.Errorf("%q: unmatched '}' at offset %d in %q (write }} for a literal brace)", key, i, src)
		case c == '{':
			end := strings.IndexByte(src[i+1:], '}')
			if end < 0 {
				return template{}, fmt.Errorf("%q: unclosed '{' at offset %d in %q (write {{ for a literal brace)", key, i, src)
			}
			name := src[i+1 : i+1+end]
			seg, ok := lookupPlaceholder(name)
			if !ok {
				return template{}, fmt.Errorf("%q: unknown placeholder {%s} in %q (known: %s, attr:<key>, resource:<key>)", key, name, src, knownPlaceholders())
			}
			flush()
			t.segs = append(t.segs, seg)
			i += end + 1
		default:
			lit.WriteByte(c)
		}
	}
	flush()
	return t, nil
}

func lookupPlaceholder(name string) (segment, bool) {
	if ph, ok := placeholders[name]; ok {
		return segment{ph: ph}, true
	}
	if k, ok := strings.CutPrefix(name, attrPrefix); ok && k != "" {
		return segment{ph: phAttr, lit: k}, true
	}
	if k, ok := strings.CutPrefix(name, resourcePrefix); ok && k != "" {
		return segment{ph: phResource, lit: k}, true
	}
	return segment{}, false
}

func knownPlaceholders() string {
	names := make([]string, 0, len(placeholders))
	for n := range placeholders {
		names = append(names, "{"+n+"}")
	}
	slices.Sort(names)
	return strings.Join(names, " ")
}

// renderInput is what a placeholder can refer to.
type renderInput struct {
	rule      *rule
	service   string
	resource  pcommon.Map
	span      ptrace.Span
	excType   string
	excMsg    string
	threshold time.Duration
}

// render appends the body to buf. Trailing spaces and separators are trimmed
// so a placeholder that renders empty at the end (a span without a status
// message, say) leaves a clean line.
func (t *template) render(buf []byte, in *renderInput) []byte {
	start := len(buf)
	for i := range t.segs {
		s := &t.segs[i]
		switch s.ph {
		case phLiteral:
			buf = append(buf, s.lit...)
		case phService:
			buf = append(buf, in.service...)
		case phSpanName:
			buf = append(buf, in.span.Name()...)
		case phSpanKind:
			buf = append(buf, spanname.Kind(spanKind(in.span))...)
		case phStatusCode:
			buf = append(buf, statusName(in.span.Status().Code())...)
		case phStatusMessage:
			buf = append(buf, in.span.Status().Message()...)
		case phDuration:
			buf = appendDuration(buf, spanDuration(in.span))
		case phDurationMS:
			buf = appendMillis(buf, spanDuration(in.span))
		case phTraceID:
			id := in.span.TraceID()
			buf = hex.AppendEncode(buf, id[:])
		case phSpanID:
			id := in.span.SpanID()
			buf = hex.AppendEncode(buf, id[:])
		case phRule:
			buf = append(buf, in.rule.name...)
		case phThreshold:
			buf = appendDuration(buf, in.threshold)
		case phExceptionType:
			buf = append(buf, in.excType...)
		case phExceptionMessage:
			buf = append(buf, in.excMsg...)
		case phAttr:
			if v, ok := in.span.Attributes().Get(s.lit); ok {
				buf = appendValue(buf, v)
			}
		case phResource:
			if v, ok := in.resource.Get(s.lit); ok {
				buf = appendValue(buf, v)
			}
		}
	}
	end := len(buf)
	for end > start && strings.IndexByte(" :-,;(", buf[end-1]) >= 0 {
		end--
	}
	return buf[:end]
}

func spanDuration(s ptrace.Span) time.Duration {
	st, et := s.StartTimestamp(), s.EndTimestamp()
	if et <= st {
		return 0
	}
	return time.Duration(et - st)
}

// appendValue renders scalar values without allocating; maps, slices and
// bytes go through AsString (rare in bodies).
func appendValue(buf []byte, v pcommon.Value) []byte {
	switch v.Type() {
	case pcommon.ValueTypeStr:
		return append(buf, v.Str()...)
	case pcommon.ValueTypeInt:
		return strconv.AppendInt(buf, v.Int(), 10)
	case pcommon.ValueTypeDouble:
		return strconv.AppendFloat(buf, v.Double(), 'g', -1, 64)
	case pcommon.ValueTypeBool:
		return strconv.AppendBool(buf, v.Bool())
	case pcommon.ValueTypeEmpty:
		return buf
	default:
		return append(buf, v.AsString()...)
	}
}

// appendDuration writes d in the unit that keeps it readable (ns, µs, ms,
// s), with at most three decimals: "850µs", "12.5ms", "2.031s".
func appendDuration(buf []byte, d time.Duration) []byte {
	var v float64
	var unit string
	switch {
	case d < time.Microsecond:
		return append(strconv.AppendInt(buf, int64(d), 10), "ns"...)
	case d < time.Millisecond:
		v, unit = float64(d)/float64(time.Microsecond), "µs"
	case d < time.Second:
		v, unit = float64(d)/float64(time.Millisecond), "ms"
	default:
		v, unit = d.Seconds(), "s"
	}
	v = math.Round(v*1000) / 1000
	return append(strconv.AppendFloat(buf, v, 'f', -1, 64), unit...)
}

func appendMillis(buf []byte, d time.Duration) []byte {
	v := math.Round(float64(d)/float64(time.Millisecond)*1000) / 1000
	return strconv.AppendFloat(buf, v, 'f', -1, 64)
}

// statusName reads a code the OTLP enum does not define as UNSET.
func statusName(c ptrace.StatusCode) string {
	if n := spanname.Status(c); n != "" {
		return n
	}
	return spanname.Status(ptrace.StatusCodeUnset)
}
