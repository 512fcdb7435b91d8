package redmetricsconnector // import "github.com/otelcsp/otelcsp/connector/redmetricsconnector"

import (
	"math"
	"strings"

	"go.opentelemetry.io/collector/pdata/pcommon"
)

// adjustedCount returns how many spans this span stands for under
// OpenTelemetry probability sampling: a tracestate entry ot=th:T (T up to 14
// hex digits, right-padded with zeros to 56 bits) means the span was kept
// with probability (2^56-T)/2^56, so it counts 2^56/(2^56-T). Spans without a
// valid threshold count 1.
//
// Counts are integers in OTLP, so a fractional adjusted count is rounded up
// or down with the probability of its fraction, using the span ID's low bits
// as the random draw: unbiased over many spans and deterministic per span.
func adjustedCount(traceState string, spanID pcommon.SpanID) uint64 {
	if traceState == "" {
		return 1
	}
	w := thresholdWeight(traceState)
	if w <= 1 {
		return 1
	}
	whole, frac := math.Modf(w)
	n := uint64(whole)
	if frac > 0 {
		r := uint64(spanID[0])<<56 | uint64(spanID[1])<<48 | uint64(spanID[2])<<40 | uint64(spanID[3])<<32 |
			uint64(spanID[4])<<24 | uint64(spanID[5])<<16 | uint64(spanID[6])<<8 | uint64(spanID[7])
		if float64(r) < frac*(1<<64) {
			n++
		}
	}
	return n
}

// thresholdWeight parses the ot=th value of a W3C tracestate; it returns 1
// when there is none or it is malformed.
func thresholdWeight(ts string) float64 {
	// List members are separated by commas, optionally with blanks.
	for len(ts) > 0 {
		var member string
		if i := strings.IndexByte(ts, ','); i >= 0 {
			member, ts = ts[:i], ts[i+1:]
		} else {
			member, ts = ts, ""
		}
		member = strings.TrimLeft(member, " \t")
		if !strings.HasPrefix(member, "ot=") {
			continue
		}
		val := strings.TrimRight(member[3:], " \t")
		for len(val) > 0 {
			var field string
			if i := strings.IndexByte(val, ';'); i >= 0 {
				field, val = val[:i], val[i+1:]
			} else {
				field, val = val, ""
			}
			if strings.HasPrefix(field, "th:") {
				return weightOfThreshold(field[3:])
			}
		}
		return 1
	}
	return 1
}

func weightOfThreshold(hex string) float64 {
	if len(hex) == 0 || len(hex) > 14 {
		return 1
	}
	var t uint64
	for i := 0; i < len(hex); i++ {
		c := hex[i]
		var d uint64
		switch {
		case c >= '0' && c <= '9':
			d = uint64(c - '0')
		case c >= 'a' && c <= 'f':
			d = uint64(c-'a') + 10
		default:
			return 1 // the spec allows lowercase hex only
		}
		t = t<<4 | d
	}
	t <<= 4 * uint(14-len(hex))
	const maxAdjusted = 1 << 56
	return float64(maxAdjusted) / float64(maxAdjusted-t)
}
