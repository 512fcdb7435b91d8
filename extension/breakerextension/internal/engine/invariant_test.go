// Copyright The otelcsp Authors
// SPDX-License-Identifier: Apache-2.0

package engine

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestRandomizedStateMachine drives one breaker with random sequences of
// calls, outcomes, time steps and manual changes, checking invariants after
// every step:
//   - permits are conserved: the half-open probe count equals the probes the
//     test holds for the current generation, and the in-flight accounting
//     of stall detection equals the permits the test holds;
//   - never more than half_open_permits probes are in flight;
//   - the generation only grows, and subscribers see it grow in order;
//   - an open (automatic) breaker admits nothing;
//   - the timer belongs to the state: an open breaker has one armed, a
//     closed one none.
func TestRandomizedStateMachine(t *testing.T) {
	type result struct {
		out  Outcome
		hold time.Duration
	}
	outcomes := []result{{Success, 0}, {Success, 0}, {Success, 0}, {Failure, 0}, {Failure, 0}, {Ignored, 0}, {Failure, 1500 * time.Millisecond}, {Ignored, 0}}

	kinds := map[string]int{}
	for seed := uint64(1); seed <= 300; seed++ {
		r := rand.New(rand.NewPCG(seed, 7))
		p := testPolicy()
		p.ConsecutiveFailures = 1 + r.IntN(5)
		p.FailureRatio = []float64{0, 0.3, 0.6}[r.IntN(3)]
		p.MinCalls = 1 + r.IntN(10)
		p.HalfOpenPermits = 1 + r.IntN(3)
		p.SuccessThreshold = 1 + r.IntN(3)
		p.Jitter = r.Float64() * 0.5
		p.MaxOpenDuration = 8 * time.Second
		if r.IntN(2) == 0 {
			p.SlowCallDuration = 200 * time.Millisecond
			p.SlowCallRatio = 0.5
		}
		if r.IntN(2) == 0 {
			p.RampUp = time.Second
		}
		h := newHarness(t, p)
		h.c.Start()
		b := h.br("k")
		var lastGen uint64
		h.c.Subscribe(func(ch Change) {
			if ch.Generation < lastGen {
				t.Fatalf("seed %d: generation went back from %d to %d", seed, lastGen, ch.Generation)
			}
			lastGen = ch.Generation
			kinds[ch.From.String()+">"+ch.To.String()]++
		})

		var held []Permit
		prevGen := wordGen(b.word.Load())
		for step := 0; step < 400; step++ {
			switch op := r.IntN(100); {
			case op < 45:
				pm, ok := b.Allow()
				w := b.word.Load()
				if ok {
					held = append(held, pm)
				} else if b.manualState() == ManualNone && wordState(w) == Closed {
					t.Fatalf("seed %d step %d: closed breaker rejected", seed, step)
				}
			case op < 85:
				if len(held) > 0 {
					i := r.IntN(len(held))
					o := outcomes[r.IntN(len(outcomes))]
					held[i].Done(o.out, o.hold)
					held = append(held[:i], held[i+1:]...)
				}
			case op < 97:
				h.clk.Advance(time.Duration(r.IntN(1200)) * time.Millisecond)
			default:
				require.NoError(t, h.c.SetManual("k", Manual(r.IntN(4))))
			}

			w := b.word.Load()
			gen := wordGen(w)
			if gen < prevGen {
				t.Fatalf("seed %d step %d: generation went back", seed, step)
			}
			prevGen = gen
			b.mu.Lock()
			probes := b.probes
			manual := b.manual
			armed := b.timer != nil
			b.mu.Unlock()
			if st := wordState(w); (st == Open) != armed && st != HalfOpen {
				t.Fatalf("seed %d step %d: %s breaker with timer armed %v", seed, step, st, armed)
			}
			if wordState(w) == HalfOpen {
				var mine int32
				for _, pm := range held {
					if pm.issued() == permitProbe && pm.at.gen == gen {
						mine++
					}
				}
				if probes != mine {
					t.Fatalf("seed %d step %d: breaker counts %d probes in flight, test holds %d", seed, step, probes, mine)
				}
				if probes > int32(p.HalfOpenPermits) {
					t.Fatalf("seed %d step %d: %d probes in flight > %d", seed, step, probes, p.HalfOpenPermits)
				}
			}
			if p.SlowCallDuration > 0 {
				var tracked int64
				for _, pm := range held {
					if pm.start != 0 {
						tracked++
					}
				}
				inflight := b.ancient.Load()
				for i := range b.slots {
					inflight += int64(uint32(b.slots[i].Load()))
				}
				if inflight != tracked {
					t.Fatalf("seed %d step %d: %d calls accounted in flight, test holds %d", seed, step, inflight, tracked)
				}
			}
			if manual == ManualNone && rejects(w&^flagDetached) {
				if _, ok := b.Allow(); ok {
					t.Fatalf("seed %d step %d: open breaker admitted a call", seed, step)
				}
			}
		}
		for _, pm := range held {
			pm.Done(Success, 0)
		}
		h.c.Stop()
	}
	// The sequences must actually exercise the machine.
	for _, k := range []string{"closed>open", "open>half_open", "half_open>open", "half_open>closed"} {
		require.Greater(t, kinds[k], 50, "transition %s seen %d times: %v", k, kinds[k], kinds)
	}
}
