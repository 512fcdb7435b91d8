package fanoutexporter

import (
	"context"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
)

// Metrics are split by metric: the item moved is a whole metric. Keys that
// live on data points (streamID, attributes) first break a metric whose
// data points go to several backends into one metric per backend.
var metricsShape = &shape[pmetric.Metrics, pmetric.ResourceMetrics, pmetric.ScopeMetrics, pmetric.Metric,
	pmetric.ResourceMetricsSlice, pmetric.ScopeMetricsSlice, pmetric.MetricSlice]{
	newData:   pmetric.NewMetrics,
	resources: pmetric.Metrics.ResourceMetrics,
	scopes:    pmetric.ResourceMetrics.ScopeMetrics,
	items:     pmetric.ScopeMetrics.Metrics,
	copyResource: func(src, dst pmetric.ResourceMetrics) {
		copyResource(src.Resource(), dst.Resource())
		dst.SetSchemaUrl(src.SchemaUrl())
	},
	copyScope: func(src, dst pmetric.ScopeMetrics) {
		copyScope(src.Scope(), dst.Scope())
		dst.SetSchemaUrl(src.SchemaUrl())
	},
	moveItem:  pmetric.Metric.MoveTo,
	moveItems: pmetric.MetricSlice.MoveAndAppendTo,
	newItems:  pmetric.NewMetricSlice,
}

type metricsSplit = split[pmetric.Metrics, pmetric.ResourceMetrics, pmetric.ScopeMetrics, pmetric.Metric,
	pmetric.ResourceMetricsSlice, pmetric.ScopeMetricsSlice, pmetric.MetricSlice]

type metricsSplitter struct {
	*metricsSplit
	key func(pmetric.ResourceMetrics, pmetric.Metric, int) uint64
	// perPoint is set for keys that live on data points.
	perPoint bool
	owners   []int // scratch for regroup
}

func (s *metricsSplitter) add(md pmetric.Metrics, choose func(uint64, int) int) {
	if s.perPoint {
		s.regroup(md, choose)
	}
	s.metricsSplit.add(md, func(rm pmetric.ResourceMetrics, m pmetric.Metric) int {
		return choose(s.key(rm, m, 0), dataPointCount(m))
	})
}

// regroup breaks every metric whose data points have several owners into
// one metric per owner, in the same scope, so that afterwards every data
// point of a metric goes where its first one goes.
func (s *metricsSplitter) regroup(md pmetric.Metrics, choose func(uint64, int) int) {
	rms := md.ResourceMetrics()
	for i := 0; i < rms.Len(); i++ {
		rm := rms.At(i)
		sms := rm.ScopeMetrics()
		for j := 0; j < sms.Len(); j++ {
			ms := sms.At(j).Metrics()
			for k, n := 0, ms.Len(); k < n; k++ {
				m := ms.At(k)
				points := dataPointCount(m)
				s.owners = s.owners[:0]
				mixed := false
				for p := range points {
					o := choose(s.key(rm, m, p), 0)
					mixed = mixed || (p > 0 && o != s.owners[0])
					s.owners = append(s.owners, o)
				}
				if mixed {
					splitMetric(ms, m, s.owners)
				}
			}
		}
	}
}

// splitMetric moves the data points of m that are not owned by owners[0]
// into new metrics appended to ms, one per owner, each with m's descriptor.
func splitMetric(ms pmetric.MetricSlice, m pmetric.Metric, owners []int) {
	done := map[int]bool{owners[0]: true}
	for _, o := range owners {
		if done[o] {
			continue
		}
		done[o] = true
		dst := ms.AppendEmpty()
		copyDescriptor(m, dst)
		switch m.Type() {
		case pmetric.MetricTypeGauge:
			movePoints(m.Gauge().DataPoints(), dst.Gauge().DataPoints(), owners, o)
		case pmetric.MetricTypeSum:
			movePoints(m.Sum().DataPoints(), dst.Sum().DataPoints(), owners, o)
		case pmetric.MetricTypeHistogram:
			movePoints(m.Histogram().DataPoints(), dst.Histogram().DataPoints(), owners, o)
		case pmetric.MetricTypeExponentialHistogram:
			movePoints(m.ExponentialHistogram().DataPoints(), dst.ExponentialHistogram().DataPoints(), owners, o)
		case pmetric.MetricTypeSummary:
			movePoints(m.Summary().DataPoints(), dst.Summary().DataPoints(), owners, o)
		}
	}
	// What stays in m is owned by owners[0]: drop the moved-out slots.
	keep := func(i int) bool { return owners[i] == owners[0] }
	switch m.Type() {
	case pmetric.MetricTypeGauge:
		removeMoved(m.Gauge().DataPoints(), keep)
	case pmetric.MetricTypeSum:
		removeMoved(m.Sum().DataPoints(), keep)
	case pmetric.MetricTypeHistogram:
		removeMoved(m.Histogram().DataPoints(), keep)
	case pmetric.MetricTypeExponentialHistogram:
		removeMoved(m.ExponentialHistogram().DataPoints(), keep)
	case pmetric.MetricTypeSummary:
		removeMoved(m.Summary().DataPoints(), keep)
	}
}

