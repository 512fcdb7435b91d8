package distribution_test

import (
	"testing"

	"github.com/otelcsp/otelcsp/internal/collectortest"
)

// TestSmokePGOOverlays validates the configs distribution/pgo/refresh.sh and
// measure.sh run: each demo tier with its overlay as a second --config, so
// a change to the demo that the overlay no longer fits (a renamed
// extension, say) fails here rather than when the profile is refreshed.
func TestSmokePGOOverlays(t *testing.T) {
	bin := collectortest.Binary(t)
	for base, overlay := range map[string]string{
		"config.yaml":   "pgo/front.yaml",
		"backends.yaml": "pgo/backends.yaml",
	} {
		t.Run(overlay, func(t *testing.T) {
			if out, err := run(t, bin, "validate", "--config", base, "--config", overlay); err != nil {
				t.Fatalf("validate %s with %s: %v\n%s", base, overlay, err, out)
			}
		})
	}
}
