package store_test

import (
	"slices"
	"strconv"
	"testing"
	"time"

	"passgate/store"
)

func TestDB_SyncStatus(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db := MustOpenDB(t)
	st, err := db.SyncStatus(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Enrolled || st.ScansWaiting != 0 || st.Hub != "" {
		t.Fatalf("standalone: %+v", st)
	}

	for i := range 7 {
		if err := db.LogScan(ctx, newScan(uint16(i), t0)); err != nil {
			t.Fatal(err)
		}
	}
	raw := rawOpen(t, db.Path())
	push, pull := t0.Add(-time.Minute), t0.Add(-2*time.Minute)
	for _, q := range []string{
		`INSERT INTO sync_hub (id, url, hub_ca, appliance, token, bundle_key, enrolled_ms)
			VALUES (1, 'https://hub.example:8443', x'01', 'gate-east', zeroblob(32), x'02', 0)`,
		`INSERT INTO sync_state (id, scans_acked, events_acked, last_push_ms, last_pull_ms, last_error, last_error_ms)
			VALUES (1, 3, 1, ` + itoa(push.UnixMilli()) + `, ` + itoa(pull.UnixMilli()) + `, 'connection refused', ` + itoa(t0.UnixMilli()) + `)`,
		`INSERT INTO outbox (kind, at_ms, body) VALUES ('audit', 0, '{}'), ('audit', 0, '{}'), ('pass', 0, '{}')`,
	} {
		if _, err := raw.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	st, err = db.SyncStatus(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !st.Enrolled || st.Hub != "https://hub.example:8443" || st.Appliance != "gate-east" {
		t.Fatalf("enrolled: %+v", st)
	}
	if st.ScansWaiting != 4 || st.EventsWaiting != 2 {
		t.Fatalf("waiting: %d scans, %d events; want 4, 2", st.ScansWaiting, st.EventsWaiting)
	}
	if !st.LastPush.Equal(push) || !st.LastPull.Equal(pull) || st.LastError != "connection refused" || !st.LastErrorAt.Equal(t0) {
		t.Fatalf("times: %+v", st)
	}
}

func TestDB_ApplianceStatuses(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db := MustOpenDB(t)
	raw := rawOpen(t, db.Path())
	contact := t0.Add(-30 * time.Second)
	for _, q := range []string{
		`INSERT INTO revocations (kind, target, before_ms, reason, at_ms) VALUES
			(2, zeroblob(12), NULL, 'lost', 0), (2, x'010000000000000000000000', NULL, 'lost', 0), (2, x'020000000000000000000000', NULL, 'lost', 0)`,
		`INSERT INTO appliances (name, may_issue, created_ms, enrolled_ms, last_contact_ms, clock_skew_ms, backlog, revocations_seq)
			VALUES ('b-gate', 0, 0, 1000, ` + itoa(contact.UnixMilli()) + `, -7200000, 120, (SELECT min(seq) FROM revocations))`,
		`INSERT INTO appliances (name, may_issue, created_ms, retired_ms) VALUES ('a-office', 1, 0, 5000)`,
	} {
		if _, err := raw.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	list, err := db.ApplianceStatuses(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].Name != "a-office" || list[1].Name != "b-gate" {
		t.Fatalf("list: %+v", list)
	}
	a, b := list[0], list[1]
	if a.Role != store.ApplianceOffice || a.Retired.UnixMilli() != 5000 || !a.Enrolled.IsZero() || !a.LastContact.IsZero() || a.RevocationsBehind != 3 {
		t.Fatalf("a-office: %+v", a)
	}
	if b.Role != store.ApplianceGate || !b.LastContact.Equal(contact) || b.ClockSkew != -2*time.Hour || b.Backlog != 120 || b.RevocationsBehind != 2 {
		t.Fatalf("b-gate: %+v", b)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// Retention never deletes a scan the hub has not acknowledged, nor the
// newest scan (ids are the sync stream's sequence and must not restart).
func TestDB_PurgeScansKeepsUnsent(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db := MustOpenDB(t)
	for i := range 10 {
		if err := db.LogScan(ctx, newScan(uint16(i), t0.Add(time.Duration(i)*time.Second))); err != nil {
			t.Fatal(err)
		}
	}
	remaining := func() []int64 {
		t.Helper()
		list, err := db.FindScans(ctx, store.ScanFilter{Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		var ids []int64
		for _, s := range list {
			ids = append(ids, s.ID)
		}
		slices.Sort(ids)
		return ids
	}
	raw := rawOpen(t, db.Path())
	if _, err := raw.ExecContext(ctx, `INSERT INTO sync_hub (id, url, hub_ca, appliance, token, bundle_key, enrolled_ms)
		VALUES (1, 'https://hub.example:8443', x'01', 'gate-east', zeroblob(32), x'02', 0)`); err != nil {
		t.Fatal(err)
	}
	// Enrolled, nothing acknowledged yet: nothing goes.
	if n, err := db.PurgeScans(ctx, t0.Add(time.Hour), 3, "retention"); err != nil || n != 0 {
		t.Fatalf("purge before any acknowledgement: %d, %v", n, err)
	}
	if _, err := raw.ExecContext(ctx, `INSERT INTO sync_state (id, scans_acked) VALUES (1, 4)`); err != nil {
		t.Fatal(err)
	}
	if n, err := db.PurgeScans(ctx, t0.Add(time.Hour), 3, "retention"); err != nil || n != 4 {
		t.Fatalf("purge with 4 acknowledged: %d, %v", n, err)
	}
	if got := remaining(); !slices.Equal(got, []int64{5, 6, 7, 8, 9, 10}) {
		t.Fatalf("after purging the acknowledged: %v", got)
	}
	// Everything acknowledged and old: all but the newest go.
	if _, err := raw.ExecContext(ctx, `UPDATE sync_state SET scans_acked = 10`); err != nil {
		t.Fatal(err)
	}
	if n, err := db.PurgeScans(ctx, t0.Add(time.Hour), 3, "retention"); err != nil || n != 5 {
		t.Fatalf("purge with all acknowledged: %d, %v", n, err)
	}
	if got := remaining(); !slices.Equal(got, []int64{10}) {
		t.Fatalf("after purging everything old: %v", got)
	}
	if err := db.LogScan(ctx, newScan(99, t0.Add(2*time.Hour))); err != nil {
		t.Fatal(err)
	}
	if got := remaining(); !slices.Equal(got, []int64{10, 11}) {
		t.Fatalf("the next scan after a full purge: %v (an id was reused)", got)
	}
}
