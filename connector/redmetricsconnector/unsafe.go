package redmetricsconnector // import "github.com/otelcsp/otelcsp/connector/redmetricsconnector"

import "unsafe"

// unsafeString views b as a string. Only used on buffers allocated for that
// purpose and never written again (cloneVals).
func unsafeString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

// unsafeBytes views s as bytes, for reading only (decodeKey).
func unsafeBytes(s string) []byte {
	return unsafe.Slice(unsafe.StringData(s), len(s))
}
