package fanoutexporter

import "go.opentelemetry.io/collector/pdata/pcommon"

// split moves the items of incoming batches into one batch per backend, for
// the signals shaped resource -> scope -> item (traces and logs). It owns its
// output batches and reuses them from one split to the next: items are moved
// (pdata's MoveTo swaps an item's contents into an existing slot), so once
// the buffers have grown to the batch size a split allocates nothing per
// item. Resource and scope are copied once per (backend, resource, scope)
// group, not per item.
//
// A split is used by one goroutine at a time (the exporter pools them).
type split[D, R, S, I any, RS pslice[R], SS pslice[S], IS pslice[I]] struct {
	shape   *shape[D, R, S, I, RS, SS, IS]
	parts   []D // one per backend, and a last one for items no backend can take
	cursors []cursor[R, IS]
	source  int // counts sources, so that cursors can tell their groups apart
	// owners and items are scratch: each item of the scope being split,
	// and its part.
	owners []int
	items  []I
}

// shape is how to walk and build one signal's pdata.
type shape[D, R, S, I any, RS pslice[R], SS pslice[S], IS pslice[I]] struct {
	newData   func() D
	resources func(D) RS
	scopes    func(R) SS
	items     func(S) IS
	// copyResource and copyScope copy a group's header (resource or scope
	// and schema URL), not its children.
	copyResource func(src, dst R)
	copyScope    func(src, dst S)
	moveItem     func(src, dst I)
	// moveItems moves all of src's items to the end of dst (pdata's
	// MoveAndAppendTo: into an empty dst it hands the slice over whole);
	// newItems makes an empty item slice.
	moveItems func(src, dst IS)
	newItems  func() IS
}

// pslice is what pdata's generated slices have in common.
type pslice[E any] interface {
	Len() int
	At(int) E
	AppendEmpty() E
	RemoveIf(func(E) bool)
}

// cursor is where the next item of one part goes.
type cursor[R any, IS any] struct {
	rsUsed, ssUsed, itemsUsed int
	itemsLen                  int // items.Len() when the scope was opened
	res, scope                int // source identity of the open groups, -1 for none
	rs                        R
	items                     IS
}

func newSplit[D, R, S, I any, RS pslice[R], SS pslice[S], IS pslice[I]](sh *shape[D, R, S, I, RS, SS, IS], n int) *split[D, R, S, I, RS, SS, IS] {
	s := &split[D, R, S, I, RS, SS, IS]{shape: sh, parts: make([]D, n+1), cursors: make([]cursor[R, IS], n+1)}
	for i := range s.parts {
		s.parts[i] = sh.newData()
	}
	s.reset()
	return s
}

func (s *split[D, R, S, I, RS, SS, IS]) reset() {
	for i := range s.cursors {
		s.cursors[i] = cursor[R, IS]{res: -1, scope: -1}
	}
}

// add moves every item of data into the part route returns for it: a
// backend index, or -1 for "no backend".
func (s *split[D, R, S, I, RS, SS, IS]) add(data D, route func(R, I) int) {
	s.source++
	rss := s.shape.resources(data)
	for i := 0; i < rss.Len(); i++ {
		rs := rss.At(i)
		resID := s.source<<24 | i
		sss := s.shape.scopes(rs)
		for j := 0; j < sss.Len(); j++ {
			ss := sss.At(j)
			items := s.shape.items(ss)
			// Route the whole scope first, then move: the routing loop's
			// memory reads (each item, then its key's slot of the ring's
			// 2 MiB table, both usually cache misses) do not depend on
			// one another, so the processor overlaps them; interleaved
			// with the moves it would wait for each in turn.
			s.owners, s.items = s.owners[:0], s.items[:0]
			one := true // every item of the scope goes to one part
			for k, n := 0, items.Len(); k < n; k++ {
				item := items.At(k)
				p := route(rs, item)
				if p < 0 {
					p = len(s.parts) - 1
				}
				one = one && (k == 0 || p == s.owners[0])
				s.owners, s.items = append(s.owners, p), append(s.items, item)
			}
			if one && len(s.owners) > 0 {
				s.moveScope(items, s.owners[0], rs, resID, ss, j)
				clear(s.items)
				continue
			}
			for k, p := range s.owners {
				c := &s.cursors[p]
				if c.res != resID || c.scope != j {
					s.open(c, p, rs, resID, ss, j)
				}
				s.shape.moveItem(s.items[k], s.next(c))
			}
			clear(s.items) // keep no reference to the source
		}
	}
}

