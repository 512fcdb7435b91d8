package spanlogsconnector // import "github.com/otelcsp/otelcsp/connector/spanlogsconnector"

import (
	"fmt"

	iglob "github.com/otelcsp/otelcsp/internal/glob"
)

// glob is a compiled pattern of the module's one glob matcher
// (internal/glob): `*` matches any run of characters (including `/`, unlike
// path.Match, because span names are often URL paths) and `?` exactly one
// character. The common shapes are classified when compiled, so the hot
// path is a single strings call.
type glob struct{ iglob.Glob }

func compileGlob(key, pat string) (glob, error) {
	if pat == "" {
		return glob{}, fmt.Errorf("%q: a glob must not be empty, got %q", key, pat)
	}
	return glob{iglob.Compile(pat)}, nil
}

func (g glob) match(s string) bool { return g.Match(s) }

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
