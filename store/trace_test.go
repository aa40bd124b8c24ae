package store_test

import (
	"cmp"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"passgate/pass"
	"passgate/store"
)

// traceWeek fills db with a generated week of scans: people persons, at
// sources places, at random whole seconds (so checks often fall exactly
// N apart), some without a subject (undecodable input), some denied. It
// returns every row as stored.
func traceWeek(t *testing.T, db *store.DB, people, sources, n int, seed uint64) []*store.Scan {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, seed+1))
	week := int64(7 * 24 * 3600)
	scans := make([]*store.Scan, 0, n)
	for i := 0; i < n; i++ {
		s := &store.Scan{
			At:       t0.Add(time.Duration(rng.Int64N(week)) * time.Second),
			Source:   fmt.Sprintf("gate-%d", rng.IntN(sources)),
			Decision: "allow", Reason: "ok",
		}
		if rng.IntN(10) == 0 {
			s.Decision, s.Reason = "deny", "status_red"
		}
		if rng.IntN(20) != 0 { // one in twenty has no subject
			p := rng.IntN(people)
			s.Subject = pass.Subject{0x5b, byte(p >> 8), byte(p)}
			s.PassID = pass.ID{0x9a, byte(p >> 8), byte(p)}
		}
		scans = append(scans, s)
	}
	if err := db.InsertScansBulk(t.Context(), scans); err != nil {
		t.Fatal(err)
	}
	return scans
}

// bruteTrace computes a trace by looking at every row.
func bruteTrace(all []*store.Scan, q store.TraceQuery) *store.TraceResult {
	byTime := func(a, b *store.Scan) int {
		return cmp.Or(a.At.Compare(b.At), cmp.Compare(a.ID, b.ID))
	}
	var mine []*store.Scan
	for _, s := range all {
		if s.Subject == q.Subject && !s.At.Before(q.From) && s.At.Before(q.To) {
			mine = append(mine, s)
		}
	}
	slices.SortFunc(mine, byTime)
	res := &store.TraceResult{}
	for _, m := range mine {
		ch := store.TraceCheck{ScanID: m.ID, At: m.At, Source: m.Source, Decision: m.Decision, Reason: m.Reason, PassID: m.PassID}
		var near []*store.Scan
		for _, s := range all {
			d := s.At.Sub(m.At)
			if s.Source == m.Source && s.Subject != (pass.Subject{}) && s.Subject != q.Subject && d >= -q.Window && d <= q.Window {
				near = append(near, s)
			}
		}
		slices.SortFunc(near, byTime)
		for _, s := range near {
			ch.Contacts = append(ch.Contacts, store.TraceContact{ScanID: s.ID, Subject: s.Subject, At: s.At, Offset: s.At.Sub(m.At), Decision: s.Decision})
			res.ContactRows++
		}
		res.Checks = append(res.Checks, ch)
	}
	return res
}

// bruteSummary folds contacts per subject independently of the store.
func bruteSummary(res *store.TraceResult) map[pass.Subject]string {
	type acc struct {
		checks      map[int64]bool
		first, last time.Time
		places      map[string]bool
	}
	m := map[pass.Subject]*acc{}
	for _, ch := range res.Checks {
		for _, c := range ch.Contacts {
			a := m[c.Subject]
			if a == nil {
				a = &acc{checks: map[int64]bool{}, first: c.At, last: c.At, places: map[string]bool{}}
				m[c.Subject] = a
			}
			a.checks[ch.ScanID] = true
			if c.At.Before(a.first) {
				a.first = c.At
			}
			if c.At.After(a.last) {
				a.last = c.At
			}
			a.places[ch.Source] = true
		}
	}
	out := map[pass.Subject]string{}
	for s, a := range m {
		var places []string
		for p := range a.places {
			places = append(places, p)
		}
		slices.Sort(places)
		out[s] = fmt.Sprintf("%d %d %d %s", len(a.checks), a.first.UnixMilli(), a.last.UnixMilli(), strings.Join(places, ","))
	}
	return out
}

func checkKey(ch store.TraceCheck) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d %d %s %s %s %x:", ch.ScanID, ch.At.UnixMilli(), ch.Source, ch.Decision, ch.Reason, ch.PassID[:])
	for _, c := range ch.Contacts {
		fmt.Fprintf(&b, " [%d %x %d %d %s]", c.ScanID, c.Subject[:], c.At.UnixMilli(), c.Offset.Milliseconds(), c.Decision)
	}
	return b.String()
}

