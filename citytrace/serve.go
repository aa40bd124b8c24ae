package citytrace

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/nats-io/nats.go"

	"passgate/export"
	"passgate/store"
)

// Serve answers the city's trace requests for district on
// Subject(district) from db, the hub's data (its own scans and its
// appliances'), until ctx ends. Who may ask is the engine's to enforce:
// only the city console's user may publish on citytrace.*. Every answer is
// audited at the hub as a trace by "city:<asker>"; every refused request
// is audited with why. It returns at once when it cannot subscribe.
func Serve(ctx context.Context, nc *nats.Conn, db *store.DB, district string) error {
	// A hub answers for its own district only: a wiring mistake must not
	// put one district's scans under another's name.
	d, err := db.District(ctx)
	if err != nil {
		return fmt.Errorf("city trace: %w", err)
	}
	if d.ID != district {
		return fmt.Errorf("city trace: this hub is district %s, not %s", d.ID, district)
	}
	sub, err := nc.Subscribe(Subject(district), func(m *nats.Msg) {
		if m.Reply == "" {
			// Nobody to answer: tracing would be work (and an audit
			// record of a trace) for no one.
			_ = db.Audit(ctx, &store.AuditRecord{Actor: "city", Action: store.AuditCityTraceRefused,
				Detail: store.AuditDetail(map[string]any{"why": "request without a reply subject", "bytes": len(m.Data)})})
			return
		}
		a := answer(ctx, db, district, m.Data)
		b, err := json.Marshal(a)
		if err != nil {
			return
		}
		_ = m.Respond(b) // a requester gone away names this district as missing
	})
	if err != nil {
		return fmt.Errorf("city trace: subscribe: %w", err)
	}
	defer sub.Unsubscribe() //nolint:errcheck // the connection may be closed already
	if err := nc.Flush(); err != nil {
		return fmt.Errorf("city trace: subscribe: %w", err)
	}
	<-ctx.Done()
	return nil
}

// answer is the district's answer to one request's bytes.
func answer(ctx context.Context, db *store.DB, district string, b []byte) *Answer {
	q, err := ParseRequest(b)
	if err != nil {
		if aerr := db.Audit(ctx, &store.AuditRecord{Actor: "city", Action: store.AuditCityTraceRefused,
			Detail: store.AuditDetail(map[string]any{"why": err.Error(), "bytes": len(b)})}); aerr != nil {
			return &Answer{V: Version, District: district, Error: "the district could not record the request"}
		}
		return &Answer{V: Version, District: district, Error: "malformed request"}
	}
	fail := &Answer{V: Version, ID: q.ID, District: district, Error: "the district could not answer"}
	// The hub's links add the district subjects of people carried over
	// to the city subject here.
	for _, s := range q.Subjects {
		linked, err := db.LinkedSubjects(ctx, s)
		if err != nil {
			return fail
		}
		for _, l := range linked {
			if len(q.Subjects) < store.MaxTraceSubjects && !slices.Contains(q.Subjects, l) {
				q.Subjects = append(q.Subjects, l)
			}
		}
	}
	q.Trace.Also = q.Subjects[1:]
	res, err := db.Trace(ctx, q.Trace.Query())
	if err != nil {
		return fail
	}
	if _, err := export.AuditTraceRecord(ctx, db, store.Actor("city:"+q.Asker), &q.Trace, res,
		map[string]any{"via": "city", "request": q.ID}); err != nil {
		return fail
	}
	a := &Answer{V: Version, ID: q.ID, District: district, Truncated: res.Truncated,
		ChecksOmitted: res.ChecksOmitted, RowsOmitted: res.RowsOmitted, Checks: make([]Check, 0, len(res.Checks))}
	for _, c := range res.Checks {
		w := Check{AtMS: c.At.UnixMilli(), Place: c.Source, Decision: c.Decision, Reason: c.Reason, ContactsOmitted: c.ContactsOmitted}
		for _, ct := range c.Contacts {
			w.Contacts = append(w.Contacts, Contact{Subject: hex.EncodeToString(ct.Subject[:]), AtMS: ct.At.UnixMilli(), Decision: ct.Decision})
		}
		a.Checks = append(a.Checks, w)
	}
	return a
}
