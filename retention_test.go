package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"passgate/appliance"
	"passgate/pass"
	"passgate/store"
)

// setRetentionByCLI sets the retention periods of dir through `passgate
// policy` (7, 3 and 30 days) and checks that out-of-range periods are
// refused with the flag named.
func setRetentionByCLI(t *testing.T, dir string) {
	t.Helper()
	env := map[string]string{"PASSGATE_ADMIN_PASSWORD": "a long admin password"}
	r := runCLI(t, env, "", "policy", "--data", dir, "--scan-retention-days", "7",
		"--pass-retention-days", "3", "--audit-retention-days", "30")
	if r.code != 0 {
		t.Fatalf("policy: exit %d: %s", r.code, r.stderr)
	}
	var p map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &p); err != nil || p["scan_retention_days"] != float64(7) ||
		p["pass_retention_days"] != float64(3) || p["audit_retention_days"] != float64(30) {
		t.Fatalf("policy output %s %v", r.stdout, err)
	}
	// Shown without changing anything too.
	if r := runCLI(t, env, "", "policy", "--data", dir); r.code != 0 || !strings.Contains(r.stdout, `"audit_retention_days": 30`) {
		t.Fatalf("policy: exit %d: %s", r.code, r.stdout)
	}
	for _, bad := range [][]string{
		{"--scan-retention-days", "0"},
		{"--pass-retention-days", "0"},
		{"--pass-retention-days", "3651"},
		{"--pass-retention-days", "1.5"},
		{"--audit-retention-days", "29"},
		{"--audit-retention-days", "-30"},
		{"--audit-retention-days", "ten"},
	} {
		r := runCLI(t, env, "", append([]string{"policy", "--data", dir}, bad...)...)
		if r.code != 2 || !strings.Contains(r.stderr, bad[0]) {
			t.Errorf("%v accepted or unexplained: exit %d: %s", bad, r.code, r.stderr)
		}
	}
}

