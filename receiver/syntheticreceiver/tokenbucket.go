package syntheticreceiver // import "github.com/otelcsp/otelcsp/receiver/syntheticreceiver"

import (
	"context"
	"time"

	"github.com/otelcsp/otelcsp/internal/clock"
)

// tokenBucket spreads traces evenly: tokens accrue continuously at rate per
// second, and a batch of n waits until n tokens are there. The bucket holds
// at most burst tokens, so after a stall (a slow consumer, a descheduled
// process) the receiver catches up by at most burst traces instead of
// flooding the pipeline with everything it "owes".
type tokenBucket struct {
	clk    clock.Clock
	rate   float64 // tokens per second
	burst  float64
	tokens float64
	last   time.Time
}

func newTokenBucket(clk clock.Clock, rate float64, batch int) *tokenBucket {
	// A tenth of a second of traffic absorbs timer jitter at high rates;
	// never less than one batch, or a batch could never be taken.
	burst := max(rate/10, float64(batch))
	return &tokenBucket{
		clk:   clk,
		rate:  rate,
		burst: burst,
		// Start with one batch so traffic flows as soon as the receiver starts.
		tokens: float64(batch),
		last:   clk.Now(),
	}
}

func (b *tokenBucket) refill() {
	now := b.clk.Now()
	if el := now.Sub(b.last); el > 0 {
		b.tokens = min(b.burst, b.tokens+el.Seconds()*b.rate)
	}
	b.last = now
}

// take waits until n tokens are available and takes them; it returns early
// with ctx.Err() when ctx is done.
func (b *tokenBucket) take(ctx context.Context, n int) error {
	need := float64(n)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		b.refill()
		if b.tokens >= need {
			b.tokens -= need
			return nil
		}
		wait := time.Duration((need - b.tokens) / b.rate * float64(time.Second))
		if wait < time.Microsecond {
			wait = time.Microsecond
		}
		if err := clock.Sleep(ctx, b.clk, wait); err != nil {
			return err
		}
	}
}