// copyDescriptor gives dst m's name, description, unit, metadata and type
// with its temporality and monotonicity, without data points.
func copyDescriptor(m, dst pmetric.Metric) {
	dst.SetName(m.Name())
	dst.SetDescription(m.Description())
	dst.SetUnit(m.Unit())
	m.Metadata().CopyTo(dst.Metadata())
	switch m.Type() {
	case pmetric.MetricTypeGauge:
		dst.SetEmptyGauge()
	case pmetric.MetricTypeSum:
		dst.SetEmptySum().SetAggregationTemporality(m.Sum().AggregationTemporality())
		dst.Sum().SetIsMonotonic(m.Sum().IsMonotonic())
	case pmetric.MetricTypeHistogram:
		dst.SetEmptyHistogram().SetAggregationTemporality(m.Histogram().AggregationTemporality())
	case pmetric.MetricTypeExponentialHistogram:
		dst.SetEmptyExponentialHistogram().SetAggregationTemporality(m.ExponentialHistogram().AggregationTemporality())
	case pmetric.MetricTypeSummary:
		dst.SetEmptySummary()
	}
}

type movable[E any] interface{ MoveTo(E) }

func movePoints[E movable[E], S pslice[E]](src, dst S, owners []int, o int) {
	for i := 0; i < src.Len(); i++ {
		if owners[i] == o {
			src.At(i).MoveTo(dst.AppendEmpty())
		}
	}
}

func removeMoved[E any, S pslice[E]](points S, keep func(int) bool) {
	i := -1
	points.RemoveIf(func(E) bool { i++; return !keep(i) })
}

// dataPointCount is the number of data points of m, whatever its type.
func dataPointCount(m pmetric.Metric) int {
	switch m.Type() {
	case pmetric.MetricTypeGauge:
		return m.Gauge().DataPoints().Len()
	case pmetric.MetricTypeSum:
		return m.Sum().DataPoints().Len()
	case pmetric.MetricTypeHistogram:
		return m.Histogram().DataPoints().Len()
	case pmetric.MetricTypeExponentialHistogram:
		return m.ExponentialHistogram().DataPoints().Len()
	case pmetric.MetricTypeSummary:
		return m.Summary().DataPoints().Len()
	}
	return 0
}

// pointAttributes returns the attributes of data point i of m.
func pointAttributes(m pmetric.Metric, i int) pcommon.Map {
	switch m.Type() {
	case pmetric.MetricTypeGauge:
		return m.Gauge().DataPoints().At(i).Attributes()
	case pmetric.MetricTypeSum:
		return m.Sum().DataPoints().At(i).Attributes()
	case pmetric.MetricTypeHistogram:
		return m.Histogram().DataPoints().At(i).Attributes()
	case pmetric.MetricTypeExponentialHistogram:
		return m.ExponentialHistogram().DataPoints().At(i).Attributes()
	case pmetric.MetricTypeSummary:
		return m.Summary().DataPoints().At(i).Attributes()
	}
	return pcommon.NewMap()
}

// metricKeyFunc returns the hash of the routing key of data point i of a
// metric (keys above the data point ignore i).
func metricKeyFunc(key string, attrs, streamExclude []string) (fn func(pmetric.ResourceMetrics, pmetric.Metric, int) uint64, perPoint bool) {
	switch key {
	case keyResource:
		return func(rm pmetric.ResourceMetrics, _ pmetric.Metric, _ int) uint64 { return resourceHash(rm.Resource()) }, false
	case keyMetric:
		return func(_ pmetric.ResourceMetrics, m pmetric.Metric, _ int) uint64 {
			return newHasher().str(m.Name()).sum()
		}, false
	case keyStreamID:
		return func(rm pmetric.ResourceMetrics, m pmetric.Metric, i int) uint64 {
			h := hashMapExcept(newHasher(), rm.Resource().Attributes(), streamExclude).str(m.Name())
			if i < dataPointCount(m) {
				h = hashMapExcept(h, pointAttributes(m, i), streamExclude)
			}
			return h.sum()
		}, true
	case keyAttributes:
		return func(rm pmetric.ResourceMetrics, m pmetric.Metric, i int) uint64 {
			if i >= dataPointCount(m) {
				return attributesHash(attrs, pcommon.NewMap(), rm.Resource().Attributes())
			}
			return attributesHash(attrs, pointAttributes(m, i), rm.Resource().Attributes())
		}, true
	default:
		return func(rm pmetric.ResourceMetrics, _ pmetric.Metric, _ int) uint64 { return serviceHash(rm.Resource()) }, false
	}
}

func metricsOps(cfg *Config, key string, sub subExporter) signalOps[pmetric.Metrics] {
	keyFn, perPoint := metricKeyFunc(key, cfg.RoutingAttributes, cfg.StreamIDExclude)
	return signalOps[pmetric.Metrics]{
		newSplit: func(n int) splitter[pmetric.Metrics] {
			return &metricsSplitter{metricsSplit: newSplit(metricsShape, n), key: keyFn, perPoint: perPoint}
		},
		count:    pmetric.Metrics.DataPointCount,
		moveAll:  func(src, dst pmetric.Metrics) { src.ResourceMetrics().MoveAndAppendTo(dst.ResourceMetrics()) },
		empty:    pmetric.NewMetrics,
		withData: func(err error, md pmetric.Metrics) error { return consumererror.NewMetrics(err, md) },
		newSub: func(ctx context.Context, set exporter.Settings, endpoint string) (component.Component, func(context.Context, pmetric.Metrics) error, error) {
			exp, err := sub.metrics(ctx, set, endpoint)
			if err != nil {
				return nil, nil, err
			}
			return exp, exp.ConsumeMetrics, nil
		},
	}
}
