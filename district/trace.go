package district

import "time"

// CheckTraceID normalises and validates the ID number a tracer typed,
// by CheckIDNumber with no check digit waived.
func CheckTraceID(raw string, now time.Time) (string, error) {
	return CheckIDNumber(raw, now)
}

// looksMainland reports whether a normalised number is meant as a
// mainland ID: 18 characters of which the first 17 are digits.
func looksMainland(id string) bool {
	if len(id) != 18 {
		return false
	}
	for i := 0; i < 17; i++ {
		if id[i] < '0' || id[i] > '9' {
			return false
		}
	}
	return true
}
