// Copyright The otelcsp Authors
// SPDX-License-Identifier: Apache-2.0

package engine // import "github.com/otelcsp/otelcsp/extension/breakerextension/internal/engine"

import (
	"math"
	"sort"
	"sync"

	"github.com/otelcsp/otelcsp/internal/glob"
)

// Reasons of outlier ejections (StateChange.Reason, the snapshot's
// last_reason); the key closes again with reason "ejection_elapsed".
const (
	reasonOutlierSuccessRate       = "outlier_success_rate"
	reasonOutlierFailurePercentage = "outlier_failure_percentage"
)

// outlierDetector judges each group's keys against each other every
// interval, as Envoy's outlier detection does. It reads the outcome counters
// the call path keeps anyway, so it adds nothing to Allow or Done: no
// allocation, no lock, no atomic.
type outlierDetector struct {
	groups []glob.Glob
	cfg    OutlierConfig

	mu    sync.Mutex
	hosts map[*Breaker]*outlierHost
}

// outlierHost is what the detector remembers of one key.
type outlierHost struct {
	success, failure uint64 // the key's counters at the last interval
	ejections        int64  // times ejected, less one per good interval
	round            uint64 // the last round that saw the key
}

func newOutlierDetector(cfg OutlierConfig) *outlierDetector {
	d := &outlierDetector{cfg: cfg, hosts: map[*Breaker]*outlierHost{}}
	for _, g := range cfg.Groups {
		d.groups = append(d.groups, glob.Compile(g))
	}
	return d
}

// outlierSample is one key's interval.
type outlierSample struct {
	b             *Breaker
	h             *outlierHost
	calls, failed uint64
	rate          float64
}

// detectOutliers runs every interval from the registry's ticker.
func (r *Registry) detectOutliers(now int64) {
	d := r.od
	d.mu.Lock()
	defer d.mu.Unlock()
	members := make([][]*Breaker, len(d.groups))
	r.Each(func(b *Breaker) {
		for i, g := range d.groups {
			if g.Match(b.key) {
				members[i] = append(members[i], b)
				break
			}
		}
	})
	round := uint64(now)
	for _, m := range members {
		r.judge(m, round)
	}
	for b, h := range d.hosts {
		if h.round != round {
			delete(d.hosts, b) // forgotten or out of every group
		}
	}
}

// judge is one group's interval: success-rate and failure-percentage
// ejection over the keys with request_volume calls, at least
// minimum_hosts of them, at most max_ejection_percent of the group ejected.
func (r *Registry) judge(members []*Breaker, round uint64) {
	d := r.od
	cfg := &d.cfg
	var judged []outlierSample
	ejected := 0
	for _, b := range members {
		h := d.hosts[b]
		if h == nil {
			h = &outlierHost{}
			d.hosts[b] = h
		}
		h.round = round
		s, f := b.nSuccess.Load(), b.nFailure.Load()
		if s < h.success || f < h.failure { // counters retired: a forgotten key
			h.success, h.failure = 0, 0
		}
		ds, df := s-h.success, f-h.failure
		h.success, h.failure = s, f
		if b.isEjected() {
			ejected++
			continue
		}
		if calls := ds + df; calls >= uint64(cfg.RequestVolume) {
			judged = append(judged, outlierSample{b: b, h: h, calls: calls, failed: df, rate: float64(ds) / float64(calls)})
		}
	}
	if len(judged) < cfg.MinimumHosts {
		return
	}
	// Worst first, so the cap on ejections keeps the worst out.
	sort.SliceStable(judged, func(i, j int) bool { return judged[i].rate < judged[j].rate })

	type candidate struct {
		outlierSample
		reason    string
		enforcing int
	}
	var out []candidate
	singled := map[*Breaker]bool{}
	if cfg.EnforcingSuccessRate > 0 {
		var sum float64
		for _, s := range judged {
			sum += s.rate
		}
		mean := sum / float64(len(judged))
		var sq float64
		for _, s := range judged {
			sq += (s.rate - mean) * (s.rate - mean)
		}
		// A tolerance keeps equal rates from singling one out by rounding.
		limit := mean - cfg.StdevFactor*math.Sqrt(sq/float64(len(judged))) - 1e-9
		for _, s := range judged {
			if s.rate < limit {
				out = append(out, candidate{s, reasonOutlierSuccessRate, cfg.EnforcingSuccessRate})
				singled[s.b] = true
			}
		}
	}
	if cfg.EnforcingFailurePercentage > 0 {
		for _, s := range judged {
			if !singled[s.b] && s.failed*100 >= uint64(cfg.Threshold)*s.calls {
				out = append(out, candidate{s, reasonOutlierFailurePercentage, cfg.EnforcingFailurePercentage})
				singled[s.b] = true
			}
		}
	}
	for _, o := range out {
		if ejected*100 >= cfg.MaxEjectionPercent*len(members) {
			break
		}
		if r.random()*100 >= float64(o.enforcing) {
			continue
		}
		o.h.ejections++
		dur := float64(cfg.BaseEjectionTime) * float64(o.h.ejections)
		dur = min(dur, float64(cfg.MaxEjectionTime))
		if cfg.Jitter > 0 {
			dur -= dur * cfg.Jitter * r.random()
		}
		if o.b.eject(max(int64(dur), 1), o.reason) {
			ejected++
		} else {
			o.h.ejections--
		}
	}
	// A key judged and not singled out has behaved for an interval: its
	// next ejection is one step shorter.
	for _, s := range judged {
		if !singled[s.b] && s.h.ejections > 0 {
			s.h.ejections--
		}
	}
}

// isEjected says whether outlier detection holds b open now.
func (b *Breaker) isEjected() bool { return wordState(b.word.Load()) == Ejected }

// eject opens a closed breaker for d on outlier detection's word (reason
// says which ejection): the open period takes no backoff step, and when it
// has elapsed the key returns to service, closed, as an Envoy host is
// unejected, rather than probing. A breaker not closed, or forced open or
// disabled, is left alone.
func (b *Breaker) eject(d int64, reason string) bool {
	b.mu.Lock()
	ok := b.manual != ManualForcedOpen && b.manual != ManualDisabled && b.applyLocked(EvEject, reason, d)
	b.mu.Unlock()
	b.reg.deliver()
	return ok
}
