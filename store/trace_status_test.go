package store_test

import (
	"testing"
	"time"

	"passgate/pass"
	"passgate/store"
)

// TestTraceResultOnly: a selection keeps its contacts' rows and
// summaries, drops checks none of them was near, and keeps a check cut
// at the row limit, with the result's truncation counts.
func TestTraceResultOnly(t *testing.T) {
	a, b := pass.Subject{1}, pass.Subject{2}
	at := time.Date(2026, 11, 3, 9, 0, 0, 0, time.UTC)
	res := &store.TraceResult{
		Checks: []store.TraceCheck{
			{ScanID: 1, At: at, Contacts: []store.TraceContact{{Subject: a}, {Subject: b}}},
			{ScanID: 2, At: at.Add(time.Hour), Contacts: []store.TraceContact{{Subject: b}}},
			{ScanID: 3, At: at.Add(2 * time.Hour), ContactsOmitted: 4},
		},
		Contacts:    []store.TraceSummary{{Subject: a, Overlaps: 1}, {Subject: b, Overlaps: 2}},
		ContactRows: 3, Truncated: true, Limit: 3, RowsOmitted: 4,
	}
	got := res.Only(map[pass.Subject]bool{a: true})
	if len(got.Checks) != 2 || got.Checks[0].ScanID != 1 || got.Checks[1].ScanID != 3 {
		t.Fatalf("checks %+v, want 1 (near a) and 3 (cut)", got.Checks)
	}
	if len(got.Checks[0].Contacts) != 1 || got.Checks[0].Contacts[0].Subject != a || got.ContactRows != 1 {
		t.Errorf("contacts %+v, rows %d: want only a", got.Checks[0].Contacts, got.ContactRows)
	}
	if len(got.Contacts) != 1 || got.Contacts[0].Subject != a {
		t.Errorf("summary %+v, want only a", got.Contacts)
	}
	if !got.Truncated || got.RowsOmitted != 4 || got.Checks[1].ContactsOmitted != 4 {
		t.Errorf("truncation lost: %+v", got)
	}
	if len(res.Checks[0].Contacts) != 2 || res.ContactRows != 3 {
		t.Error("Only changed the result it was given")
	}
}
