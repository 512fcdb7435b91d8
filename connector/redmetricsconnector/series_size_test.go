package redmetricsconnector

import (
	"strings"
	"testing"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The memory figure in the README assumes these sizes.
func TestSeriesLayout(t *testing.T) {
	if got := unsafe.Sizeof(series{}); got != 80 {
		t.Errorf("series is %d bytes, the README says 80 (a size class: 81 would take 96)", got)
	}
	if got := unsafe.Sizeof(tableSlot{}); got != 16 {
		t.Errorf("an index slot is %d bytes, the README says 16", got)
	}
	if got := unsafe.Sizeof(exemplar{}); got != 40 {
		t.Errorf("an exemplar is %d bytes, the README says 40", got)
	}
	if got := unsafe.Sizeof(exRing{}); got != 32 {
		t.Errorf("an exemplar ring is %d bytes, the README says 32", got)
	}
	if got := unsafe.Sizeof(expoHist{}); got != 48 {
		t.Errorf("an exponential histogram's header is %d bytes, the README says 48", got)
	}
	if got := unsafe.Sizeof(pending{}); got != 80 {
		t.Errorf("a pending span is %d bytes, the README says 80", got)
	}
	if got := unsafe.Sizeof(dimVal{}); got != 32 {
		t.Errorf("dimVal is %d bytes, want 32", got)
	}

	// The README's shape: 17 counters and a 45 B key are 184 B of one
	// allocation, in the 192 B size class.
	c, _, _ := newTestConnector(t, createDefaultConfig())
	s := c.newSeries(nil, familySpan, strings.Repeat("k", 45), stamp{})
	if got := (keyWords(int(s.klen)) + len(s.words())) * 8; got != 184 {
		t.Errorf("counters and key take %d bytes, the README says 184", got)
	}
}

// The counters and the key share one allocation: writing every counter
// must leave the key as it was given, and the key must not alias the
// caller's buffer (create passes a view of its scratch key).
func TestSeriesCountersAndKeyShareOneAllocation(t *testing.T) {
	cfg := createDefaultConfig()
	cfg.ServiceGraph.Enabled = true
	c, _, _ := newTestConnector(t, cfg)
	for _, family := range []uint8{familySpan, familyEvent, familyEdge, familyUnpaired} {
		for _, key := range []string{"", "k", "key of nine", strings.Repeat("x", 64)} {
			buf := []byte(key)
			s := c.newSeries(nil, family, unsafeString(buf), stamp{wall: 7, mono: 9})
			for i := range buf {
				buf[i] = '!'
			}
			for i := range s.words() {
				s.words()[i] = ^uint64(0)
			}
			assert.Equal(t, key, s.key(), "family %d", family)
			assert.Equal(t, int64(7), s.start)
			assert.Equal(t, int64(9), s.lastSeen)
			switch family {
			case familySpan:
				assert.Len(t, s.hist(), len(c.bounds)+1)
			case familyEdge:
				assert.Len(t, s.hist(), 2*c.sg.nb)
			default:
				assert.Empty(t, s.hist())
			}
		}
	}

	// An edge's server latency sum sits after its buckets, outside hist,
	// and resetDelta clears it with them.
	s := c.newSeries(nil, familyEdge, "edge", stamp{})
	s.addEdgeSum2(1.5)
	s.addEdgeSum2(2)
	require.InDelta(t, 3.5, s.edgeSum2(), 0)
	for _, n := range s.hist() {
		require.Zero(t, n)
	}
	s.resetDelta()
	require.Zero(t, s.edgeSum2())
	require.Equal(t, "edge", s.key())
}
