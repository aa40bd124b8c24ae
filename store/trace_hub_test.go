package store_test

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"passgate/pass"
	"passgate/store"
)

// A hub traces through its own scans and those of every enrolled
// appliance, a place being an appliance's source ("gate-east/gate-1"):
// the result matches a brute-force computation over all of them.
func TestDB_Trace_Hub(t *testing.T) {
	t.Parallel()
	db := MustOpenDB(t)
	local := traceWeek(t, db, 200, 5, 6000, 11)
	all := append([]*store.Scan(nil), local...)
	rng := rand.New(rand.NewPCG(3, 4))
	week := int64(7 * 24 * 3600)
	for a, name := range []string{"gate-east", "office"} {
		var remote []*store.Scan
		for range 6000 {
			// Half a second past the local scans' whole seconds: no tie
			// between a hub scan and an appliance's.
			s := &store.Scan{
				At:     t0.Add(time.Duration(rng.Int64N(week))*time.Second + 500*time.Millisecond),
				Source: fmt.Sprintf("gate-%d", rng.IntN(5)), Decision: "allow", Reason: "ok",
			}
			if rng.IntN(20) != 0 {
				p := rng.IntN(200)
				s.Subject = pass.Subject{0x5b, byte(p >> 8), byte(p)}
			}
			remote = append(remote, s)
		}
		if err := db.InsertDistrictScansBulk(t.Context(), name, int64(1_000_000*(a+1)), remote); err != nil {
			t.Fatal(err)
		}
		for _, s := range remote {
			c := *s
			c.Source = name + "/" + s.Source // the place as the hub shows it
			all = append(all, &c)
		}
	}
	var sawRemote, sawLocal bool
	for _, person := range []int{3, 77, 150} {
		q := store.TraceQuery{Subject: pass.Subject{0x5b, 0, byte(person)}, From: t0, To: t0.Add(7 * 24 * time.Hour), Window: 20 * time.Minute}
		got, err := db.Trace(t.Context(), q)
		if err != nil {
			t.Fatal(err)
		}
		want := bruteTrace(all, q)
		if len(got.Checks) != len(want.Checks) || got.ContactRows != want.ContactRows || got.Truncated {
			t.Fatalf("person %d: %d checks, %d contact rows (truncated %t); want %d, %d", person,
				len(got.Checks), got.ContactRows, got.Truncated, len(want.Checks), want.ContactRows)
		}
		for i := range want.Checks {
			if g, w := checkKey(got.Checks[i]), checkKey(want.Checks[i]); g != w {
				t.Fatalf("person %d check %d:\n got %s\nwant %s", person, i, g, w)
			}
			if strings.Contains(got.Checks[i].Source, "/") {
				sawRemote = true
			} else {
				sawLocal = true
			}
		}
		ws := bruteSummary(want)
		if len(got.Contacts) != len(ws) {
			t.Fatalf("person %d: %d contacts, want %d", person, len(got.Contacts), len(ws))
		}
		for _, s := range got.Contacts {
			g := fmt.Sprintf("%d %d %d %s", s.Overlaps, s.First.UnixMilli(), s.Last.UnixMilli(), strings.Join(s.Places, ","))
			if g != ws[s.Subject] {
				t.Errorf("person %d, summary of %x: got %s, want %s", person, s.Subject[:], g, ws[s.Subject])
			}
		}
	}
	if !sawRemote || !sawLocal {
		t.Fatalf("the cases saw remote checks %t, local checks %t: both are needed", sawRemote, sawLocal)
	}

	// The limit holds over both parts together.
	q := store.TraceQuery{Subject: pass.Subject{0x5b, 0, 3}, From: t0, To: t0.Add(7 * 24 * time.Hour), Window: 20 * time.Minute, Limit: 5}
	got, err := db.Trace(t.Context(), q)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Checks) > 5 || got.ContactRows > 5 || !got.Truncated {
		t.Fatalf("limit 5: %d checks, %d contact rows, truncated %t", len(got.Checks), got.ContactRows, got.Truncated)
	}
}

// TestDB_Trace_HubTruncated: a hub's result cut at its limit, after
// merging its own and its appliances' checks, still counts exactly what
// it leaves out, per check and in total.
func TestDB_Trace_HubTruncated(t *testing.T) {
	db := MustOpenDB(t)
	all := traceWeek(t, db, 3, 2, 1500, 21)
	rng := rand.New(rand.NewPCG(5, 6))
	var remote []*store.Scan
	for range 1500 {
		p := rng.IntN(3)
		remote = append(remote, &store.Scan{
			At:     t0.Add(time.Duration(rng.Int64N(7*24*3600))*time.Second + 500*time.Millisecond),
			Source: fmt.Sprintf("gate-%d", rng.IntN(2)), Decision: "allow", Reason: "ok",
			Subject: pass.Subject{0x5b, byte(p >> 8), byte(p)},
		})
	}
	if err := db.InsertDistrictScansBulk(ctxb(), "gate-east", 1_000_000, remote); err != nil {
		t.Fatal(err)
	}
	for _, s := range remote {
		c := *s
		c.Source = "gate-east/" + s.Source
		all = append(all, &c)
	}
	q := store.TraceQuery{Subject: pass.Subject{0x5b, 0, 1}, From: t0, To: t0.Add(7 * 24 * time.Hour), Window: time.Hour}
	full := bruteTrace(all, q)
	for _, limit := range []int{50, 2000} {
		q.Limit = limit
		got, err := db.Trace(ctxb(), q)
		if err != nil {
			t.Fatal(err)
		}
		rows := 0
		for i, ch := range got.Checks {
			if n := len(ch.Contacts) + ch.ContactsOmitted; n != len(full.Checks[i].Contacts) {
				t.Fatalf("limit %d, check %d: %d listed + %d omitted, want %d", limit, i, len(ch.Contacts), ch.ContactsOmitted, len(full.Checks[i].Contacts))
			}
			rows += ch.ContactsOmitted
		}
		if !got.Truncated || got.RowsOmitted != rows || rows == 0 || got.ChecksOmitted != len(full.Checks)-len(got.Checks) {
			t.Errorf("limit %d: truncated %v, rows omitted %d (sum %d), checks omitted %d of %d listed, want %d",
				limit, got.Truncated, got.RowsOmitted, rows, got.ChecksOmitted, len(got.Checks), len(full.Checks)-len(got.Checks))
		}
	}
}
