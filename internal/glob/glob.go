// Copyright The otelcsp Authors
// SPDX-License-Identifier: Apache-2.0

// Package glob is the module's one glob matcher, for breaker keys and the
// spanlogs connector's names: `*` matches any run of characters (including
// `/` and `:`, which endpoints and URL paths contain, and `*` itself), `?`
// exactly one character (a UTF-8 rune), and every other character only
// itself; there is no escape and no other syntax, so an IPv6 endpoint such
// as `[::1]:4317` is a plain key. The common shapes (literal, prefix*,
// *suffix, *infix*, *) are classified when compiled, so matching them is one
// strings call; the others use an allocation-free backtracking matcher.
//
// github.com/gobwas/glob, already in the binary's module graph, was tried
// first, with every meta character but `*` and `?` quoted, and fuzzed
// against the reference matcher of the tests: v0.2.3 (its latest release)
// answers `00*0` ~ `00` (a prefix and suffix that overlap) and `?` ~ “
// true, and reads a NUL as the end of the pattern, so it cannot express
// these patterns faithfully.
package glob // import "github.com/otelcsp/otelcsp/internal/glob"

import (
	"strings"
	"unicode/utf8"
)

// Glob is a compiled pattern. The zero Glob is the empty pattern: it
// matches only "".
type Glob struct {
	pat  string
	lit  string
	kind kind
}

type kind uint8

const (
	exact kind = iota
	anything
	prefix
	suffix
	contains
	general
)

// Compile classifies pattern; every pattern is valid.
func Compile(pattern string) Glob {
	g := Glob{pat: pattern}
	if strings.ContainsRune(pattern, '?') {
		g.kind = general
		return g
	}
	stars := strings.Count(pattern, "*")
	switch {
	case stars == 0:
		g.kind, g.lit = exact, pattern
	case strings.Trim(pattern, "*") == "":
		g.kind = anything
	case stars == 1 && strings.HasSuffix(pattern, "*"):
		g.kind, g.lit = prefix, pattern[:len(pattern)-1]
	case stars == 1 && strings.HasPrefix(pattern, "*"):
		g.kind, g.lit = suffix, pattern[1:]
	case stars == 2 && strings.HasPrefix(pattern, "*") && strings.HasSuffix(pattern, "*"):
		g.kind, g.lit = contains, pattern[1:len(pattern)-1]
	default:
		g.kind = general
	}
	return g
}

// Match reports whether the whole of s matches the pattern.
func (g Glob) Match(s string) bool {
	switch g.kind {
	case anything:
		return true
	case exact:
		return s == g.lit
	case prefix:
		return strings.HasPrefix(s, g.lit)
	case suffix:
		return strings.HasSuffix(s, g.lit)
	case contains:
		return strings.Contains(s, g.lit)
	default:
		return matchGeneral(g.pat, s)
	}
}

// MatchesAll says whether the pattern matches every string (only stars).
func (g Glob) MatchesAll() bool { return g.kind == anything }

// String returns the pattern as written.
func (g Glob) String() string { return g.pat }

// matchGeneral is the classic linear-time wildcard match: on a mismatch it
// backtracks to just after the last `*`, letting that star absorb one more
// character. A `*` in the pattern is always a wildcard, even where the input
// holds a literal `*`. The input is walked by runes where a wildcard
// consumes, so `?` is one character and a star never splits one.
func matchGeneral(p, s string) bool {
	pi, si := 0, 0
	star, mark := -1, 0
	for si < len(s) {
		switch {
		case pi < len(p) && p[pi] == '*':
			star, mark = pi, si
			pi++
		case pi < len(p) && p[pi] == '?':
			_, w := utf8.DecodeRuneInString(s[si:])
			pi++
			si += w
		case pi < len(p) && p[pi] == s[si]:
			pi++
			si++
		case star >= 0:
			_, w := utf8.DecodeRuneInString(s[mark:])
			pi = star + 1
			mark += w
			si = mark
		default:
			return false
		}
	}
	for pi < len(p) && p[pi] == '*' {
		pi++
	}
	return pi == len(p)
}
