package web_test

import (
	"database/sql"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestReadyz_WriteLockHeld: another process holding the database's write
// lock (a stuck CLI, a copy tool) stops every scan from being logged; a
// ping still answers, the write probe does not, and /readyz says why.
func TestReadyz_WriteLockHeld(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	if code, _ := getReady(t, ts); code != http.StatusOK {
		t.Fatalf("healthy appliance: %d", code)
	}
	other, err := sql.Open("sqlite", ts.DB.Path()+"?_txlock=immediate")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	tx, err := other.BeginTx(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := tx.Exec("CREATE TABLE held (x)"); err != nil {
		t.Fatal(err)
	}
	// The probe's last answer is reused for two seconds.
	time.Sleep(2100 * time.Millisecond)
	start := time.Now()
	code, body := getReady(t, ts)
	if code != http.StatusServiceUnavailable || body.Status != "unavailable" {
		t.Fatalf("readyz with the write lock held elsewhere: %d %+v", code, body)
	}
	if !strings.Contains(body.Checks["database"], "scan log cannot take a write") {
		t.Errorf("reason %q does not say the scan log cannot be written", body.Checks["database"])
	}
	if took := time.Since(start); took > 4*time.Second {
		t.Errorf("readyz took %v: it must answer within its own timeout", took)
	}
}
