package check

import (
	"encoding/json"
	"time"
)

// decisionJSON is the wire form of a decision, shared by the scan API and
// the CLI. Fields that are unknown (the pass did not verify) are null.
type decisionJSON struct {
	Decision  Verdict     `json:"decision"`
	Reason    Reason      `json:"reason"`
	Repeat    bool        `json:"repeat"`
	Holder    *holderJSON `json:"holder"`
	Color     *string     `json:"color"`
	Kind      *string     `json:"kind"`
	Doses     *int        `json:"doses"`
	TestedAt  *time.Time  `json:"tested_at"`
	IssuedAt  *time.Time  `json:"issued_at"`
	ExpiresAt *time.Time  `json:"expires_at"`
	Source    string      `json:"source,omitempty"`
	At        time.Time   `json:"checked_at"`
	ScanID    int64       `json:"scan_id"`
}

type holderJSON struct {
	Name   string `json:"name"`
	IDTail string `json:"id_tail"`
}

// MarshalJSON renders the decision as the scan API documents it.
func (d *Decision) MarshalJSON() ([]byte, error) {
	j := decisionJSON{
		Decision: d.Decision, Reason: d.Reason, Repeat: d.Repeat,
		Source: d.Source, At: d.At.UTC(), ScanID: d.ScanID,
	}
	if d.Color.Valid() {
		j.Holder = &holderJSON{Name: d.Name, IDTail: d.IDTail}
		color, kind, doses := d.Color.String(), d.Kind.String(), d.Doses
		j.Color, j.Kind, j.Doses = &color, &kind, &doses
		j.IssuedAt, j.ExpiresAt = timePtr(d.IssuedAt), timePtr(d.ExpiresAt)
		j.TestedAt = timePtr(d.TestedAt)
	}
	return json.Marshal(j)
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := t.UTC()
	return &u
}
