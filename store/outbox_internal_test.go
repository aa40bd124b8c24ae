package store

import (
	"database/sql"
	"testing"
	"time"
)

// TestScanPurgeGuard runs retention's DELETE with ScanPurgeGuard: on an
// enrolled appliance only acknowledged scans go, and never the newest.
func TestScanPurgeGuard(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db, err := Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	purge := func() int64 {
		var n int64
		err := db.update(ctx, func(tx *sql.Tx) error {
			res, err := tx.ExecContext(ctx, `DELETE FROM scans WHERE at_ms < ? AND `+ScanPurgeGuard, time.Now().Add(time.Hour).UnixMilli())
			if err != nil {
				return err
			}
			n, err = res.RowsAffected()
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	logN := func(n int) {
		for range n {
			if err := db.LogScan(ctx, &Scan{Source: "g", Decision: "deny", Reason: "x"}); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Standalone: everything old goes.
	logN(5)
	if n := purge(); n != 5 {
		t.Fatalf("standalone purged %d, want 5", n)
	}
	// Enrolled: nothing until acknowledged, then all but the newest.
	err = db.update(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO sync_hub (id, url, hub_ca, appliance, token, bundle_key, enrolled_ms)
			VALUES (1, 'https://h', x'00', 'a', zeroblob(32), x'00', 0)`)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	logN(10) // ids 1..10 again: the table was empty
	if n := purge(); n != 0 {
		t.Fatalf("purged %d unacknowledged scans", n)
	}
	setScansAcked(t, db, 4)
	if n := purge(); n != 4 {
		t.Fatalf("purged %d, want the 4 acknowledged", n)
	}
	setScansAcked(t, db, 10)
	if n := purge(); n != 5 {
		t.Fatalf("purged %d, want 5 (all acknowledged but the newest)", n)
	}
}

// setScansAcked records that the hub acknowledged scans up to acked.
func setScansAcked(t *testing.T, db *DB, acked int64) {
	t.Helper()
	ctx := t.Context()
	if err := db.update(ctx, func(tx *sql.Tx) error { return saveCursor(ctx, tx, acked, 0) }); err != nil {
		t.Fatal(err)
	}
}
