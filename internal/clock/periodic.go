package clock // import "github.com/otelcsp/otelcsp/internal/clock"

import (
	"sync"
	"time"
)

// Periodic is the Loop of a component that flushes or sweeps on a timer:
// started by the component's Start, stopped by its Shutdown. The collector
// may call Shutdown without Start (a pipeline that failed to build), twice,
// or Start after Shutdown; Periodic starts the loop at most once, never
// after Stop, and stops it at most once. The zero value is ready to use.
type Periodic struct {
	mu      sync.Mutex
	loop    *Loop
	stopped bool
}

// Start starts calling fn every d on c's ticker, unless the loop was
// already started or stopped.
func (p *Periodic) Start(c Clock, d time.Duration, fn func()) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.loop != nil || p.stopped {
		return
	}
	p.loop = Every(c, d, fn)
}

// Stop stops the loop, waiting for a call of fn in progress, and says
// whether this was the first Stop (the one that should release what the
// component holds) and whether the loop had been started (so there is
// state to flush a last time).
func (p *Periodic) Stop() (first, started bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopped {
		return false, p.loop != nil
	}
	p.stopped = true
	if p.loop != nil {
		p.loop.Stop()
	}
	return true, p.loop != nil
}