func TestDB_Trace(t *testing.T) {
	t.Parallel()
	db := MustOpenDB(t)
	all := traceWeek(t, db, 300, 10, 20000, 7)

	// Edge cases at exactly ±N and one millisecond beyond, around a check
	// of person 1 at a place of its own.
	p1 := pass.Subject{0x5b, 0, 1}
	base := t0.Add(36 * time.Hour)
	edge := []*store.Scan{
		{At: base, Source: "edge", Decision: "allow", Reason: "ok", Subject: p1},
		{At: base.Add(-15 * time.Minute), Source: "edge", Decision: "allow", Reason: "ok", Subject: pass.Subject{0x5b, 0, 2}},
		{At: base.Add(15 * time.Minute), Source: "edge", Decision: "deny", Reason: "expired", Subject: pass.Subject{0x5b, 0, 3}},
		{At: base.Add(-15*time.Minute - time.Millisecond), Source: "edge", Decision: "allow", Reason: "ok", Subject: pass.Subject{0x5b, 0, 4}},
		{At: base.Add(15*time.Minute + time.Millisecond), Source: "edge", Decision: "allow", Reason: "ok", Subject: pass.Subject{0x5b, 0, 5}},
		{At: base.Add(time.Minute), Source: "edge", Decision: "allow", Reason: "ok", Subject: p1},                             // self: not a contact
		{At: base.Add(2 * time.Minute), Source: "edge", Decision: "deny", Reason: "not_a_pass"},                               // no subject
		{At: base.Add(3 * time.Minute), Source: "edge-2", Decision: "allow", Reason: "ok", Subject: pass.Subject{0x5b, 0, 6}}, // other place
	}
	if err := db.InsertScansBulk(t.Context(), edge); err != nil {
		t.Fatal(err)
	}
	all = append(all, edge...)

	cases := []struct {
		name   string
		person int
		from   time.Time
		to     time.Time
		window time.Duration
	}{
		{"edges", 1, t0, t0.Add(7 * 24 * time.Hour), 15 * time.Minute},
		{"whole week 5m", 17, t0, t0.Add(7 * 24 * time.Hour), 5 * time.Minute},
		{"whole week 1h", 42, t0, t0.Add(7 * 24 * time.Hour), time.Hour},
		{"two days 1m", 99, t0.Add(24 * time.Hour), t0.Add(72 * time.Hour), time.Minute},
		{"one day 24h", 250, t0.Add(48 * time.Hour), t0.Add(72 * time.Hour), 24 * time.Hour},
		{"nobody", 5000, t0, t0.Add(7 * 24 * time.Hour), 15 * time.Minute},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			q := store.TraceQuery{Subject: pass.Subject{0x5b, byte(c.person >> 8), byte(c.person)}, From: c.from, To: c.to, Window: c.window}
			got, err := db.Trace(t.Context(), q)
			if err != nil {
				t.Fatal(err)
			}
			want := bruteTrace(all, q)
			if got.Truncated {
				t.Fatal("truncated")
			}
			if len(got.Checks) != len(want.Checks) || got.ContactRows != want.ContactRows {
				t.Fatalf("got %d checks, %d contact rows; want %d, %d", len(got.Checks), got.ContactRows, len(want.Checks), want.ContactRows)
			}
			for i := range want.Checks {
				if g, w := checkKey(got.Checks[i]), checkKey(want.Checks[i]); g != w {
					t.Fatalf("check %d:\n got %s\nwant %s", i, g, w)
				}
			}
			ws := bruteSummary(want)
			if len(got.Contacts) != len(ws) {
				t.Fatalf("%d contacts in summary, want %d", len(got.Contacts), len(ws))
			}
			for i, s := range got.Contacts {
				g := fmt.Sprintf("%d %d %d %s", s.Overlaps, s.First.UnixMilli(), s.Last.UnixMilli(), strings.Join(s.Places, ","))
				if g != ws[s.Subject] {
					t.Errorf("summary of %x: got %s, want %s", s.Subject[:], g, ws[s.Subject])
				}
				if i > 0 && s.Overlaps > got.Contacts[i-1].Overlaps {
					t.Errorf("summary not ordered by overlaps at %d", i)
				}
			}
			if c.name == "edges" {
				var edgeContacts []string
				for _, ch := range got.Checks {
					if ch.Source == "edge" && ch.At.Equal(base) {
						for _, ct := range ch.Contacts {
							edgeContacts = append(edgeContacts, fmt.Sprintf("%x %v", ct.Subject[:], ct.Offset))
						}
					}
				}
				wantEdge := []string{"5b000200000000000000000000000000 -15m0s", "5b000300000000000000000000000000 15m0s"}
				if !slices.Equal(edgeContacts, wantEdge) {
					t.Errorf("contacts at the edges: got %q, want %q", edgeContacts, wantEdge)
				}
			}
			if c.person < 300 && len(got.Checks) == 0 {
				t.Error("a generated person has no checks: the case tests nothing")
			}
		})
	}
}

