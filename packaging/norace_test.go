//go:build !race

package packaging

// raceEnabled: the tests are built with -race (`make unit`).
const raceEnabled = false
