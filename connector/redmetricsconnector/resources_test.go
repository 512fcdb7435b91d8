package redmetricsconnector

import (
	"hash/maphash"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
)

func attrs(kv map[string]any) pcommon.Map {
	m := pcommon.NewMap()
	_ = m.FromRaw(kv)
	return m
}

func TestResourcesIdentity(t *testing.T) {
	r := newResources(maphash.MakeSeed(), nil, 0)
	a := r.get(attrs(map[string]any{"service.name": "a", "host.name": "h1"}))
	// Same attributes in another order: same resource.
	m := pcommon.NewMap()
	m.PutStr("host.name", "h1")
	m.PutStr("service.name", "a")
	assert.Same(t, a, r.get(m))
	assert.NotSame(t, a, r.get(attrs(map[string]any{"service.name": "a", "host.name": "h2"})))
	assert.NotSame(t, a, r.get(attrs(map[string]any{"service.name": "a"})), "a missing attribute is a different resource")
	assert.NotSame(t, a, r.get(attrs(map[string]any{"service.name": "a", "host.name": int64(1)})))

	keyed := newResources(maphash.MakeSeed(), []string{"service.name"}, 0)
	k := keyed.get(attrs(map[string]any{"service.name": "a", "process.pid": int64(1)}))
	assert.Same(t, k, keyed.get(attrs(map[string]any{"service.name": "a", "process.pid": int64(2)})))
	assert.NotSame(t, k, keyed.get(attrs(map[string]any{"service.name": "b", "process.pid": int64(1)})))
	assert.NotSame(t, k, keyed.get(attrs(map[string]any{"process.pid": int64(1)})))
}

// A resource swept between lookup and series creation is never revived as a
// second live copy: acquire hands out the live resource of that identity.
func TestResourcesAcquireAfterSweep(t *testing.T) {
	r := newResources(maphash.MakeSeed(), nil, 0)
	a := r.get(attrs(map[string]any{"service.name": "a"}))
	r.sweep() // a holds no series: removed
	assert.Equal(t, 0, r.len())
	b := r.acquire(a)
	require.NotSame(t, a, b)
	assert.True(t, a.dead)
	assert.Equal(t, int64(1), b.live.Load())
	assert.Equal(t, 1, r.len())
	assert.Same(t, b, r.get(attrs(map[string]any{"service.name": "a"})))
	r.sweep()
	assert.Equal(t, 1, r.len(), "a resource holding a series survives the sweep")
	r.release(b)
	r.sweep()
	assert.Equal(t, 0, r.len())
}

// The fast cache ignores key contents, so two resources with equal values
// under different keys share a fast hash: they must still be told apart.
func TestResourcesFastCacheCollision(t *testing.T) {
	r := newResources(maphash.MakeSeed(), nil, 0)
	m1, m2 := pcommon.NewMap(), pcommon.NewMap()
	m1.PutStr("service.name", "a")
	m1.PutStr("aaaa", "x")
	m2.PutStr("service.name", "a")
	m2.PutStr("bbbb", "x")
	require.Equal(t, r.fastHash(m1), r.fastHash(m2))
	a, b := r.get(m1), r.get(m2)
	assert.NotSame(t, a, b)
	assert.Same(t, a, r.get(m1))
	assert.Same(t, b, r.get(m2))
	r.sweep()
	assert.Empty(t, r.fast, "entries of removed resources leave the cache")
}
