package store

import (
	"context"

	"passgate/pass"
)

// AuditPhoneShown: a person's phone number was shown to an officer, with
// the reason they gave.
const AuditPhoneShown = "phone_shown"

// SetStatusAfterTrace is SetStatus for a contact found by a trace: the
// status change's audit record names the trace's own record (trace, its
// audit seq), so the trail says why the officer acted.
func (db *DB) SetStatusAfterTrace(ctx context.Context, s pass.Subject, to pass.Color, reason string, actor Actor, trace int64) (*StatusChange, error) {
	return db.setStatus(ctx, s, to, reason, actor, trace)
}

// Only returns the part of res about the contacts in keep: the checks
// near which one of them was, with only those contacts, and their
// summaries. A check left with no contact is dropped (it would read as
// "nobody was near") unless the result was cut there. The truncation
// counts stay: a selection from a cut result is still from one.
func (res *TraceResult) Only(keep map[pass.Subject]bool) *TraceResult {
	out := *res
	out.Checks, out.Contacts, out.ContactRows = nil, nil, 0
	for _, c := range res.Checks {
		sel := c
		sel.Contacts = nil
		for _, ct := range c.Contacts {
			if keep[ct.Subject] {
				sel.Contacts = append(sel.Contacts, ct)
			}
		}
		if len(sel.Contacts) == 0 && sel.ContactsOmitted == 0 {
			continue
		}
		out.ContactRows += len(sel.Contacts)
		out.Checks = append(out.Checks, sel)
	}
	for _, s := range res.Contacts {
		if keep[s.Subject] {
			out.Contacts = append(out.Contacts, s)
		}
	}
	return &out
}
