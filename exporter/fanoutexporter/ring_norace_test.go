//go:build !race

package fanoutexporter

const raceEnabled = false
