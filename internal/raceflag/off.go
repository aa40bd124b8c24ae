//go:build !race

// Package raceflag tells whether the binary is built with the race
// detector, for tests that have nothing for it to find and skip
// themselves under it.
package raceflag

// Enabled: this binary is built with the race detector.
const Enabled = false
