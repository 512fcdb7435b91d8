package merge // import "github.com/otelcsp/otelcsp/processor/deltamergeprocessor/internal/merge"

import (
	"math"

	"go.opentelemetry.io/collector/pdata/pmetric"
)

// sumState is the running total of a Sum stream. It stays an integer as
// long as every merged point is an integer and becomes a double (the
// integer total converted once) when a double point arrives.
type sumState struct {
	i        int64
	f        float64
	isDouble bool
}

func validNumber(dp pmetric.NumberDataPoint) bool {
	return dp.ValueType() != pmetric.NumberDataPointValueTypeEmpty
}

func (s *sumState) add(dp pmetric.NumberDataPoint) {
	switch dp.ValueType() {
	case pmetric.NumberDataPointValueTypeInt:
		if s.isDouble {
			s.f += float64(dp.IntValue())
		} else {
			s.i += dp.IntValue()
		}
	case pmetric.NumberDataPointValueTypeDouble:
		if !s.isDouble {
			s.isDouble = true
			s.f = float64(s.i)
			s.i = 0
		}
		s.f += dp.DoubleValue()
	}
}

func (s *sumState) emit(dp pmetric.NumberDataPoint) {
	if s.isDouble {
		dp.SetDoubleValue(s.f)
	} else {
		dp.SetIntValue(s.i)
	}
}

// stats is what explicit and exponential histograms share: count, and
// sum, min and max, each kept only while every merged point that had
// values (count > 0) carried it: a point without a min says nothing about
// its smallest value, so the merged min is unknown from then on.
type stats struct {
	count        uint64
	sum          float64
	min, max     float64
	minSeen      bool
	maxSeen      bool
	noSum        bool
	noMin, noMax bool
}

// statPoint is what a histogram point carries besides its buckets, read
// into a value (an interface here would box the point: one allocation a
// point).
type statPoint struct {
	count          uint64
	sum, min, max  float64
	hasSum         bool
	hasMin, hasMax bool
}

func histStats(dp pmetric.HistogramDataPoint) statPoint {
	return statPoint{dp.Count(), dp.Sum(), dp.Min(), dp.Max(), dp.HasSum(), dp.HasMin(), dp.HasMax()}
}

func expoStats(dp pmetric.ExponentialHistogramDataPoint) statPoint {
	return statPoint{dp.Count(), dp.Sum(), dp.Min(), dp.Max(), dp.HasSum(), dp.HasMin(), dp.HasMax()}
}

func (s *stats) add(dp statPoint) {
	s.count += dp.count
	if dp.count == 0 {
		return
	}
	if dp.hasSum {
		s.sum += dp.sum
	} else {
		s.noSum = true
	}
	if dp.hasMin {
		if !s.minSeen || dp.min < s.min {
			s.min = dp.min
		}
		s.minSeen = true
	} else {
		s.noMin = true
	}
	if dp.hasMax {
		if !s.maxSeen || dp.max > s.max {
			s.max = dp.max
		}
		s.maxSeen = true
	} else {
		s.noMax = true
	}
}

type statSetter interface {
	SetCount(uint64)
	SetSum(float64)
	SetMin(float64)
	SetMax(float64)
}

func (s *stats) emit(dp statSetter) {
	dp.SetCount(s.count)
	if !s.noSum {
		dp.SetSum(s.sum)
	}
	if s.minSeen && !s.noMin {
		dp.SetMin(s.min)
	}
	if s.maxSeen && !s.noMax {
		dp.SetMax(s.max)
	}
}

// histState is the running total of an explicit-bucket Histogram stream.
// Its bounds are those of the first point merged; a point with other
// bounds cannot be added bucket by bucket and is dropped (see mergeHist).
type histState struct {
	stats
	init   bool
	bounds []float64
	counts []uint64
}

// validHist checks the OTLP shape: one more bucket than bounds, or no
// buckets and no bounds (count and sum only).
func validHist(dp pmetric.HistogramDataPoint) bool {
	nb, nc := dp.ExplicitBounds().Len(), dp.BucketCounts().Len()
	return nc == nb+1 || (nb == 0 && nc == 0)
}

// add merges dp; it returns false, changing nothing, when dp's bounds
// differ from the stream's.
func (h *histState) add(dp pmetric.HistogramDataPoint) bool {
	b, c := dp.ExplicitBounds(), dp.BucketCounts()
	if !h.init {
		h.init = true
		h.bounds = make([]float64, b.Len())
		for i := range h.bounds {
			h.bounds[i] = b.At(i)
		}
		h.counts = make([]uint64, c.Len())
	} else {
		if b.Len() != len(h.bounds) || c.Len() != len(h.counts) {
			return false
		}
		for i, x := range h.bounds {
			if b.At(i) != x {
				return false
			}
		}
	}
	for i := range h.counts {
		h.counts[i] += c.At(i)
	}
	h.stats.add(histStats(dp))
	return true
}