// moveScope moves all of items, the items of scope ss, into part p at
// once: a scope whose items all go one way (every scope, with a routing
// key of the resource) is handed over whole instead of item by item. The
// part's new scope then holds the source's items; what it held from an
// earlier split goes, whole, to a slice that is dropped.
func (s *split[D, R, S, I, RS, SS, IS]) moveScope(items IS, p int, rs R, resID int, ss S, scopeID int) {
	c := &s.cursors[p]
	s.open(c, p, rs, resID, ss, scopeID)
	if c.itemsLen > 0 {
		s.shape.moveItems(c.items, s.shape.newItems())
	}
	s.shape.moveItems(items, c.items)
	c.itemsLen = c.items.Len()
	c.itemsUsed = c.itemsLen
}

// open points part p's cursor c at groups under copies of rs's resource
// and ss's scope, opening new ones as the source moves on.
func (s *split[D, R, S, I, RS, SS, IS]) open(c *cursor[R, IS], p int, rs R, resID int, ss S, scopeID int) {
	if c.res != resID {
		s.closeResource(c)
		c.rs = at(s.shape.resources(s.parts[p]), c.rsUsed)
		c.rsUsed++
		s.shape.copyResource(rs, c.rs)
		c.res, c.scope, c.ssUsed = resID, -1, 0
	}
	if c.scope != scopeID {
		s.closeScope(c)
		dss := at(s.shape.scopes(c.rs), c.ssUsed)
		c.ssUsed++
		s.shape.copyScope(ss, dss)
		c.items, c.itemsUsed, c.scope = s.shape.items(dss), 0, scopeID
		c.itemsLen = c.items.Len()
	}
}

// next returns the cursor's next empty item: a reused one while the open
// scope has them from an earlier split (trimmed at finish), else a new one.
func (s *split[D, R, S, I, RS, SS, IS]) next(c *cursor[R, IS]) I {
	i := c.itemsUsed
	c.itemsUsed++
	if i < c.itemsLen {
		return c.items.At(i)
	}
	return c.items.AppendEmpty()
}

func (s *split[D, R, S, I, RS, SS, IS]) closeScope(c *cursor[R, IS]) {
	if c.scope >= 0 {
		truncate(c.items, c.itemsUsed)
	}
}

func (s *split[D, R, S, I, RS, SS, IS]) closeResource(c *cursor[R, IS]) {
	if c.res >= 0 {
		s.closeScope(c)
		truncate(s.shape.scopes(c.rs), c.ssUsed)
	}
}

// finish closes every part's open groups and trims what the previous use
// left beyond them; the parts then hold exactly what was added since the
// last finish.
func (s *split[D, R, S, I, RS, SS, IS]) finish() []D {
	for p := range s.cursors {
		c := &s.cursors[p]
		s.closeResource(c)
		truncate(s.shape.resources(s.parts[p]), c.rsUsed)
	}
	s.reset()
	return s.parts
}

// at returns element i of sl, appending an empty one when i == Len.
func at[E any, S pslice[E]](sl S, i int) E {
	if i < sl.Len() {
		return sl.At(i)
	}
	return sl.AppendEmpty()
}

// truncate drops the elements of sl from n on.
func truncate[E any, S pslice[E]](sl S, n int) {
	if sl.Len() <= n {
		return
	}
	i := 0
	sl.RemoveIf(func(E) bool { i++; return i > n })
}

// copyResource copies src into dst unless dst, a reused buffer, holds an
// equal resource already: batch after batch the same resources come back,
// and comparing their attributes is much cheaper than copying them (which
// allocates every value). Entity references, not in the public API, are
// not compared; they go with the attributes that identify the entity.
func copyResource(src, dst pcommon.Resource) {
	if src.DroppedAttributesCount() != dst.DroppedAttributesCount() || !src.Attributes().Equal(dst.Attributes()) {
		src.CopyTo(dst)
	}
}

// copyScope is copyResource for instrumentation scopes.
func copyScope(src, dst pcommon.InstrumentationScope) {
	if src.Name() != dst.Name() || src.Version() != dst.Version() ||
		src.DroppedAttributesCount() != dst.DroppedAttributesCount() || !src.Attributes().Equal(dst.Attributes()) {
		src.CopyTo(dst)
	}
}
