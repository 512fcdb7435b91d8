package spanlogsconnector // import "github.com/otelcsp/otelcsp/connector/spanlogsconnector"

import (
	"hash/maphash"
	"strings"
)

// fingerprinter hashes what makes two records "the same problem": the
// service, the rule, and either the exception type with its normalized stack
// trace (exceptions) or the span name (everything else). maphash runs on a
// stack-allocated Hash, so fingerprinting never allocates.
type fingerprinter struct {
	seed maphash.Seed
}

func newFingerprinter() fingerprinter {
	return fingerprinter{seed: maphash.MakeSeed()}
}

func (f fingerprinter) spanFP(service string, r *rule, spanName string) uint64 {
	var h maphash.Hash
	h.SetSeed(f.seed)
	f.prefix(&h, service, r)
	_, _ = h.WriteString(spanName)
	return h.Sum64()
}

// exceptionFP falls back to the span name when the event has no stack trace,
// so exceptions of one type from different operations stay apart.
func (f fingerprinter) exceptionFP(service string, r *rule, excType, stack, spanName string) uint64 {
	var h maphash.Hash
	h.SetSeed(f.seed)
	f.prefix(&h, service, r)
	_, _ = h.WriteString(excType)
	_ = h.WriteByte(0)
	if stack == "" {
		_ = h.WriteByte(1)
		_, _ = h.WriteString(spanName)
	} else {
		_ = h.WriteByte(2)
		writeNormalizedStack(&h, stack, excType)
	}
	return h.Sum64()
}

func (f fingerprinter) prefix(h *maphash.Hash, service string, r *rule) {
	_, _ = h.WriteString(service)
	_ = h.WriteByte(0)
	_, _ = h.WriteString(r.name)
	_ = h.WriteByte(0)
}

// writeNormalizedStack feeds the parts of a stack trace that identify the
// code path, leaving out what varies between occurrences of one bug:
//   - lines starting with the exception type (Java's first line and
//     Python's last line, "Type: message") carry the message, not the path;
//   - decimal digits (line numbers, goroutine and thread ids, ports, ids in
//     messages) and hexadecimal after "0x" (addresses, pc offsets);
//   - leading and trailing blanks of each line.
func writeNormalizedStack(h *maphash.Hash, stack, excType string) {
	for len(stack) > 0 {
		line := stack
		if i := strings.IndexByte(stack, '\n'); i >= 0 {
			line, stack = stack[:i], stack[i+1:]
		} else {
			stack = ""
		}
		line = strings.TrimSpace(line)
		if line == "" || (excType != "" && strings.HasPrefix(line, excType)) {
			continue
		}
		writeWithoutNumbers(h, line)
		_ = h.WriteByte('\n')
	}
}

func writeWithoutNumbers(h *maphash.Hash, s string) {
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if !isDigit(c) {
			i++
			continue
		}
		if start < i {
			_, _ = h.WriteString(s[start:i])
		}
		j := i + 1
		if c == '0' && j < len(s) && (s[j] == 'x' || s[j] == 'X') {
			j++
			for j < len(s) && isHex(s[j]) {
				j++
			}
		} else {
			for j < len(s) && isDigit(s[j]) {
				j++
			}
		}
		i, start = j, j
	}
	if start < len(s) {
		_, _ = h.WriteString(s[start:])
	}
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func isHex(c byte) bool {
	return isDigit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}
