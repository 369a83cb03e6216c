//go:build race

package h2

// raceEnabled: the tests run under the race detector.
const raceEnabled = true
