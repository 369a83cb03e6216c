//go:build race

package rawsock

// raceEnabled: the tests run under the race detector.
const raceEnabled = true
