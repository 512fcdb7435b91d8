package spanlogsconnector

import (
	"runtime"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestLimiterMemoryFlat floods a full limiter with unique fingerprints: each
// one evicts the least recently used, and the state's memory must not grow
// (no allocation per new fingerprint once the entry storage is full).
func TestLimiterMemoryFlat(t *testing.T) {
	const maxFP = 1000
	l := newLimiter(maxFP)
	fp := uint64(0)
	for ; fp < 4*maxFP; fp++ { // fill, then churn once so the map settles
		l.allow(fp*0x9e3779b97f4a7c15, 1, 1, 0)
	}
	require.Equal(t, maxFP, l.len())

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	const flood = 200_000
	evicted := 0
	for i := 0; i < flood; i++ {
		fp++
		if l.allow(fp*0x9e3779b97f4a7c15, 1, 1, int64(i)).evicted {
			evicted++
		}
	}
	runtime.ReadMemStats(&after)
	assert.Equal(t, flood, evicted)
	assert.Equal(t, maxFP, l.len())
	assert.Equal(t, maxFP, cap(l.entries))
	// The Go map may occasionally rehash its tombstones in place; what must
	// not happen is an allocation per fingerprint.
	assert.Less(t, after.Mallocs-before.Mallocs, uint64(flood/1000), "allocations during the flood")
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
