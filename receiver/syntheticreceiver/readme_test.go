package syntheticreceiver

import (
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/receiver/receivertest"
	"go.yaml.in/yaml/v3"

	"github.com/otelcsp/otelcsp/internal/clock"
)

// TestREADMEExample keeps the README's example honest: every receiver in it
// must unmarshal, validate and build.
func TestREADMEExample(t *testing.T) {
	b, err := os.ReadFile("README.md")
	require.NoError(t, err)
	_, after, ok := strings.Cut(string(b), "## Example\n")
	require.True(t, ok)
	_, after, ok = strings.Cut(after, "```yaml\n")
	require.True(t, ok)
	block, _, ok := strings.Cut(after, "```")
	require.True(t, ok)

	var doc map[string]any
	require.NoError(t, yaml.Unmarshal([]byte(block), &doc))
	recvs, ok := doc["receivers"].(map[string]any)
	require.True(t, ok)
	require.Len(t, recvs, 2)
	for id, raw := range recvs {
		t.Run(id, func(t *testing.T) {
			m, _ := raw.(map[string]any)
			cfg := createDefaultConfig().(*Config)
			require.NoError(t, confmap.NewFromStringMap(m).Unmarshal(cfg))
			require.NoError(t, confmap.Validate(cfg))
			_, err := newReceiver(cfg, receivertest.NewNopSettings(typ), clock.Real{})
			require.NoError(t, err)
		})
	}
}