func TestDB_Trace_Truncated(t *testing.T) {
	t.Parallel()
	db := MustOpenDB(t)
	all := traceWeek(t, db, 3, 2, 3000, 11)
	q := store.TraceQuery{Subject: pass.Subject{0x5b, 0, 1}, From: t0, To: t0.Add(7 * 24 * time.Hour), Window: time.Hour, Limit: 50}
	got, err := db.Trace(t.Context(), q)
	if err != nil {
		t.Fatal(err)
	}
	q.Limit = 0
	full := bruteTrace(all, q)
	if !got.Truncated || len(got.Checks) != 50 || got.ContactRows > 50 {
		t.Fatalf("truncated=%v checks=%d contact rows=%d; want truncated at 50 (of %d checks, %d rows)",
			got.Truncated, len(got.Checks), got.ContactRows, len(full.Checks), full.ContactRows)
	}
	for i := range got.Checks {
		if got.Checks[i].ScanID != full.Checks[i].ScanID {
			t.Fatalf("check %d is not the %d-th oldest", i, i)
		}
	}
	if got.ChecksOmitted != len(full.Checks)-50 || got.Limit != 50 {
		t.Errorf("checks omitted %d (limit %d), want %d (50)", got.ChecksOmitted, got.Limit, len(full.Checks)-50)
	}
}

// TestDB_Trace_TruncatedContacts: when the contact rows hit the limit
// before the checks do, every check whose list was cut or never read says
// how many rows it lacks, so none of them looks like a check nobody was
// near, and the counts add up to what the full trace holds.
func TestDB_Trace_TruncatedContacts(t *testing.T) {
	db := MustOpenDB(t)
	all := traceWeek(t, db, 3, 2, 3000, 11)
	q := store.TraceQuery{Subject: pass.Subject{0x5b, 0, 1}, From: t0, To: t0.Add(7 * 24 * time.Hour), Window: time.Hour, Limit: 2000}
	got, err := db.Trace(ctxb(), q)
	if err != nil {
		t.Fatal(err)
	}
	q.Limit = 0
	full := bruteTrace(all, q)
	if len(full.Checks) >= 2000 || full.ContactRows <= 2*2000 {
		t.Fatalf("fixture: %d checks, %d rows: the rows must hit the limit well before the checks", len(full.Checks), full.ContactRows)
	}
	if !got.Truncated || got.ChecksOmitted != 0 || len(got.Checks) != len(full.Checks) || got.ContactRows != 2000 {
		t.Fatalf("truncated=%v checks=%d (omitted %d) rows=%d; want all %d checks and 2000 rows",
			got.Truncated, len(got.Checks), got.ChecksOmitted, got.ContactRows, len(full.Checks))
	}
	if got.RowsOmitted != full.ContactRows-2000 {
		t.Errorf("rows omitted %d, want %d", got.RowsOmitted, full.ContactRows-2000)
	}
	emptyButCut := 0
	for i, ch := range got.Checks {
		if n := len(ch.Contacts) + ch.ContactsOmitted; n != len(full.Checks[i].Contacts) {
			t.Fatalf("check %d: %d listed + %d omitted, want %d", i, len(ch.Contacts), ch.ContactsOmitted, len(full.Checks[i].Contacts))
		}
		if len(ch.Contacts) == 0 && ch.ContactsOmitted > 0 {
			emptyButCut++
		}
	}
	if emptyButCut == 0 {
		t.Error("fixture: no check lost all its contacts to the limit")
	}
}

