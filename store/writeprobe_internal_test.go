package store

import (
	"errors"
	"strconv"
	"strings"
	"testing"
)

func openProbeDB(t *testing.T) *DB {
	t.Helper()
	db, err := Open(t.Context(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// TestDB_ProbeWrite_FullDatabase fills the database (a page limit on the
// writer stands in for a full disk: SQLite answers both with SQLITE_FULL)
// until scans fail, and expects the probe to say so.
func TestDB_ProbeWrite_FullDatabase(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db := openProbeDB(t)
	if err := db.ProbeWrite(ctx); err != nil {
		t.Fatalf("probe of a healthy database: %v", err)
	}
	var pages int64
	if err := db.w.QueryRowContext(ctx, "PRAGMA page_count").Scan(&pages); err != nil {
		t.Fatal(err)
	}
	// The writer is one connection, so the pragma holds for every write.
	if _, err := db.w.ExecContext(ctx, "PRAGMA max_page_count = "+strconv.FormatInt(pages+2, 10)); err != nil {
		t.Fatal(err)
	}
	var scanErr error
	for i := 0; i < 5000 && scanErr == nil; i++ {
		scanErr = db.LogScan(ctx, &Scan{Source: "gate-1", Decision: "deny", Reason: "not_a_pass"})
	}
	if scanErr == nil {
		t.Fatal("scans still logged after the page limit")
	}
	if !isFull(scanErr) {
		t.Fatalf("scan error %v, want SQLITE_FULL", scanErr)
	}
	// Taking the lock is not writing: a ping still passes.
	if err := db.Ping(ctx); err != nil {
		t.Fatalf("ping: %v", err)
	}
	err := db.probeWrite(ctx)
	if !errors.Is(err, ErrNoSpace) {
		t.Fatalf("probe on a full database: %v, want ErrNoSpace", err)
	}
	if !strings.Contains(err.Error(), "probe write") {
		t.Errorf("error %q does not name the operation", err)
	}
}

// TestDB_ProbeWrite_Cached: a prober polling many times a second costs
// one write per probeEvery.
func TestDB_ProbeWrite_Cached(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db := openProbeDB(t)
	at := func() int64 {
		var v int64
		if err := db.r.QueryRowContext(ctx, "SELECT at_ms FROM write_probe WHERE id = 1").Scan(&v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	if err := db.ProbeWrite(ctx); err != nil {
		t.Fatal(err)
	}
	first := at()
	before := db.probe.at
	for range 100 {
		if err := db.ProbeWrite(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if db.probe.at != before || at() != first {
		t.Error("rapid probes wrote again")
	}
	// Once the answer is old, the next probe writes.
	db.probe.at = before.Add(-probeEvery)
	if err := db.ProbeWrite(ctx); err != nil {
		t.Fatal(err)
	}
	if db.probe.at == before.Add(-probeEvery) {
		t.Error("an old answer was reused")
	}
}

// TestDB_ProbeWrite_Closed: a database that cannot be written at all is
// not ready.
func TestDB_ProbeWrite_Closed(t *testing.T) {
	t.Parallel()
	db := openProbeDB(t)
	db.Close()
	if err := db.probeWrite(t.Context()); err == nil {
		t.Fatal("probe of a closed database succeeded")
	}
}