func (h *histState) emit(dp pmetric.HistogramDataPoint) {
	h.stats.emit(dp)
	dp.ExplicitBounds().FromRaw(h.bounds)
	dp.BucketCounts().FromRaw(h.counts)
}

// expoBuckets holds the counts of buckets off, off+1, ... of one sign.
type expoBuckets struct {
	off    int32
	counts []uint64
}

func (b *expoBuckets) empty() bool { return len(b.counts) == 0 }

func (b *expoBuckets) hi() int32 { return b.off + int32(len(b.counts)) - 1 }

// downscale merges buckets pairwise d times: index i becomes i >> d.
func (b *expoBuckets) downscale(d int32) {
	if d <= 0 || b.empty() {
		return
	}
	newOff := b.off >> d
	n := int(b.hi()>>d-newOff) + 1
	for i, c := range b.counts {
		b.counts[i] = 0
		b.counts[int((b.off+int32(i))>>d-newOff)] += c
	}
	b.off = newOff
	b.counts = b.counts[:n]
}

// ensure extends the buckets to cover [lo, hi], keeping the counts.
func (b *expoBuckets) ensure(lo, hi int32) {
	if b.empty() {
		b.counts = grow(b.counts[:0], int(hi-lo)+1)
		b.off = lo
		return
	}
	newLo, newHi := min(lo, b.off), max(hi, b.hi())
	n := int(newHi-newLo) + 1
	if n == len(b.counts) {
		return
	}
	shift := int(b.off - newLo)
	old := len(b.counts)
	if n > cap(b.counts) {
		next := make([]uint64, n, n+n/4)
		copy(next[shift:], b.counts)
		b.counts = next
	} else {
		b.counts = b.counts[:n]
		copy(b.counts[shift:shift+old], b.counts[:old])
		clear(b.counts[:shift])
		clear(b.counts[shift+old:])
	}
	b.off = newLo
}

// grow returns s[:n] zeroed, reallocating when its capacity is short.
func grow(s []uint64, n int) []uint64 {
	if n > cap(s) {
		return make([]uint64, n, n+n/4)
	}
	s = s[:n]
	clear(s)
	return s
}

// collapseInto moves the buckets with index <= zi into *zero.
func (b *expoBuckets) collapseInto(zi int32, zero *uint64) {
	if b.empty() || b.off > zi {
		return
	}
	k := int(zi-b.off) + 1
	if k > len(b.counts) {
		k = len(b.counts)
	}
	for _, c := range b.counts[:k] {
		*zero += c
	}
	rest := copy(b.counts, b.counts[k:])
	b.counts = b.counts[:rest]
	b.off = zi + 1
	if rest == 0 {
		b.off = 0
	}
}

// expoState is the running total of an ExponentialHistogram stream, kept
// as the OTLP data model merges them: both sides brought to the smaller
// scale (buckets merged pairwise, never split), further down while the
// merged range of a sign would exceed maxSize buckets, zero thresholds
// widened to the larger one (buckets inside it counted as zero), then
// counts added bucket by bucket.
type expoState struct {
	stats
	init      bool
	scale     int32
	zeroThr   float64
	zeroCount uint64
	pos, neg  expoBuckets
}

// expoView is the incoming point's buckets of one sign.
type expoView struct {
	off    int32
	counts interface {
		Len() int
		At(int) uint64
	}
}

func (v expoView) empty() bool { return v.counts.Len() == 0 }
func (v expoView) hi() int32   { return v.off + int32(v.counts.Len()) - 1 }

// The scales the data model defines.
const (
	minScale = -10
	maxScale = 20
)

// validExpo checks what the merge relies on: a scale the data model
// defines, a zero threshold that is a non-negative number, and bucket
// indexes that fit in int32.
func validExpo(dp pmetric.ExponentialHistogramDataPoint) bool {
	if dp.Scale() < minScale || dp.Scale() > maxScale {
		return false
	}
	if t := dp.ZeroThreshold(); !(t >= 0) || math.IsInf(t, 1) {
		return false
	}
	for _, b := range [2]pmetric.ExponentialHistogramDataPointBuckets{dp.Positive(), dp.Negative()} {
		if int64(b.Offset())+int64(b.BucketCounts().Len()) > math.MaxInt32 {
			return false
		}
	}
	return true
}

