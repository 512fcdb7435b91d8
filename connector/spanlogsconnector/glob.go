package spanlogsconnector // import "github.com/otelcsp/otelcsp/connector/spanlogsconnector"

import (
	"fmt"
	"strings"
)

// glob is a compiled pattern where `*` matches any run of characters
// (including `/`, unlike path.Match, because span names are often URL
// paths) and `?` matches exactly one byte. The common shapes (literal,
// prefix*, *suffix, *infix*, *) are classified at config time so the hot
// path is a single strings call; anything else uses an allocation-free
// backtracking matcher.
type glob struct {
	pat  string
	kind globKind
	lit  string
}

type globKind uint8

const (
	globAny globKind = iota
	globExact
	globPrefix
	globSuffix
	globContains
	globGeneral
)

func compileGlob(key, pat string) (glob, error) {
	if pat == "" {
		return glob{}, fmt.Errorf("%q: a glob must not be empty, got %q", key, pat)
	}
	g := glob{pat: pat}
	if strings.ContainsRune(pat, '?') {
		g.kind = globGeneral
		return g, nil
	}
	stars := strings.Count(pat, "*")
	switch {
	case strings.Trim(pat, "*") == "":
		g.kind = globAny
	case stars == 0:
		g.kind, g.lit = globExact, pat
	case stars == 1 && strings.HasSuffix(pat, "*"):
		g.kind, g.lit = globPrefix, pat[:len(pat)-1]
	case stars == 1 && strings.HasPrefix(pat, "*"):
		g.kind, g.lit = globSuffix, pat[1:]
	case stars == 2 && strings.HasPrefix(pat, "*") && strings.HasSuffix(pat, "*"):
		g.kind, g.lit = globContains, pat[1:len(pat)-1]
	default:
		g.kind = globGeneral
	}
	return g, nil
}

func (g glob) match(s string) bool {
	switch g.kind {
	case globAny:
		return true
	case globExact:
		return s == g.lit
	case globPrefix:
		return strings.HasPrefix(s, g.lit)
	case globSuffix:
		return strings.HasSuffix(s, g.lit)
	case globContains:
		return strings.Contains(s, g.lit)
	default:
		return matchGeneral(g.pat, s)
	}
}

// matchGeneral is the classic linear-time wildcard match: on a mismatch it
// backtracks to just after the last `*`, letting that star absorb one more
// byte. No recursion, no allocation.
func matchGeneral(p, s string) bool {
	pi, si := 0, 0
	star, mark := -1, 0
	for si < len(s) {
		switch {
		// The star case comes first: a '*' in the pattern is always a
		// wildcard, even when the input holds a literal '*'.
		case pi < len(p) && p[pi] == '*':
			star, mark = pi, si
			pi++
		case pi < len(p) && (p[pi] == '?' || p[pi] == s[si]):
			pi++
			si++
		case star >= 0:
			pi = star + 1
			mark++
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

// matchAny reports whether any glob matches; an empty list is no filter.
func matchAny(gs []glob, s string) bool {
	if len(gs) == 0 {
		return true
	}
	for i := range gs {
		if gs[i].match(s) {
			return true
		}
	}
	return false
}
