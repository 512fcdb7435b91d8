package redmetricsconnector // import "github.com/otelcsp/otelcsp/connector/redmetricsconnector"

import (
	"math"
)

// expoMaxScale is the finest scale of the OpenTelemetry base-2 exponential
// histogram; a data point starts there and is downscaled as its range grows.
const expoMaxScale = 20

// expoHist is an OpenTelemetry exponential histogram of positive values
// (durations) with at most maxSize buckets. Bucket index i at scale s holds
// values in (2^(i/2^s), 2^((i+1)/2^s)].
type expoHist struct {
	scale  int32
	zero   uint64
	offset int32    // index of counts[0]
	counts []uint64 // contiguous buckets offset..offset+len-1
}

func newExpoHist() *expoHist { return &expoHist{scale: expoMaxScale} }

func (e *expoHist) reset() {
	e.zero = 0
	e.offset = 0
	e.counts = e.counts[:0]
	e.scale = expoMaxScale
}

// expoIndex maps v > 0 to its bucket index at scale.
func expoIndex(v float64, scale int32) int32 {
	frac, exp := math.Frexp(v) // v = frac * 2^exp, frac in [0.5, 1)
	if scale <= 0 {
		e := exp - 1
		if frac == 0.5 {
			e-- // exact powers of two sit at the upper bound of the bucket below
		}
		return int32(e) >> -scale
	}
	if frac == 0.5 {
		return (int32(exp-1) << scale) - 1
	}
	return int32(math.Floor(math.Log(v) * math.Ldexp(math.Log2E, int(scale))))
}

// record adds w observations of v.
func (e *expoHist) record(v float64, w uint64, maxSize int32) {
	if v <= 0 || math.IsNaN(v) {
		e.zero += w
		return
	}
	idx := expoIndex(v, e.scale)
	if len(e.counts) == 0 {
		e.offset = idx
		e.counts = append(e.counts, w)
		return
	}
	lo, hi := e.offset, e.offset+int32(len(e.counts))-1
	if idx < lo {
		lo = idx
	}
	if idx > hi {
		hi = idx
	}
	// Downscale until the range fits: each step halves the index range.
	shift := int32(0)
	for int64(hi>>shift)-int64(lo>>shift)+1 > int64(maxSize) {
		shift++
	}
	if shift > 0 {
		e.downscale(shift)
		idx = expoIndex(v, e.scale)
	}
	e.grow(idx)
	e.counts[idx-e.offset] += w
}

// downscale merges buckets so the scale drops by shift.
func (e *expoHist) downscale(shift int32) {
	newOffset := e.offset >> shift
	n := 0
	for i, c := range e.counts {
		j := int((e.offset+int32(i))>>shift - newOffset)
		if j >= n {
			// buckets of the new scale are consecutive, so j is n or n-1
			n = j + 1
			e.counts[j] = 0
		}
		e.counts[j] += c
	}
	e.counts = e.counts[:n]
	e.offset = newOffset
	e.scale -= shift
}

// grow extends counts so idx has a bucket.
func (e *expoHist) grow(idx int32) {
	if idx < e.offset {
		add := int(e.offset - idx)
		n := len(e.counts)
		e.counts = append(e.counts, make([]uint64, add)...)
		copy(e.counts[add:], e.counts[:n])
		clear(e.counts[:add])
		e.offset = idx
		return
	}
	if end := e.offset + int32(len(e.counts)); idx >= end {
		e.counts = append(e.counts, make([]uint64, idx-end+1)...)
	}
}

// merge adds o's counts to e, at the finest scale at which both ranges
// fit maxSize buckets: the buckets of a coarser scale are unions of finer
// ones, so the result is what recording o's values into e would give.
func (e *expoHist) merge(o *expoHist, maxSize int32) {
	e.zero += o.zero
	if len(o.counts) == 0 {
		return
	}
	if len(e.counts) == 0 {
		e.scale, e.offset = o.scale, o.offset
		e.counts = append(e.counts[:0], o.counts...)
		return
	}
	scale := min(e.scale, o.scale)
	lo := min(e.offset>>(e.scale-scale), o.offset>>(o.scale-scale))
	hi := max((e.offset+int32(len(e.counts))-1)>>(e.scale-scale), (o.offset+int32(len(o.counts))-1)>>(o.scale-scale))
	for int64(hi)-int64(lo)+1 > int64(maxSize) {
		scale--
		lo, hi = lo>>1, hi>>1
	}
	if e.scale > scale {
		e.downscale(e.scale - scale)
	}
	shift := o.scale - scale
	for i, n := range o.counts {
		idx := (o.offset + int32(i)) >> shift
		e.grow(idx)
		e.counts[idx-e.offset] += n
	}
}
