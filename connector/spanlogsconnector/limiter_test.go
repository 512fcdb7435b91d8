package spanlogsconnector

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestLimiterMemoryFlat floods a full limiter with unique fingerprints: each
// one evicts the least recently used, and the state must stay at its bound:
// as many fingerprints as max, in the entry storage allocated for max (no
// entry per new fingerprint). BenchmarkLimiterFlood measures the
// allocations (0 allocs/op).
func TestLimiterMemoryFlat(t *testing.T) {
	const maxFP = 1000
	l := newLimiter(maxFP)
	fp := uint64(0)
	for ; fp < maxFP; fp++ {
		l.allow(fp*0x9e3779b97f4a7c15, 1, 1, 0)
	}
	require.Equal(t, maxFP, l.len())
	require.Equal(t, maxFP, cap(l.entries))

	const flood = 20_000
	evicted := 0
	for i := 0; i < flood; i++ {
		fp++
		if l.allow(fp*0x9e3779b97f4a7c15, 1, 1, int64(i)).evicted {
			evicted++
		}
	}
	assert.Equal(t, flood, evicted)
	assert.Equal(t, maxFP, l.len())
	assert.Equal(t, maxFP, cap(l.entries), "entry storage is recycled, never grown past max")
	assert.Len(t, l.entries, maxFP)
}

// BenchmarkLimiterFlood is a full limiter taking one unique fingerprint per
// op, each evicting the least recently used: 0 allocs/op once the Go map
// has settled (it may rehash its tombstones in place now and then).
func BenchmarkLimiterFlood(b *testing.B) {
	const maxFP = 1000
	l := newLimiter(maxFP)
	fp := uint64(0)
	for ; fp < 4*maxFP; fp++ { // fill, then churn so the map settles
		l.allow(fp*0x9e3779b97f4a7c15, 1, 1, 0)
	}
	b.ReportAllocs()
	for b.Loop() {
		fp++
		if !l.allow(fp*0x9e3779b97f4a7c15, 1, 1, int64(fp)).evicted {
			b.Fatal("a new fingerprint in a full limiter must evict one")
		}
	}
}

func TestLimiterTokenBucket(t *testing.T) {
	l := newLimiter(10)
	const sec = int64(1e9)
	// rate 2/s, burst 3
	got := func(now int64) bool { return l.allow(7, 2, 3, now).allow }
	assert.True(t, got(0))
	assert.True(t, got(0))
	assert.True(t, got(0))
	assert.False(t, got(0))
	assert.False(t, got(sec/4)) // half a token
	d := l.allow(7, 2, 3, sec/2)
	assert.True(t, d.allow)
	assert.EqualValues(t, 2, d.suppressed)
	// A clock going backwards refills nothing and breaks nothing.
	assert.False(t, got(0))
	assert.True(t, got(10*sec))
}
