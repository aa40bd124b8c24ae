// Package citytrace is the city-wide contact trace: the city health
// commission asks every district hub over NATS request-reply, each hub
// answers from its own scan log (its appliances' scans), and the answers
// are merged with every district that did not answer named.
//
// Only pseudonyms travel: the request carries the person's city subject
// (never an ID number), the answer the checks' places, times and
// decisions and the contacts' subjects (never a name or an ID tail).
package citytrace

import (
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"passgate/cityask"
	"passgate/citylink"
	"passgate/export"
	"passgate/pass"
	"passgate/store"
)

// SubjectPrefix starts the subject a district hub answers traces on:
// citytrace.<district>. Only the city console's user may publish there
// (the engine's permissions, citylink.ConsolePermissions); each hub
// subscribes to its own.
const SubjectPrefix = citylink.TracePrefix

// Subject is the NATS subject district answers traces on.
func Subject(district string) string { return citylink.TraceSubject(district) }

// Limits of the messages.
const (
	// MaxRequest bounds a request: a few subjects and numbers.
	MaxRequest = 2048
	// MaxRows bounds the checks and the contact rows of one district's
	// answer, so that it stays well under the engine's 1 MB payload
	// limit (about 120 bytes a row); more is marked truncated.
	MaxRows = 4000
	// MaxAnswer bounds an answer the requester reads.
	MaxAnswer = 1 << 20
	// Version is the message format's version.
	Version = 1
)

// Request is one trace request to one district.
type Request struct {
	V int `json:"v"`
	// ID names the request in both districts' and the city's audit trails.
	ID string `json:"id"`
	// Asker is the city officer who asked, as the city's audit trail
	// names them.
	Asker    string   `json:"asker"`
	Subjects []string `json:"subjects"` // hex, the city subject first
	FromMS   int64    `json:"from_ms"`
	ToMS     int64    `json:"to_ms"`
	WindowMS int64    `json:"window_ms"`
}

// Answer is one district's answer.
type Answer struct {
	V        int     `json:"v"`
	ID       string  `json:"id"`
	District string  `json:"district"`
	Checks   []Check `json:"checks"`
	// Truncated: the district has more than it sent (MaxRows).
	Truncated     bool `json:"truncated,omitempty"`
	ChecksOmitted int  `json:"checks_omitted,omitempty"`
	RowsOmitted   int  `json:"rows_omitted,omitempty"`
	// Error is set, and nothing else, when the district refused or
	// failed: a safe message, never the request's content.
	Error string `json:"error,omitempty"`
}

// Refusal is the district's refusal, empty when it answered.
func (a *Answer) Refusal() string { return a.Error }

// Check is one check of the traced person.
type Check struct {
	AtMS     int64     `json:"at_ms"`
	Place    string    `json:"place"` // appliance/source in the district
	Decision string    `json:"decision"`
	Reason   string    `json:"reason,omitempty"`
	Contacts []Contact `json:"contacts,omitempty"`
	// ContactsOmitted: contact rows of this check not sent.
	ContactsOmitted int `json:"contacts_omitted,omitempty"`
}

// Contact is someone else checked near a check of the person.
type Contact struct {
	Subject  string `json:"subject"` // hex
	AtMS     int64  `json:"at_ms"`
	Decision string `json:"decision"`
}

// ErrBadRequest: a request that is not one this package makes.
var ErrBadRequest = errors.New("malformed city trace request")

// Query is a checked request: what a district traces.
type Query struct {
	ID, Asker string
	Subjects  []pass.Subject
	Trace     export.TraceRequest
}

// ParseRequest reads and checks a request: the version, an id, an
// asker, 1 to store.MaxTraceSubjects distinct non-zero subjects, and a
// range and window within the bounds of every trace
// (export.TraceRequest.Validate). Anything else is ErrBadRequest.
func ParseRequest(b []byte) (*Query, error) {
	var r Request
	if err := cityask.DecodeStrict(b, MaxRequest, &r); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadRequest, err)
	}
	bad := func(format string, a ...any) (*Query, error) {
		return nil, fmt.Errorf("%w: %s", ErrBadRequest, fmt.Sprintf(format, a...))
	}
	switch {
	case r.V != Version:
		return bad("version %d", r.V)
	case !cityask.ValidID(r.ID):
		return bad("request id")
	case !cityask.ValidAsker(r.Asker):
		return bad("asker")
	case len(r.Subjects) == 0 || len(r.Subjects) > store.MaxTraceSubjects:
		return bad("%d subjects", len(r.Subjects))
	}
	q := &Query{ID: r.ID, Asker: r.Asker}
	for _, h := range r.Subjects {
		var s pass.Subject
		if len(h) != 2*len(s) {
			return bad("subject length")
		}
		if _, err := hex.Decode(s[:], []byte(h)); err != nil || s.IsZero() {
			return bad("subject")
		}
		for _, o := range q.Subjects {
			if o == s {
				return bad("a subject twice")
			}
		}
		q.Subjects = append(q.Subjects, s)
	}
	const maxMS = 1 << 50 // far beyond any date; keeps time arithmetic exact
	if r.FromMS < 0 || r.ToMS < 0 || r.WindowMS < 0 || r.FromMS > maxMS || r.ToMS > maxMS || r.WindowMS > maxMS {
		return bad("time out of range")
	}
	q.Trace = export.TraceRequest{Subject: q.Subjects[0], Also: q.Subjects[1:],
		From: time.UnixMilli(r.FromMS), To: time.UnixMilli(r.ToMS), Window: time.Duration(r.WindowMS) * time.Millisecond, Limit: MaxRows}
	if err := q.Trace.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadRequest, err)
	}
	return q, nil
}

// ParseAnswer reads a district's answer to request id: bounded, strict,
// from the district asked and about this request.
func ParseAnswer(b []byte, district, id string) (*Answer, error) {
	var a Answer
	if err := cityask.DecodeStrict(b, MaxAnswer, &a); err != nil {
		return nil, fmt.Errorf("answer of %s: %w", district, err)
	}
	switch {
	case a.V != Version:
		return nil, fmt.Errorf("answer of %s: version %d", district, a.V)
	case a.District != district || a.ID != id:
		return nil, fmt.Errorf("answer of %s: names district %q and request %q", district, a.District, a.ID)
	case len(a.Checks) > MaxRows:
		return nil, fmt.Errorf("answer of %s: %d checks", district, len(a.Checks))
	}
	rows := 0
	for _, c := range a.Checks {
		rows += len(c.Contacts)
		for _, ct := range c.Contacts {
			if len(ct.Subject) != 2*len(pass.Subject{}) {
				return nil, fmt.Errorf("answer of %s: contact subject", district)
			}
			if _, err := hex.DecodeString(ct.Subject); err != nil {
				return nil, fmt.Errorf("answer of %s: contact subject", district)
			}
		}
	}
	if rows > MaxRows {
		return nil, fmt.Errorf("answer of %s: %d contact rows", district, rows)
	}
	return &a, nil
}