// A retention round with periods set through `passgate policy` purges the
// scans, pass records and audit records past them, audits each purge,
// and leaves a trail that still verifies; younger data stays.
func TestRetention(t *testing.T) {
	dir := t.TempDir()
	setRetentionByCLI(t, dir)
	env := map[string]string{"PASSGATE_ADMIN_PASSWORD": "a long admin password"}

	ctx := context.Background()
	db, err := store.Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	now := time.Now()
	for _, age := range []time.Duration{10 * 24 * time.Hour, 8 * 24 * time.Hour, 6 * 24 * time.Hour, time.Hour} {
		if err := db.LogScan(ctx, &store.Scan{At: now.Add(-age), Source: "gate-1", Decision: "deny", Reason: "not_a_pass"}); err != nil {
			t.Fatal(err)
		}
	}
	issuer, err := db.SigningKey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	subject := pass.Subject{1}
	if err := db.SavePerson(ctx, &store.Person{Subject: subject, MaskedName: "张*", IDTail: "0012", Color: pass.Green}, "cli"); err != nil {
		t.Fatal(err)
	}
	// Passes expired 40 and 4 days ago are past the 3 days; one expired
	// 2 days ago and one still valid stay. The oldest two are issued
	// (and audited) 60 days ago, past the 30 days of audit retention.
	for i, c := range []struct{ issued, expires time.Duration }{
		{-60, -40}, {-60, -4}, {-5, -2}, {-1, 6},
	} {
		at := now.Add(c.issued * 24 * time.Hour)
		db.Now = func() time.Time { return at }
		err := db.CreatePass(ctx, &store.IssuedPass{ID: pass.ID{byte(i + 1)}, Subject: subject, KID: issuer.KID,
			Kind: pass.Phone, Color: pass.Green, IssuedAt: at, ExpiresAt: now.Add(c.expires * 24 * time.Hour), Actor: "cli"})
		if err != nil {
			t.Fatal(err)
		}
	}
	db.Now = time.Now

	n, err := appliance.Purge(ctx, db, now)
	if err != nil || n.Scans != 2 || n.Passes != 2 || n.Audit == 0 {
		t.Fatalf("purged %+v: %v, want 2 scans older than 7 days, 2 passes and old audit records", n, err)
	}
	left, err := db.FindScans(ctx, store.ScanFilter{Limit: 10})
	if err != nil || len(left) != 2 {
		t.Fatalf("%d scans left: %v", len(left), err)
	}
	for i := range 4 {
		_, err := db.FindPass(ctx, pass.ID{byte(i + 1)})
		if kept := err == nil; kept != (i >= 2) {
			t.Errorf("pass %d: kept=%v (%v)", i+1, kept, err)
		}
	}
	purges := map[string]int{}
	boundary := now.Add(-30 * 24 * time.Hour)
	if err := db.FindAudit(ctx, store.AuditFilter{}, func(a *store.AuditRecord) error {
		if a.Action == store.AuditPurge {
			purges[a.Subject]++
		}
		if a.At.Before(boundary) {
			t.Errorf("audit record %d of %s survived the purge", a.Seq, a.At)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if purges["scans"] != 1 || purges["passes"] != 1 || purges["audit"] != 1 {
		t.Fatalf("audited purges %v, want one each", purges)
	}
	if _, err := db.VerifyAudit(ctx); err != nil {
		t.Fatalf("audit trail after the round: %v", err)
	}
	// A second round finds nothing and audits nothing.
	if n, err := appliance.Purge(ctx, db, now); err != nil || n != (appliance.Purged{}) {
		t.Fatalf("second round purged %+v: %v", n, err)
	}
	r := runCLI(t, env, "", "audit", "verify", "--data", dir)
	if r.code != 0 {
		t.Fatalf("audit verify after retention: exit %d: %s %s", r.code, r.stdout, r.stderr)
	}
}

// TestRetention_Hub runs a hub and an enrolled appliance as real
// processes. The hub's retention purges the appliance's scans past the
// scan retention and audits it; the mark of an epoch the appliance has
// left is collected once that epoch is past the retention; and when the
// appliance is restored from a backup holding that epoch's scans and
// sends them again, the hub takes them as held: nothing is counted twice.
func TestRetention_Hub(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs real processes")
	}
	ctx := context.Background()
	root := t.TempDir()
	hubDir, appDir, backup := filepath.Join(root, "hub"), filepath.Join(root, "app"), filepath.Join(root, "backup")
	env := map[string]string{"PASSGATE_ADMIN_PASSWORD": "district test password"}
	must := mustSucceed(t)
	code := must(runCLI(t, env, "", "hub", "add", "--data", hubDir, "--name", "gate-r"), "hub add")
	hub := startSyncNode(t, "hub", hubDir, true)
	must(runCLI(t, env, "", "enroll", "--data", appDir, "--hub", hub.https, "--code", code), "enroll")

	now := time.Now()
	logAt := func(ages ...time.Duration) {
		withStore(t, appDir, func(db *store.DB) {
			for _, age := range ages {
				if err := db.LogScan(ctx, &store.Scan{At: now.Add(-age), Source: "gate-1", Decision: "deny", Reason: "not_a_pass"}); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
	day := 24 * time.Hour
	logAt(41*day, 40*day, 39*day, 2*time.Hour, time.Hour)
	if err := os.CopyFS(backup, os.DirFS(appDir)); err != nil {
		t.Fatal(err)
	}
	held := func() int {
		var n int
		withStore(t, hubDir, func(db *store.DB) {
			list, _, err := db.DistrictScans(ctx, "gate-r", 0, store.MaxScanLimit)
			if err != nil {
				t.Fatal(err)
			}
			n = len(list)
		})
		return n
	}
	// syncOnce serves the appliance until the hub has acknowledged every
	// scan it holds.
	syncOnce := func() {
		app := startSyncNode(t, "appliance", appDir, false)
		deadline := time.Now().Add(20 * time.Second)
		for {
			var acked, last int64
			withStore(t, appDir, func(db *store.DB) {
				var err error
				if acked, _, err = db.ScansAcked(ctx); err != nil {
					t.Fatal(err)
				}
				list, err := db.FindScans(ctx, store.ScanFilter{Limit: 1})
				if err != nil || len(list) != 1 {
					t.Fatalf("newest scan: %v", err)
				}
				last = list[0].ID
			})
			if acked >= last {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("scans acknowledged up to %d of %d", acked, last)
			}
			time.Sleep(200 * time.Millisecond)
		}
		if err := app.stop(); err != nil {
			t.Logf("appliance stop: %v", err)
		}
	}
	syncOnce()
	if n := held(); n != 5 {
		// The hub's own first round may have run already.
		if n != 2 {
			t.Fatalf("hub holds %d scans of the appliance, want 5", n)
		}
	}
	withStore(t, hubDir, func(db *store.DB) {
		if _, err := appliance.Purge(ctx, db, now); err != nil {
			t.Fatal(err)
		}
		purged := 0
		if err := db.FindAudit(ctx, store.AuditFilter{}, func(a *store.AuditRecord) error {
			if a.Action == store.AuditPurge && a.Subject == "district_scans" {
				purged++
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if purged != 1 {
			t.Fatalf("%d audited purges of the appliance's scans, want 1", purged)
		}
	})
	if n := held(); n != 2 {
		t.Fatalf("hub holds %d scans of the appliance after the purge, want the 2 recent ones", n)
	}

	// One more scan, sent by a later process (a later epoch).
	logAt(time.Minute)
	syncOnce()
	if n := held(); n != 3 {
		t.Fatalf("hub holds %d scans, want 3", n)
	}
	// Thirty days on, the first epoch is past the scan retention: its
	// mark goes, with the scans.
	withStore(t, hubDir, func(db *store.DB) {
		n, err := appliance.Purge(ctx, db, now.Add(30*day))
		if err != nil || n.SyncMarks < 1 || n.DistrictScans != 2 {
			t.Fatalf("purge thirty days on: %+v, %v; want the 2 older scans and a mark", n, err)
		}
	})
	if n := held(); n != 1 {
		t.Fatalf("hub holds %d scans, want its newest", n)
	}

	// Restored from the backup: the appliance sends its first epoch's
	// five scans again.
	if err := os.Rename(appDir, appDir+".broken"); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(backup, appDir); err != nil {
		t.Fatal(err)
	}
	syncOnce()
	if n := held(); n != 1 {
		t.Fatalf("hub holds %d scans after the restored appliance sent its old epoch again, want 1", n)
	}
	if err := hub.stop(); err != nil {
		t.Logf("hub stop: %v", err)
	}
}
