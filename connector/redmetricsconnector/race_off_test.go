//go:build !race

package redmetricsconnector

const raceEnabled = false
