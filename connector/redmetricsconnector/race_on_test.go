//go:build race

package redmetricsconnector

// raceEnabled: the race detector allocates (and sync.Pool drops items on
// purpose), so allocation counts are only asserted without it.
const raceEnabled = true
