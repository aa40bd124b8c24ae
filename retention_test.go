package main

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"passgate/store"
)

// Scans older than the retention period set with `passgate policy` are
// purged; younger ones stay.
func TestRetention(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{"PASSGATE_ADMIN_PASSWORD": "a long admin password"}
	r := runCLI(t, env, "", "policy", "--data", dir, "--scan-retention-days", "7")
	if r.code != 0 {
		t.Fatalf("policy: exit %d: %s", r.code, r.stderr)
	}
	var p map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &p); err != nil || p["scan_retention_days"] != float64(7) {
		t.Fatalf("policy output %s %v", r.stdout, err)
	}
	if r := runCLI(t, env, "", "policy", "--data", dir, "--scan-retention-days", "0"); r.code != 2 {
		t.Fatalf("0 days accepted: exit %d", r.code)
	}
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
	n, err := purgeOnce(ctx, db, now)
	if err != nil || n != 2 {
		t.Fatalf("purged %d: %v, want the 2 scans older than 7 days", n, err)
	}
	left, err := db.FindScans(ctx, store.ScanFilter{Limit: 10})
	if err != nil || len(left) != 2 {
		t.Fatalf("%d scans left: %v", len(left), err)
	}
}
