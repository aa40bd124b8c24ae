package store_test

import (
	"database/sql"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"passgate/store"
)

// TestScanCounts_EveryPath logs scans at a hub through every path that
// stores one (its own checks through the group-commit writer, many at
// once so batches mix keys; an appliance's pushes; an appliance's bundle)
// and requires the dashboard's counts to equal counting the logs
// themselves, key by key.
func TestScanCounts_EveryPath(t *testing.T) {
	t.Parallel()
	hub := MustOpenDB(t)
	pushID := MustHubAppliance(t, hub, "gate-push")
	MustHubAppliance(t, hub, "gate-bundle")
	pushApp := MustEnrolDB(t, t.TempDir(), "gate-push")
	bundleApp := MustEnrolDB(t, t.TempDir(), "gate-bundle")

	// mixed returns the i-th scan of a run: times 97 s apart, so they
	// cross 5- and 15-minute buckets; three sources; denials of several
	// reasons.
	mixed := func(run string, i int) *store.Scan {
		s := &store.Scan{At: t0.Add(time.Duration(i) * 97 * time.Second), Source: fmt.Sprintf("%s-%d", run, i%3),
			Decision: "allow", Reason: "ok", PassID: passID(uint16(i)), Subject: subj(byte(i)), KID: kid(1)}
		switch i % 5 {
		case 1:
			s.Decision, s.Reason = "deny", "expired"
		case 3:
			s.Decision, s.Reason = "deny", "status_red"
		}
		return s
	}

	var wg sync.WaitGroup
	for g := range 32 {
		wg.Go(func() {
			for i := range 25 {
				if err := hub.LogScan(t.Context(), mixed("hub", g*25+i)); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	for i := range 60 {
		if err := pushApp.LogScan(t.Context(), mixed("north", i)); err != nil {
			t.Fatal(err)
		}
		if err := bundleApp.LogScan(t.Context(), mixed("south", i)); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	if stored := ingestAll(t, pushApp, hub, pushID, 25); stored < 60 {
		t.Fatalf("push stored %d records, want the 60 scans at least", stored)
	}
	b, err := bundleApp.PrepareUpBundle(t.Context(), 1000, 1000, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := hub.ImportUpBundle(t.Context(), upImportOf(b), []byte("bundle-public")); err != nil {
		t.Fatal(err)
	}

	raw, err := sql.Open("sqlite", hub.Path()+"?_pragma=busy_timeout(10000)&_pragma=query_only(1)")
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	rows := func(q string) []string {
		t.Helper()
		r, err := raw.QueryContext(t.Context(), q)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		var out []string
		for r.Next() {
			var a, c, d, e any
			if err := r.Scan(&a, &c, &d, &e); err != nil {
				t.Fatal(err)
			}
			out = append(out, fmt.Sprint(a, c, d, e))
		}
		if err := r.Err(); err != nil {
			t.Fatal(err)
		}
		slices.Sort(out)
		return out
	}
	for _, c := range []struct{ name, counted, want string }{
		{"time", `SELECT bucket_ms, decision, reason, n FROM scan_counts_time`, `
			SELECT at_ms - at_ms % 300000, decision, reason, count(*) FROM (
				SELECT at_ms, decision, reason FROM scans
				UNION ALL SELECT at_ms, decision, reason FROM district_scans)
			GROUP BY 1, 2, 3`},
		{"source", `SELECT bucket_ms, appliance, source, allow || '/' || deny FROM scan_counts_source`, `
			SELECT at_ms - at_ms % 900000, app, source, sum(decision = 'allow') || '/' || sum(decision = 'deny') FROM (
				SELECT at_ms, 0 AS app, source, decision FROM scans
				UNION ALL SELECT at_ms, appliance_id, source, decision FROM district_scans)
			GROUP BY 1, 2, 3`},
	} {
		got, want := rows(c.counted), rows(c.want)
		if len(want) < 10 {
			t.Fatalf("%s: only %d keys in the logs: the test logged too little", c.name, len(want))
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s counts differ from the logs:\ngot  %v\nwant %v", c.name, got, want)
		}
	}
	var appliances int
	if err := raw.QueryRowContext(t.Context(), `SELECT count(DISTINCT appliance_id) FROM district_scans`).Scan(&appliances); err != nil || appliances != 2 {
		t.Fatalf("district scans from %d appliances (%v), want both paths", appliances, err)
	}
	// The writer counts; an insert trigger on the local log would count
	// twice (the delete triggers keep the subject index).
	var triggers int
	if err := raw.QueryRowContext(t.Context(), `SELECT count(*) FROM sqlite_schema WHERE type = 'trigger' AND tbl_name = 'scans' AND sql NOT LIKE '%AFTER DELETE ON scans%'`).Scan(&triggers); err != nil || triggers != 0 {
		t.Fatalf("%d insert or update triggers on scans (%v), want none", triggers, err)
	}
}