// TestDB_Trace_Names: contacts in the district's register carry their
// masked name and ID tail, in the rows and the summary; others none.
func TestDB_Trace_Names(t *testing.T) {
	db := MustOpenDB(t)
	traceWeek(t, db, 3, 1, 600, 5)
	known := &store.Person{Subject: pass.Subject{0x5b, 0, 2}, MaskedName: "张*丰", IDTail: "123X", Color: pass.Green}
	if err := db.SavePerson(ctxb(), known, "test"); err != nil {
		t.Fatal(err)
	}
	got, err := db.Trace(ctxb(), store.TraceQuery{Subject: pass.Subject{0x5b, 0, 1}, From: t0, To: t0.Add(7 * 24 * time.Hour), Window: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	named, unnamed := 0, 0
	for _, ch := range got.Checks {
		for _, c := range ch.Contacts {
			switch {
			case c.Subject == known.Subject && c.MaskedName == "张*丰" && c.IDTail == "123X":
				named++
			case c.Subject != known.Subject && c.MaskedName == "" && c.IDTail == "":
				unnamed++
			default:
				t.Fatalf("contact %x named %q %q", c.Subject[:], c.MaskedName, c.IDTail)
			}
		}
	}
	if named == 0 || unnamed == 0 {
		t.Fatalf("fixture: %d named and %d unnamed rows", named, unnamed)
	}
	for _, s := range got.Contacts {
		if (s.Subject == known.Subject) != (s.MaskedName == "张*丰" && s.IDTail == "123X") {
			t.Errorf("summary of %x named %q %q", s.Subject[:], s.MaskedName, s.IDTail)
		}
	}
}

func TestDB_Trace_ErrInvalid(t *testing.T) {
	t.Parallel()
	db := MustOpenDB(t)
	for _, q := range []store.TraceQuery{
		{From: t0, To: t0, Window: time.Minute},
		{From: t0.Add(time.Hour), To: t0, Window: time.Minute},
		{From: t0, To: t0.Add(time.Hour)},
		{From: t0, To: t0.Add(time.Hour), Window: -time.Minute},
	} {
		if _, err := db.Trace(t.Context(), q); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("%+v: got %v, want ErrInvalid", q, err)
		}
	}
}

// TestDB_Trace_Plan checks that the person's checks come from the
// (subject, time) index scan_subjects plus the scans above its mark, read
// by id, and the contacts from scans_source_at: without them a trace
// scans the whole log.
func TestDB_Trace_Plan(t *testing.T) {
	t.Parallel()
	db := MustOpenDB(t)
	traceWeek(t, db, 50, 5, 2000, 3)
	checks, contacts, err := db.TracePlans(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	const indexed, tail = "SEARCH x USING PRIMARY KEY (day=? AND subject=? AND at_ms>? AND at_ms<?)", "SEARCH scans USING INTEGER PRIMARY KEY (rowid>?)"
	if !strings.Contains(checks, indexed) || !strings.Contains(checks, tail) {
		t.Errorf("checks query does not read scan_subjects and the tail by id:\n%s", checks)
	}
	if !strings.Contains(contacts, indexed) || !strings.Contains(contacts, tail) || !strings.Contains(contacts, "USING INDEX scans_source_at") {
		t.Errorf("contacts query does not use both indexes:\n%s", contacts)
	}
	if strings.Contains(checks+contacts, "SCAN scans") || strings.Contains(checks+contacts, "SCAN c") {
		t.Errorf("a trace query scans the whole table:\n%s\n%s", checks, contacts)
	}
	t.Logf("checks plan:\n%s\ncontacts plan:\n%s", checks, contacts)
}

// TestDB_Trace_HubPlan: the same query function over a table whose place
// is (appliance, source) uses that table's indexes.
func TestDB_Trace_HubPlan(t *testing.T) {
	t.Parallel()
	db := MustOpenDB(t)
	plan, err := db.HubTracePlans(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(plan, "USING INDEX district_scans_subject_at") || !strings.Contains(plan, "USING INDEX district_scans_source_at (appliance_id=? AND source=? AND at_ms>? AND at_ms<?)") ||
		strings.Contains(plan, "SCAN district_scans") {
		t.Errorf("hub plan does not use both indexes:\n%s", plan)
	}
}
