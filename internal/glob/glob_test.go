// Copyright The otelcsp Authors
// SPDX-License-Identifier: Apache-2.0

package glob

import (
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
)

func TestMatch(t *testing.T) {
	for _, tc := range []struct {
		p, s string
		ok   bool
	}{
		{"*", "", true}, {"*", "http://a/b:1", true}, {"a*", "abc", true}, {"a*c", "abbbc", true},
		{"a?c", "abc", true}, {"a?c", "ac", false}, {"*.svc:4317", "x.ns.svc:4317", true},
		{"*.svc:4317", "x.ns.svc:4318", false}, {"abc", "abd", false}, {"a*b*c", "aXbYc", true}, {"a*b*c", "aXbY", false},
		// A key may contain `*`: the pattern's star is still a wildcard.
		{"a*c", "a*bc", true}, {"a*c", "a*c", true}, {"*a*", "x*a*", true}, {"a**c", "a*b*c", true},
		// No other syntax: brackets, braces, backslashes are literal.
		{"[::1]:4317", "[::1]:4317", true}, {"[ab]", "a", false}, {"{a,b}", "a", false}, {"{a,b}", "{a,b}", true},
		{`a\*`, `a\xyz`, true}, {`a\*`, "a*", false}, {"!x", "!x", true},
		// `?` is one character, not one byte; a star never splits one.
		{"caf?", "café", true}, {"?", "é", true}, {"??", "é", false}, {"*??", "€", false}, {"*?", "€", true},
		// Prefix and suffix must not overlap.
		{"00*0", "00", false}, {"a*a", "a", false}, {"?", "", false},
		{"", "", true}, {"", "a", false}, {"a\x00b", "a\x00b", true}, {"a\x00b", "a", false},
	} {
		g := Compile(tc.p)
		assert.Equal(t, tc.ok, g.Match(tc.s), "%q ~ %q", tc.p, tc.s)
		assert.Equal(t, tc.p, g.String())
	}
	assert.True(t, Glob{}.Match(""), "the zero Glob is the empty pattern")
	assert.False(t, Glob{}.Match("a"))
	assert.True(t, Compile("**").MatchesAll())
	assert.False(t, Compile("*a").MatchesAll())
}

// reference is the textbook matcher everything is checked against:
// dynamic programming over runes, `*` any run, `?` one rune.
func reference(p, s string) bool {
	pr, sr := []rune(p), []rune(s)
	m := make([]bool, len(sr)+1) // m[j]: the pattern so far matches sr[:j]
	m[0] = true
	for i := range pr {
		next := make([]bool, len(sr)+1)
		for j := 0; j <= len(sr); j++ {
			switch pr[i] {
			case '*':
				next[j] = m[j] || (j > 0 && next[j-1])
			case '?':
				next[j] = j > 0 && m[j-1]
			default:
				next[j] = j > 0 && m[j-1] && sr[j-1] == pr[i]
			}
		}
		m = next
	}
	return m[len(sr)]
}

func FuzzMatch(f *testing.F) {
	for _, s := range [][2]string{
		{"*", ""}, {"a*", "abc"}, {"*c", "abc"}, {"*b*", "abc"}, {"a?c", "abc"}, {"a*b*c", "aXbYc"},
		{"a*c", "a*bc"}, {"[::1]:*", "[::1]:4317"}, {"{a,b}*", "{a,b}x"}, {`\*?`, `\xy`}, {"*?*?", "ab"},
		{"*.svc.cluster.local:4317", "gw-0.gw.ns.svc.cluster.local:4317"}, {"caf?", "café"}, {"*??", "€"}, {"00*0", "00"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, p, s string) {
		if !utf8.ValidString(p) || !utf8.ValidString(s) || len(p) > 64 || len(s) > 256 {
			return
		}
		if got, want := Compile(p).Match(s), reference(p, s); got != want {
			t.Fatalf("%q ~ %q: %v, want %v", p, s, got, want)
		}
	})
}

func BenchmarkMatch(b *testing.B) {
	for _, bc := range []struct{ name, p, s string }{
		{"prefix", "backend-*", "backend-12.ns.svc:4317"},
		{"suffix", "*.svc:4317", "backend-12.ns.svc:4317"},
		{"general", "backend-*.ns.svc:43?7", "backend-12.ns.svc:4317"},
	} {
		g := Compile(bc.p)
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if !g.Match(bc.s) {
					b.Fatal("no match")
				}
			}
		})
	}
}
