package district

import (
	"context"
	"time"

	"passgate/pass"
	"passgate/store"
)

// maxTraceIDInput bounds the raw ID number a tracing form or command
// accepts before normalising: twice the longest document number, room
// for spaces and full-width digits (three bytes each) but not for a
// pasted page.
const maxTraceIDInput = 128

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

// TraceSubject turns the ID number of a person to trace into their
// subject pseudonym, after CheckTraceID. The number itself goes no
// further: callers keep only the pseudonym.
func TraceSubject(ctx context.Context, db *store.DB, raw string, now time.Time) (pass.Subject, error) {
	id, err := CheckTraceID(raw, now)
	if err != nil {
		return pass.Subject{}, err
	}
	return SubjectOf(ctx, db, id)
}
