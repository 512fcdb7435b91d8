package spanlogsconnector

import (
	"hash/maphash"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestGlob(t *testing.T) {
	tests := []struct {
		pat, s string
		want   bool
	}{
		{"*", "", true},
		{"**", "anything", true},
		{"GET /", "GET /", true},
		{"GET /", "GET /x", false},
		{"GET *", "GET /a/b/c", true}, // * crosses slashes
		{"GET *", "POST /", false},
		{"*/health", "GET /health", true},
		{"*/health", "GET /healthz", false},
		{"*user*", "SELECT users", true},
		{"*user*", "SELECT orders", false},
		{"a?c", "abc", true},
		{"a?c", "ac", false},
		{"a*b*c", "a--b--c", true},
		{"a*b*c", "a--c--b", false},
		{"*a*b", "xaxxbxb", true},
		{"GET /api/*/4?", "GET /api/users/42", true},
		{"GET /api/*/4?", "GET /api/users/4", false},
		{"?", "", false},
		{"a*?", "a*", true}, // a literal '*' in the input is not a pattern star (found by FuzzGlob)
		{"*", "*0", true},
		{"caf?", "café", true}, // `?` is one character, not one byte
	}
	for _, tt := range tests {
		g, err := compileGlob("k", tt.pat)
		require.NoError(t, err)
		assert.Equal(t, tt.want, g.match(tt.s), "%q ~ %q", tt.pat, tt.s)
	}
	_, err := compileGlob("rules[0].services[1]", "")
	assert.EqualError(t, err, `"rules[0].services[1]": a glob must not be empty, got ""`)
}

func stackHash(seed maphash.Seed, stack, typ string) uint64 {
	var h maphash.Hash
	h.SetSeed(seed)
	writeNormalizedStack(&h, stack, typ)
	return h.Sum64()
}

func TestNormalizedStack(t *testing.T) {
	seed := maphash.MakeSeed()
	same := [][2]string{
		// line numbers and the message line differ
		{"E: user 1 missing\n  at a.b(A.java:10)\n  at c.d(C.java:20)", "E: user 2 missing\n  at a.b(A.java:11)\n  at c.d(C.java:21)"},
		// Go: goroutine ids, addresses and pc offsets
		{"goroutine 7 [running]:\nmain.f(0xc000012345)\n\t/src/main.go:12 +0x1d", "goroutine 99 [running]:\nmain.f(0xc0000abcde)\n\t/src/main.go:14 +0x2f"},
		// indentation and blank lines
		{"at a.b\n\n   at c.d  \n", "at a.b\nat c.d"},
		// Python: message on the last line
		{"Traceback:\n  File \"x.py\", line 3, in f\nE: bad 42", "Traceback:\n  File \"x.py\", line 9, in f\nE: other"},
	}
	for _, p := range same {
		assert.Equal(t, stackHash(seed, p[0], "E"), stackHash(seed, p[1], "E"), "%q vs %q", p[0], p[1])
	}
	different := [][2]string{
		{"at a.b\nat c.d", "at a.b\nat c.e"},
		{"at a.b\nat c.d", "at c.d\nat a.b"},
		{"at ab", "at a\nb"},
	}
	for _, p := range different {
		assert.NotEqual(t, stackHash(seed, p[0], "E"), stackHash(seed, p[1], "E"), "%q vs %q", p[0], p[1])
	}
}

func TestParseTemplateSegments(t *testing.T) {
	tpl, err := parseTemplate("body", "x {service}{{y}} {attr:a.b} {resource:k}")
	require.NoError(t, err)
	assert.Equal(t, []segment{
		{ph: phLiteral, lit: "x "},
		{ph: phService},
		{ph: phLiteral, lit: "{y} "},
		{ph: phAttr, lit: "a.b"},
		{ph: phLiteral, lit: " "},
		{ph: phResource, lit: "k"},
	}, tpl.segs)
	for _, src := range defaultBodies {
		_, err := parseTemplate("body", src)
		assert.NoError(t, err, src)
	}
}
