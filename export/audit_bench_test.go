package export

import (
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"passgate/store"
)

// TestExportAuditMillion measures exporting a million audit records, as
// TestExportMillion does for scans (same children, same RSS and
// concurrent-scan figures). It runs only with PASSGATE_EXPORT_BENCH=1:
//
//	PASSGATE_EXPORT_BENCH=1 go test -run TestExportAuditMillion -v -timeout 30m ./export
func TestExportAuditMillion(t *testing.T) {
	if os.Getenv("PASSGATE_EXPORT_BENCH") != "1" {
		t.Skip("set PASSGATE_EXPORT_BENCH=1 to export a million audit records")
	}
	dir := t.TempDir()
	start := time.Now()
	fillAudit(t, dir, benchRows)
	t.Logf("inserted %d audit records in %v", benchRows, time.Since(start).Round(time.Millisecond))
	runMillionChildren(t, dir, KindAudit)
}

// fillAudit creates the database in dir and inserts n audit records over
// the first twenty days of November 2026 in one transaction. The hashes
// are not a valid chain (an export does not verify it, and chaining a
// million records through db.Audit one transaction each would take the
// whole run): only the columns' sizes matter here.
func fillAudit(t *testing.T, dir string, n int) {
	t.Helper()
	ctx := t.Context()
	db, err := store.Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	path := db.Path()
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	conn, err := sql.Open("sqlite", "file:"+filepath.ToSlash(path)+"?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	st, err := tx.PrepareContext(ctx, `INSERT INTO audit (seq, at_ms, actor, action, subject, detail, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`)
	if err != nil {
		t.Fatal(err)
	}
	actors := []string{"管理员", "张三", "cli", "=admin"}
	actions := []string{store.AuditLogin, store.AuditPolicyChanged, store.AuditPassIssued, store.AuditExport}
	span := int64(20 * 24 * time.Hour / time.Millisecond)
	base := day0.UnixMilli()
	h := make([]byte, 32)
	for i := range n {
		h[0], h[1], h[2] = byte(i), byte(i>>8), byte(i>>16)
		detail := fmt.Sprintf(`{"old":"green","new":"red","reason":"密接者，居家隔离","n":%d}`, i)
		if _, err := st.ExecContext(ctx, i+1, base+int64(i)*span/int64(n), actors[i%len(actors)], actions[i%len(actions)],
			fmt.Sprintf("%032x", i), detail, h, h); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
}
