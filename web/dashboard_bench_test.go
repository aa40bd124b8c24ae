package web_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"testing"
	"time"

	"passgate/store"
	"passgate/web"
)

// TestDashboardRenderBench measures the landing page's server time with
// 10,000,000 scans in the log, spread evenly over the 28 days the log
// keeps by default and ending at the fixed now (mid-afternoon), so about
// 230,000 of them are today's. Building the log takes minutes: the test
// runs only with PASSGATE_DASH_BENCH=1.
func TestDashboardRenderBench(t *testing.T) {
	if os.Getenv("PASSGATE_DASH_BENCH") != "1" {
		t.Skip("set PASSGATE_DASH_BENCH=1 to build a 10,000,000-scan log and time the dashboard")
	}
	const n = 10_000_000
	ts := newTestServer(t)
	_, now := synthNow()
	ts.DB.Now = func() time.Time { return now }
	start := time.Now()
	fillBenchScans(t, ts.DB, n, now.Add(-28*24*time.Hour), now)
	t.Logf("%d scans logged in %s", n, time.Since(start).Round(time.Second))

	token, err := ts.DB.CreateSession(context.Background(), mustUser(t, ts, "admin").ID, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	h := ts.Web.Handler()
	render := func() time.Duration {
		req := httptest.NewRequest(http.MethodGet, "/admin", nil)
		req.AddCookie(&http.Cookie{Name: web.SessionCookie, Value: token})
		rec := httptest.NewRecorder()
		t0 := time.Now()
		h.ServeHTTP(rec, req)
		d := time.Since(t0)
		if rec.Code != http.StatusOK {
			t.Fatalf("status %d", rec.Code)
		}
		return d
	}
	render() // the first read brings the index pages into the cache
	var times []time.Duration
	for range 9 {
		times = append(times, render())
	}
	slices.Sort(times)
	t.Logf("dashboard render over %d scans: min %s, median %s, max %s (%d renders)",
		n, times[0], times[len(times)/2], times[len(times)-1], len(times))
	if med := times[len(times)/2]; med > 50*time.Millisecond {
		t.Errorf("median render %s, want at most 50 ms", med)
	}
}

func mustUser(t *testing.T, ts *testServer, name string) *store.User {
	t.Helper()
	u, err := ts.DB.FindUserByName(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// fillBenchScans writes n scans evenly over [from, to) in one INSERT …
// SELECT from a recursive sequence: 200 sources, 100,000 people, one in
// twelve denied for one of six reasons. The scan indexes are dropped
// first and built again after, much faster than growing them row by row.
func fillBenchScans(t *testing.T, db *store.DB, n int, from, to time.Time) {
	t.Helper()
	raw := rawDB(t, db)
	rows, err := raw.Query(`SELECT sql FROM sqlite_schema WHERE type = 'index' AND tbl_name = 'scans' AND sql IS NOT NULL`)
	if err != nil {
		t.Fatal(err)
	}
	var indexes []string
	for rows.Next() {
		var q string
		if err := rows.Scan(&q); err != nil {
			t.Fatal(err)
		}
		indexes = append(indexes, q)
	}
	rows.Close()
	for _, q := range []string{"DROP INDEX scans_at", "DROP INDEX scans_source_at"} {
		if _, err := raw.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	step := float64(to.Sub(from).Milliseconds()) / float64(n)
	_, err = raw.Exec(`
		WITH RECURSIVE k(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM k WHERE i < ?1 - 1)
		INSERT INTO scans (at_ms, source, decision, reason, repeat, pass_id, subject)
		SELECT ?2 + CAST(i * ?3 AS INTEGER),
			'gate-' || ((i * 104729) % 200),
			CASE WHEN i % 12 = 0 THEN 'deny' ELSE 'allow' END,
			CASE WHEN i % 12 <> 0 THEN 'ok' ELSE CASE (i / 12) % 6
				WHEN 0 THEN 'expired' WHEN 1 THEN 'status_red' WHEN 2 THEN 'status_yellow'
				WHEN 3 THEN 'test_too_old' WHEN 4 THEN 'revoked' ELSE 'bad_signature' END END,
			0,
			unhex(printf('9a%022x', i)),
			unhex(printf('5b%030x', (i * 2654435761) % 100000))
		FROM k`, n, from.UnixMilli(), step)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range indexes {
		if _, err := raw.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	countRawScans(t, raw)
	if _, err := raw.Exec(`PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
		t.Fatal(err)
	}
}
