//go:build race

package h1

// raceEnabled: the tests run under the race detector.
const raceEnabled = true
