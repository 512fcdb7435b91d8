//go:build race

package fanoutexporter

// raceEnabled makes the heaviest ring tests use fewer keys under -race.
const raceEnabled = true
