package store_test

import (
	"database/sql"
	"fmt"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"passgate/store"
)

// The retention measurement: purging a million old scans (TestPurgeMillion)
// or a hub's million appliance scans (TestPurgeDistrictMillion) while gates keep
// logging checks. It runs only with PASSGATE_PURGE_BENCH=1:
//
//	PASSGATE_PURGE_BENCH=1 go test -run TestPurgeMillion -v -timeout 30m ./store
//
// It fills a fresh database with purgeRows scans older than the boundary
// (one transaction on a connection of its own), then starts
// purgeLoggers goroutines logging scans through db.LogScan as concurrent
// gates do, measures their rate for two seconds, and runs PurgeScans with
// batches of at most PASSGATE_PURGE_BATCH rows (default 1,000) meanwhile;
// PASSGATE_PURGE_ROWS changes the number of rows. It
// reports the purge time, the logging rate before and during the purge,
// and the worst and 99.9th-percentile LogScan latency during the purge.
const (
	purgeRows    = 1_000_000
	purgeLoggers = 16
)

func TestPurgeMillion(t *testing.T) {
	rows, batch := purgeBenchParams(t)
	ctx := t.Context()
	dir := t.TempDir()
	now := time.Now()
	boundary := now.Add(-28 * 24 * time.Hour)
	start := time.Now()
	fillOldScans(t, dir, rows, boundary)
	t.Logf("inserted %d scans in %v", rows, time.Since(start).Round(time.Millisecond))

	db, err := store.Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	measurePurge(t, db, "purge", rows, batch, func() (int64, error) {
		return db.PurgeScans(ctx, boundary, batch, "retention")
	})
}

// purgeBenchParams skips the test unless PASSGATE_PURGE_BENCH=1 and
// returns the rows to purge and the batch size the environment asks for.
func purgeBenchParams(t *testing.T) (rows, batch int) {
	if os.Getenv("PASSGATE_PURGE_BENCH") != "1" {
		t.Skip("set PASSGATE_PURGE_BENCH=1 to purge a million rows")
	}
	batch = 1000
	if s := os.Getenv("PASSGATE_PURGE_BATCH"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			t.Fatalf("PASSGATE_PURGE_BATCH=%q", s)
		}
		batch = n
	}
	rows = purgeRows
	if s := os.Getenv("PASSGATE_PURGE_ROWS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			t.Fatalf("PASSGATE_PURGE_ROWS=%q", s)
		}
		rows = n
	}
	return rows, batch
}

// measurePurge runs purge, which must delete rows rows, while
// purgeLoggers goroutines log scans through db.LogScan as concurrent
// gates do, and reports the purge time, the logging rate before and
// during it and the LogScan latencies during it, on a line starting
// "RESULT name".
func measurePurge(t *testing.T, db *store.DB, name string, rows, batch int, purge func() (int64, error)) {
	ctx := t.Context()
	var (
		logged  atomic.Int64
		failed  atomic.Int64
		purging atomic.Bool
		stop    = make(chan struct{})
		wg      sync.WaitGroup
		mu      sync.Mutex
		lat     []time.Duration // LogScan latencies while purging
	)
	for g := range purgeLoggers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []time.Duration
			defer func() { mu.Lock(); lat = append(lat, mine...); mu.Unlock() }()
			for {
				select {
				case <-stop:
					return
				default:
				}
				s := &store.Scan{Source: "gate-" + strconv.Itoa(g), Decision: "allow", Reason: "ok"}
				t0 := time.Now()
				if err := db.LogScan(ctx, s); err != nil {
					failed.Add(1)
					continue
				}
				if purging.Load() {
					mine = append(mine, time.Since(t0))
				}
				logged.Add(1)
			}
		}()
	}
	time.Sleep(2 * time.Second)
	before := logged.Load()
	logged.Store(0)
	purging.Store(true)
	start := time.Now()
	n, err := purge()
	took := time.Since(start)
	purging.Store(false)
	during := logged.Load()
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if n != int64(rows) {
		t.Fatalf("purged %d rows, want %d", n, rows)
	}
	slices.Sort(lat)
	p := func(q float64) time.Duration { return lat[min(len(lat)-1, int(q*float64(len(lat))))] }
	fmt.Printf("RESULT %s rows=%d batch=%d time=%v (%.0f rows/s); scans logged meanwhile=%d (%.0f/s; %.0f/s before the purge; %d failed); LogScan latency p50=%v p99=%v p99.9=%v max=%v\n",
		name, n, batch, took.Round(time.Millisecond), float64(n)/took.Seconds(), during, float64(during)/took.Seconds(),
		float64(before)/2, failed.Load(), p(0.5).Round(10*time.Microsecond), p(0.99).Round(10*time.Microsecond),
		p(0.999).Round(10*time.Microsecond), lat[len(lat)-1].Round(10*time.Microsecond))
	if failed.Load() > 0 {
		t.Errorf("%d scans failed during the purge", failed.Load())
	}
	if _, err := db.VerifyAudit(ctx); err != nil {
		t.Errorf("audit trail after the purge: %v", err)
	}
}

// fillOldScans creates the database in dir and inserts n scans spread
// over the week before before (fillOld).
func fillOldScans(t *testing.T, dir string, n int, before time.Time) {
	t.Helper()
	db, err := store.Open(t.Context(), dir)
	if err != nil {
		t.Fatal(err)
	}
	path := db.Path()
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	fillOld(t, path, n, before, `INSERT INTO scans (at_ms, source, decision, reason, repeat, pass_id, subject, kid) VALUES (?, ?, ?, ?, 0, ?, ?, ?)`,
		func(i int, at int64, pid, subj, kid []byte) []any {
			return []any{at, "gate-" + strconv.Itoa(i%8), "allow", "ok", pid, subj, kid}
		})
}

// fillOld inserts n rows into the database at path with insert, whose
// arguments row returns for the i-th row, logged at at (spread over the
// week before before) with the pass ID, subject and key ID given, in one
// transaction on a connection of its own (LogScan commits in batches of
// at most 1,024).
func fillOld(t *testing.T, path string, n int, before time.Time, insert string, row func(i int, at int64, pid, subj, kid []byte) []any) {
	t.Helper()
	ctx := t.Context()
	conn, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	st, err := tx.PrepareContext(ctx, insert)
	if err != nil {
		t.Fatal(err)
	}
	span := int64(7 * 24 * time.Hour / time.Millisecond)
	base := before.UnixMilli() - span - 1
	pid, subj, kid := make([]byte, 12), make([]byte, 16), make([]byte, 8)
	for i := range n {
		pid[0], pid[1], pid[2] = byte(i), byte(i>>8), byte(i>>16)
		subj[0], subj[1] = byte(i%5000), byte(i%5000>>8)
		if _, err := st.ExecContext(ctx, row(i, base+int64(i)*span/int64(n), pid, subj, kid)...); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
}
