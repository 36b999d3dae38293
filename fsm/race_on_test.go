//go:build race

package fsm

// raceEnabled reports whether the tests run under the race detector, which
// makes SQLite (transpiled C) tens of times slower.
const raceEnabled = true