func (e *expoState) add(dp pmetric.ExponentialHistogramDataPoint, maxSize int32) {
	p := expoView{dp.Positive().Offset(), dp.Positive().BucketCounts()}
	n := expoView{dp.Negative().Offset(), dp.Negative().BucketCounts()}
	if !e.init {
		e.init = true
		e.scale = dp.Scale()
		e.zeroThr = dp.ZeroThreshold()
	}
	ds := dp.Scale()
	c := min(e.scale, ds)
	c = fitScale(c, e.scale, ds, &e.pos, p, maxSize)
	c = fitScale(c, e.scale, ds, &e.neg, n, maxSize)

	e.pos.downscale(e.scale - c)
	e.neg.downscale(e.scale - c)
	e.scale = c
	shift := ds - c // >= 0

	// Zero thresholds: widen to the larger, rounded up to a bucket
	// boundary at the common scale, so that no bucket straddles it.
	zi, widen := int32(math.MinInt32), false
	if t := dp.ZeroThreshold(); t != e.zeroThr {
		thr := max(t, e.zeroThr)
		if thr > 0 {
			zi = zeroIndex(thr, c)
			widen = true
			e.pos.collapseInto(zi, &e.zeroCount)
			e.neg.collapseInto(zi, &e.zeroCount)
			e.zeroThr = bucketUpper(zi, c)
		} else {
			e.zeroThr = thr
		}
	}

	e.addSign(&e.pos, p, shift, zi, widen)
	e.addSign(&e.neg, n, shift, zi, widen)
	e.zeroCount += dp.ZeroCount()
	e.stats.add(expoStats(dp))
}

func (e *expoState) addSign(b *expoBuckets, v expoView, shift, zi int32, widen bool) {
	if v.empty() {
		return
	}
	lo, hi := v.off>>shift, v.hi()>>shift
	if widen && lo <= zi {
		lo = zi + 1
	}
	if lo <= hi {
		b.ensure(lo, hi)
	}
	for i := 0; i < v.counts.Len(); i++ {
		c := v.counts.At(i)
		if c == 0 {
			continue
		}
		idx := (v.off + int32(i)) >> shift
		if widen && idx <= zi {
			e.zeroCount += c
			continue
		}
		b.counts[idx-b.off] += c
	}
}

// fitScale lowers the candidate scale c until the union of the state's
// buckets (at scale es) and the point's (at scale ds) spans at most
// maxSize buckets.
func fitScale(c, es, ds int32, b *expoBuckets, v expoView, maxSize int32) int32 {
	if b.empty() && v.empty() {
		return c
	}
	var lo, hi int64
	first := true
	if !b.empty() {
		lo, hi = int64(b.off>>(es-c)), int64(b.hi()>>(es-c))
		first = false
	}
	if !v.empty() {
		vl, vh := int64(v.off>>(ds-c)), int64(v.hi()>>(ds-c))
		if first {
			lo, hi = vl, vh
		} else {
			lo, hi = min(lo, vl), max(hi, vh)
		}
	}
	for hi-lo+1 > int64(maxSize) && c > minScale {
		c--
		lo >>= 1
		hi >>= 1
	}
	return c
}

// bucketIndex is the data model's MapToIndex: bucket i holds values in
// (base^i, base^(i+1)] with base = 2^(2^-scale).
func bucketIndex(v float64, scale int32) int32 {
	frac, exp := math.Frexp(v)
	if scale <= 0 {
		e := exp - 1
		if frac == 0.5 {
			e--
		}
		return int32(e >> -scale)
	}
	if frac == 0.5 {
		return int32(((exp - 1) << scale) - 1)
	}
	return int32(math.Floor(math.Log(v) * math.Ldexp(math.Log2E, int(scale))))
}

// zeroIndex is the smallest bucket index whose upper boundary is at or
// above thr: the last bucket a zero threshold of thr swallows. It corrects
// bucketIndex's floating-point rounding, so that a threshold already on a
// boundary maps to the same bucket again and never creeps upwards.
func zeroIndex(thr float64, scale int32) int32 {
	i := bucketIndex(thr, scale)
	for i > math.MinInt32 && bucketUpper(i-1, scale) >= thr {
		i--
	}
	for i < math.MaxInt32 && bucketUpper(i, scale) < thr {
		i++
	}
	return i
}

// bucketUpper is the upper boundary base^(i+1) of bucket i.
func bucketUpper(i, scale int32) float64 {
	if scale <= 0 {
		return math.Ldexp(1, int(i+1)<<-scale)
	}
	return math.Exp2(float64(i+1) / float64(int64(1)<<scale))
}

func (e *expoState) emit(dp pmetric.ExponentialHistogramDataPoint) {
	e.stats.emit(dp)
	dp.SetScale(e.scale)
	dp.SetZeroThreshold(e.zeroThr)
	dp.SetZeroCount(e.zeroCount)
	dp.Positive().SetOffset(e.pos.off)
	dp.Positive().BucketCounts().FromRaw(e.pos.counts)
	dp.Negative().SetOffset(e.neg.off)
	dp.Negative().BucketCounts().FromRaw(e.neg.counts)
}
