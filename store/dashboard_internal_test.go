package store

import (
	"bytes"
	"context"
	"database/sql"
	"testing"
	"time"
)

// TestMigrate_DashCounts: upgrading a database counts the scans of the
// last two days for the dashboard (older ones are never shown), and
// scans logged after the upgrade are counted as they come.
func TestMigrate_DashCounts(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	all := migrations
	var before []string
	for i, m := range all {
		if bytes.Contains([]byte(m), []byte("-- dash:")) {
			before = all[:i]
			break
		}
	}
	if before == nil {
		t.Fatal("the dash migration is not in the list")
	}
	migrations = before
	db, err := Open(ctx, dir)
	if err != nil {
		migrations = all
		t.Fatal(err)
	}
	now := time.Now()
	err = db.update(ctx, func(tx *sql.Tx) error {
		for _, at := range []time.Time{now.Add(-time.Hour), now.Add(-time.Hour), now.Add(-72 * time.Hour)} {
			if _, err := tx.ExecContext(ctx, `INSERT INTO scans (at_ms, source, decision, reason, repeat) VALUES (?, 'g', 'deny', 'expired', 0)`, at.UnixMilli()); err != nil {
				return err
			}
		}
		return nil
	})
	db.Close()
	migrations = all
	if err != nil {
		t.Fatal(err)
	}
	db, err = Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.LogScan(ctx, &Scan{At: now, Source: "g", Decision: "allow", Reason: "ok"}); err != nil {
		t.Fatal(err)
	}
	week := now.Add(-7 * 24 * time.Hour)
	reasons, err := db.DenyReasons(ctx, week, now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if len(reasons) != 1 || reasons[0] != (ReasonCount{"expired", 2}) {
		t.Errorf("reasons after upgrade = %v, want the two denials of the last hour", reasons)
	}
	sources, err := db.ChecksPerSource(ctx, week, now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if len(sources) != 1 || sources[0].DecisionCount != (DecisionCount{Allow: 1, Deny: 2}) {
		t.Errorf("sources after upgrade = %+v, want g with 1 allowed and 2 denied", sources)
	}
}
