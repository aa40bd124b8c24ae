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
// whose document type is not asked for: a number of 18 characters that
// starts with 17 digits is a mainland ID and must pass CheckMainlandID
// (date of birth, check digit), so a typo is caught rather than traced as
// a different person; anything else must look like a passport or other
// document number (4 to 32 ASCII letters or digits). It returns the
// normalised number; errors are *FieldError on "id_number".
func CheckTraceID(raw string, now time.Time) (string, error) {
	if len(raw) > maxTraceIDInput {
		return "", &FieldError{"id_number", "too_long"}
	}
	id := pass.NormalizeID(raw)
	if id == "" {
		return "", &FieldError{"id_number", "required"}
	}
	if looksMainland(id) {
		if err := CheckMainlandID(id, now); err != nil {
			return "", err
		}
		return id, nil
	}
	if len(id) < 4 || len(id) > 32 {
		return "", &FieldError{"id_number", "doc_format"}
	}
	for _, r := range id {
		if !(r >= '0' && r <= '9' || r >= 'A' && r <= 'Z') {
			return "", &FieldError{"id_number", "doc_format"}
		}
	}
	return id, nil
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
