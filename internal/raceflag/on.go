//go:build race

package raceflag

// Enabled: this binary is built with the race detector.
const Enabled = true
