package district

import (
	"context"
	"time"

	"passgate/pass"
	"passgate/store"
)

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

// SetStatusAfterTrace changes the colour of a contact a trace found, like
// SetSubjectStatus, with the trace's audit record (trace, its seq) named
// in the change's own audit record.
func SetStatusAfterTrace(ctx context.Context, db *store.DB, s pass.Subject, to pass.Color, reason string, actor store.Actor, trace int64) (*store.StatusChange, error) {
	reason, err := CheckStatusChange(to, reason)
	if err != nil {
		return nil, err
	}
	return db.SetStatusAfterTrace(ctx, s, to, reason, actor, trace)
}
