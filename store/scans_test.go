package store_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"passgate/pass"
	"passgate/store"
)

func newScan(n uint16, at time.Time) *store.Scan {
	return &store.Scan{At: at, Source: "gate-1", Decision: "allow", Reason: "ok",
		PassID: passID(n), Subject: subj(byte(n)), KID: kid(2)}
}

func TestDB_LogScan(t *testing.T) {
	t.Parallel()
	t.Run("OK", func(t *testing.T) {
		db := MustOpenDB(t)
		s := newScan(1, time.Time{})
		s.Repeat = true
		if err := db.LogScan(t.Context(), s); err != nil {
			t.Fatal(err)
		}
		if s.ID == 0 || !s.At.Equal(t0) {
			t.Fatalf("scan = %+v", s)
		}
		// Undecodable input: no identifiers at all.
		bad := &store.Scan{At: t0.Add(time.Second), Source: "gate-1", Decision: "deny", Reason: "not_a_pass"}
		if err := db.LogScan(t.Context(), bad); err != nil {
			t.Fatal(err)
		}
		list, err := db.FindScans(t.Context(), store.ScanFilter{})
		if err != nil {
			t.Fatal(err)
		}
		if len(list) != 2 || *list[0] != *bad || *list[1] != *s {
			t.Fatalf("scans = %+v, %+v", list[0], list[1])
		}
	})
	t.Run("ErrInvalid", func(t *testing.T) {
		db := MustOpenDB(t)
		for _, mod := range []func(*store.Scan){
			func(s *store.Scan) { s.Decision = "maybe" },
			func(s *store.Scan) { s.Reason = "" },
			func(s *store.Scan) { s.Reason = strings.Repeat("r", 65) },
			func(s *store.Scan) { s.Source = strings.Repeat("s", 129) },
		} {
			s := newScan(1, t0)
			mod(s)
			if err := db.LogScan(t.Context(), s); !errors.Is(err, store.ErrInvalid) {
				t.Errorf("%+v: err = %v, want ErrInvalid", s, err)
			}
		}
	})
	t.Run("ErrCanceled", func(t *testing.T) {
		db := MustOpenDB(t)
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		if err := db.LogScan(ctx, newScan(1, t0)); !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
		if list, _ := db.FindScans(t.Context(), store.ScanFilter{}); len(list) != 0 {
			t.Fatal("a scan refused by its context was logged")
		}
	})
	t.Run("ErrClosed", func(t *testing.T) {
		db, err := store.Open(t.Context(), t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
		s := newScan(1, t0)
		if err := db.LogScan(t.Context(), s); !errors.Is(err, store.ErrClosed) {
			t.Fatalf("err = %v, want ErrClosed", err)
		}
		if s.ID != 0 {
			t.Fatal("refused scan got an ID")
		}
	})
}

// TestDB_LogScan_GroupCommit: many concurrent gates, every scan
// acknowledged once, durable, with a unique ID, in far fewer commits than
// scans.
func TestDB_LogScan_GroupCommit(t *testing.T) {
	const workers, perWorker = 64, 500
	dir := t.TempDir()
	db, err := store.Open(t.Context(), dir)
	if err != nil {
		t.Fatal(err)
	}
	ids := make([][]int64, workers)
	var wg sync.WaitGroup
	start := time.Now()
	for w := range workers {
		wg.Go(func() {
			for i := range perWorker {
				s := newScan(uint16(w*perWorker+i), t0.Add(time.Duration(i)*time.Millisecond))
				if err := db.LogScan(t.Context(), s); err != nil {
					t.Error(err)
					return
				}
				ids[w] = append(ids[w], s.ID)
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	commits := db.ScanCommits()
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d scans in %v (%.0f/s), %d commits, %.1f scans per commit",
		workers*perWorker, elapsed, float64(workers*perWorker)/elapsed.Seconds(), commits, float64(workers*perWorker)/float64(commits))
	if t.Failed() {
		return
	}
	if commits >= workers*perWorker/4 {
		t.Errorf("%d commits for %d scans: not grouping", commits, workers*perWorker)
	}

	seen := make(map[int64]bool, workers*perWorker)
	var all []int64
	for _, list := range ids {
		for _, id := range list {
			if id == 0 || seen[id] {
				t.Fatalf("ID %d zero or given twice", id)
			}
			seen[id] = true
			all = append(all, id)
		}
	}
	db = MustOpenDBDir(t, dir)
	n, err := db.CountScansByID(t.Context(), all)
	if err != nil {
		t.Fatal(err)
	}
	if n != workers*perWorker {
		t.Fatalf("%d of %d acknowledged scans found after reopening", n, workers*perWorker)
	}
	allow, deny, err := db.ScanStats(t.Context(), time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if allow != workers*perWorker || deny != 0 {
		t.Fatalf("stats %d/%d, want %d/0", allow, deny, workers*perWorker)
	}
}

// holdWriteLock takes the database's write lock from another connection,
// as a second process would, and returns a function that commits and
// releases it.
func holdWriteLock(t *testing.T, path string) (*sql.Conn, func()) {
	t.Helper()
	raw := rawOpen(t, path)
	c, err := raw.Conn(ctxb())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.ExecContext(ctxb(), "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	release := func() {
		once.Do(func() {
			if _, err := c.ExecContext(ctxb(), "COMMIT"); err != nil {
				t.Error(err)
			}
			c.Close()
		})
	}
	t.Cleanup(release)
	return c, release
}

// waitFor polls cond for up to ten seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// TestDB_Close_FlushesScans: scans queued when Close begins are written
// and acknowledged; callers still waiting to join a full queue get in
// too; a caller whose context ends while the queue is full gives up.
func TestDB_Close_FlushesScans(t *testing.T) {
	dir := t.TempDir()
	db, err := store.Open(t.Context(), dir)
	if err != nil {
		t.Fatal(err)
	}
	_, release := holdWriteLock(t, db.Path())

	// More than one batch plus a full queue, so however much the writer
	// took into its blocked batch, the queue fills up.
	const n = 2*1024 + 100
	scans := make([]*store.Scan, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		scans[i] = newScan(uint16(i), t0)
		wg.Go(func() { errs[i] = db.LogScan(t.Context(), scans[i]) })
	}
	// The writer holds a batch and waits for the lock; the queue is full.
	waitFor(t, "a full queue", func() bool { return db.ScanQueueLen() == 1024 })

	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if err := db.LogScan(ctx, newScan(9999, t0)); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("LogScan on a full queue: err = %v, want DeadlineExceeded", err)
	}

	closed := make(chan error)
	go func() { closed <- db.Close() }()
	time.Sleep(20 * time.Millisecond) // let Close begin
	release()
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	var ids []int64
	for i, err := range errs {
		if err != nil {
			t.Fatalf("scan %d: %v", i, err)
		}
		ids = append(ids, scans[i].ID)
	}
	if err := db.LogScan(t.Context(), newScan(1, t0)); !errors.Is(err, store.ErrClosed) {
		t.Fatalf("after Close: err = %v, want ErrClosed", err)
	}
	db = MustOpenDBDir(t, dir)
	if got, err := db.CountScansByID(t.Context(), ids); err != nil || got != n {
		t.Fatalf("%d of %d scans after reopening (%v)", got, n, err)
	}
	if list, _ := db.FindScans(t.Context(), store.ScanFilter{Limit: store.MaxScanLimit}); len(list) != n {
		t.Fatalf("%d scans stored, want %d (the timed-out one must not be)", len(list), n)
	}
}

// TestDB_LogScan_FailedCommit: when a batch cannot be written, every scan
// in it gets the error and none is stored.
func TestDB_LogScan_FailedCommit(t *testing.T) {
	t.Parallel()
	db := MustOpenDB(t)
	lock, release := holdWriteLock(t, db.Path())
	w, _ := db.Pools()

	// The first scan is in the writer's hands, waiting for the lock ...
	first := newScan(1, t0)
	firstErr := make(chan error, 1)
	go func() { firstErr <- db.LogScan(t.Context(), first) }()
	waitFor(t, "the writer to wait for the lock", func() bool { return w.Stats().InUse == 1 })

	// ... while the next batch queues up, one scan of it poisoned.
	const n = 50
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		s := newScan(uint16(100+i), t0)
		if i == n/2 {
			s.Source = "poison"
		}
		wg.Go(func() { errs[i] = db.LogScan(t.Context(), s) })
	}
	waitFor(t, "the batch to queue", func() bool { return db.ScanQueueLen() == n })
	if _, err := lock.ExecContext(t.Context(), `CREATE TRIGGER poison BEFORE INSERT ON scans
		WHEN NEW.source = 'poison' BEGIN SELECT RAISE(ABORT, 'poisoned'); END`); err != nil {
		t.Fatal(err)
	}
	release()
	wg.Wait()
	if err := <-firstErr; err != nil {
		t.Fatalf("first batch: %v", err)
	}
	for i, err := range errs {
		if err == nil || !strings.Contains(err.Error(), "poisoned") {
			t.Fatalf("scan %d of the failed batch: err = %v", i, err)
		}
	}
	list, err := db.FindScans(t.Context(), store.ScanFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].ID != first.ID {
		t.Fatalf("%d scans stored, want only the first", len(list))
	}
}

// TestDB_TwoHandles: two processes (here two handles) write the same file
// at once: scans from one, registrations, passes and revocations from the
// other. busy_timeout and immediate transactions make both succeed.
func TestDB_TwoHandles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	var server, cli *store.DB
	var wg sync.WaitGroup
	wg.Go(func() { server = MustOpenDBDir(t, dir) })
	wg.Go(func() { cli = MustOpenDBDir(t, dir) })
	wg.Wait()
	if t.Failed() {
		return
	}
	_, issuer := MustSetup(t, cli)

	const gates, perGate, people = 16, 200, 150
	var logged atomic.Int64
	for g := range gates {
		wg.Go(func() {
			for i := range perGate {
				if err := server.LogScan(t.Context(), newScan(uint16(g*perGate+i), t0)); err != nil {
					t.Errorf("server: %v", err)
					return
				}
				logged.Add(1)
			}
		})
	}
	wg.Go(func() {
		for i := range people {
			p := &store.Person{Subject: pass.Subject{0x77, byte(i >> 8), byte(i)}, MaskedName: "李*", IDTail: "0001", Color: pass.Green}
			if err := cli.SavePerson(t.Context(), p, "desk"); err != nil {
				t.Errorf("cli: %v", err)
				return
			}
			ip := &store.IssuedPass{ID: pass.ID{0x77, byte(i >> 8), byte(i)}, Subject: p.Subject, KID: issuer.KID,
				Kind: pass.Paper, Color: pass.Green, ExpiresAt: t0.Add(pass.PaperValidity), Actor: "desk"}
			if err := cli.CreatePass(t.Context(), ip); err != nil {
				t.Errorf("cli: %v", err)
				return
			}
			if i%3 == 0 {
				if _, err := cli.SetStatus(t.Context(), p.Subject, pass.Yellow, "contact", "desk"); err != nil {
					t.Errorf("cli: %v", err)
					return
				}
			}
			if err := cli.CreateRevocation(t.Context(), &store.Revocation{Kind: store.RevokePass, Target: ip.ID[:], Reason: "test"}); err != nil {
				t.Errorf("cli: %v", err)
				return
			}
		}
	})
	wg.Wait()
	if t.Failed() {
		return
	}
	// Each handle sees the other's writes.
	if allow, _, err := cli.ScanStats(t.Context(), time.Time{}); err != nil || allow != gates*perGate {
		t.Fatalf("cli sees %d scans (%v), want %d", allow, err, gates*perGate)
	}
	revs, err := server.RevocationsSince(t.Context(), 0)
	if err != nil {
		t.Fatal(err)
	}
	if want := people + (people+2)/3; len(revs) != want {
		t.Fatalf("server sees %d revocations, want %d", len(revs), want)
	}
	if err := server.IntegrityCheck(t.Context()); err != nil {
		t.Fatal(err)
	}
}

func TestDB_FindScans(t *testing.T) {
	t.Parallel()
	db := MustOpenDB(t)
	for i := range 10 {
		s := newScan(uint16(i), t0.Add(time.Duration(i)*time.Minute))
		if i%2 == 1 {
			s.Source, s.Decision, s.Reason = "gate-2", "deny", "status_red"
		}
		if err := db.LogScan(t.Context(), s); err != nil {
			t.Fatal(err)
		}
	}
	ids := func(list []*store.Scan) string {
		var b strings.Builder
		for _, s := range list {
			fmt.Fprintf(&b, "%d ", s.ID)
		}
		return strings.TrimSpace(b.String())
	}
	for _, tt := range []struct {
		name string
		f    store.ScanFilter
		want string
	}{
		{"NewestFirst", store.ScanFilter{}, "10 9 8 7 6 5 4 3 2 1"},
		{"Limit", store.ScanFilter{Limit: 3}, "10 9 8"},
		{"AfterID", store.ScanFilter{AfterID: 7}, "8 9 10"},
		{"AfterIDLimit", store.ScanFilter{AfterID: 2, Limit: 2}, "3 4"},
		{"Since", store.ScanFilter{Since: t0.Add(7 * time.Minute)}, "10 9 8"},
		{"Until", store.ScanFilter{Until: t0.Add(2 * time.Minute)}, "2 1"},
		{"Source", store.ScanFilter{Source: "gate-2", Since: t0.Add(4 * time.Minute)}, "10 8 6"},
		{"None", store.ScanFilter{Source: "gate-9"}, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			list, err := db.FindScans(t.Context(), tt.f)
			if err != nil {
				t.Fatal(err)
			}
			if got := ids(list); got != tt.want {
				t.Fatalf("IDs %q, want %q", got, tt.want)
			}
		})
	}
}

func TestDB_CountScansByID(t *testing.T) {
	t.Parallel()
	db := MustOpenDB(t)
	var ids []int64
	for i := range 1200 {
		s := newScan(uint16(i), t0)
		if err := db.LogScan(t.Context(), s); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, s.ID)
	}
	t.Run("OK", func(t *testing.T) {
		// More than one IN chunk, duplicates and unknown IDs.
		query := append(append(ids[:1100:1100], ids[:50]...), -1, 1e9)
		n, err := db.CountScansByID(t.Context(), query)
		if err != nil {
			t.Fatal(err)
		}
		if n != 1100 {
			t.Fatalf("count = %d, want 1100", n)
		}
	})
	t.Run("Empty", func(t *testing.T) {
		if n, err := db.CountScansByID(t.Context(), nil); err != nil || n != 0 {
			t.Fatalf("count = %d, %v", n, err)
		}
	})
}

func TestDB_LastSeen(t *testing.T) {
	t.Parallel()
	t.Run("OK", func(t *testing.T) {
		db := MustOpenDB(t)
		for _, d := range []time.Duration{0, 3 * time.Minute, time.Minute} {
			if err := db.LogScan(t.Context(), newScan(1, t0.Add(d))); err != nil {
				t.Fatal(err)
			}
		}
		if err := db.LogScan(t.Context(), newScan(2, t0.Add(time.Hour))); err != nil {
			t.Fatal(err)
		}
		got, err := db.LastSeen(t.Context(), subj(1), passID(1), t0.Add(-5*time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		if !got.Equal(t0.Add(3 * time.Minute)) {
			t.Fatalf("last seen %v", got)
		}
	})
	t.Run("ErrNotFound", func(t *testing.T) {
		db := MustOpenDB(t)
		if err := db.LogScan(t.Context(), newScan(1, t0)); err != nil {
			t.Fatal(err)
		}
		if _, err := db.LastSeen(t.Context(), subj(1), passID(1), t0.Add(time.Millisecond)); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("outside the window: err = %v, want ErrNotFound", err)
		}
		if _, err := db.LastSeen(t.Context(), subj(2), passID(2), time.Time{}); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("never seen: err = %v, want ErrNotFound", err)
		}
		// Another pass of the same holder is not this pass.
		if _, err := db.LastSeen(t.Context(), subj(1), passID(7), time.Time{}); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("another pass of the holder: err = %v, want ErrNotFound", err)
		}
	})
	t.Run("UsesIndex", func(t *testing.T) {
		db := MustOpenDB(t)
		_, r := db.Pools()
		rows, err := r.Query("EXPLAIN QUERY PLAN "+store.LastSeenSQL, []byte("x"), 0, []byte("y"))
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var plan strings.Builder
		for rows.Next() {
			var id, parent, notused int
			var detail string
			if err := rows.Scan(&id, &parent, &notused, &detail); err != nil {
				t.Fatal(err)
			}
			plan.WriteString(detail + "; ")
		}
		if !strings.Contains(plan.String(), "USING PRIMARY KEY (day=? AND subject=? AND at_ms>? AND at_ms<?)") || !strings.Contains(plan.String(), "SEARCH scans USING INTEGER PRIMARY KEY (rowid>?)") ||
			strings.Contains(plan.String(), "SCAN scans") {
			t.Fatalf("plan does not read scan_subjects and the tail by id: %s", plan.String())
		}
	})
}

func TestDB_ScanStats(t *testing.T) {
	t.Parallel()
	db := MustOpenDB(t)
	for i, dec := range []string{"allow", "deny", "allow", "allow", "deny"} {
		s := newScan(uint16(i), t0.Add(time.Duration(i)*time.Hour))
		s.Decision = dec
		if err := db.LogScan(t.Context(), s); err != nil {
			t.Fatal(err)
		}
	}
	for _, tt := range []struct {
		since       time.Time
		allow, deny int64
	}{{time.Time{}, 3, 2}, {t0.Add(2 * time.Hour), 2, 1}, {t0.Add(10 * time.Hour), 0, 0}} {
		allow, deny, err := db.ScanStats(t.Context(), tt.since)
		if err != nil {
			t.Fatal(err)
		}
		if allow != tt.allow || deny != tt.deny {
			t.Errorf("since %v: %d/%d, want %d/%d", tt.since, allow, deny, tt.allow, tt.deny)
		}
	}
}

// BenchmarkLogScanParallel measures the group-commit writer with many
// gates waiting at once (32 goroutines per core).
func BenchmarkLogScanParallel(b *testing.B) {
	db := MustOpenDB(b)
	var n atomic.Uint32
	b.SetParallelism(32)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.Add(1)
			s := &store.Scan{At: t0, Source: "gate-1", Decision: "allow", Reason: "ok",
				PassID: pass.ID{byte(i >> 24), byte(i >> 16), byte(i >> 8), byte(i)}, Subject: subj(byte(i)), KID: kid(1)}
			if err := db.LogScan(b.Context(), s); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "scans/s")
	b.ReportMetric(float64(b.N)/float64(max(db.ScanCommits(), 1)), "scans/commit")
}

// BenchmarkLastSeen measures the repeat lookup of a check against a log
// of 100,000 scans.
func BenchmarkLastSeen(b *testing.B) {
	db := MustOpenDB(b)
	const logged = 100_000
	var wg sync.WaitGroup
	for w := range 100 {
		wg.Go(func() {
			for i := range logged / 100 {
				k := uint16(w*(logged/100) + i)
				if err := db.LogScan(b.Context(), newScan(k, t0.Add(time.Duration(i)*time.Second))); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if _, err := db.LastSeen(b.Context(), subj(byte(i)), passID(uint16(i)), t0); err != nil && !errors.Is(err, store.ErrNotFound) {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "lookups/s")
}

func TestDB_RecentPasses(t *testing.T) {
	t.Parallel()
	db := MustOpenDB(t)
	for i := range 5 {
		// Passes 0..4, each checked twice, the second time a minute later.
		for _, at := range []time.Time{t0.Add(time.Duration(i) * time.Minute), t0.Add(time.Duration(i+1) * time.Minute)} {
			if err := db.LogScan(t.Context(), newScan(uint16(i), at)); err != nil {
				t.Fatal(err)
			}
		}
	}
	t.Run("OK", func(t *testing.T) {
		got := map[pass.ID]time.Time{}
		complete, err := db.RecentPasses(t.Context(), t0.Add(3*time.Minute), 10, func(s store.SeenPass) { got[s.ID] = s.At })
		if err != nil || !complete {
			t.Fatalf("complete=%v err=%v", complete, err)
		}
		// Passes 2, 3 and 4 have a check at or after minute 3.
		if len(got) != 3 {
			t.Fatalf("%d passes, want 3: %v", len(got), got)
		}
		for id, at := range got {
			if n := int(id[2]); !at.Equal(t0.Add(time.Duration(n+1) * time.Minute)) {
				t.Errorf("pass %d: latest check %s, want the later one", n, at)
			}
		}
	})
	t.Run("Truncated", func(t *testing.T) {
		n := 0
		complete, err := db.RecentPasses(t.Context(), t0, 2, func(store.SeenPass) { n++ })
		if err != nil || complete || n != 2 {
			t.Fatalf("complete=%v n=%d err=%v, want an incomplete picture of 2", complete, n, err)
		}
	})
}

func TestDB_PurgeScans(t *testing.T) {
	t.Parallel()
	db := MustOpenDB(t)
	for i := range 10 {
		// Scans 0..9, one a day.
		if err := db.LogScan(t.Context(), newScan(uint16(i), t0.Add(time.Duration(i)*24*time.Hour))); err != nil {
			t.Fatal(err)
		}
	}
	// Batches of 3 take several transactions for the 7 old scans.
	n, err := db.PurgeScans(t.Context(), t0.Add(7*24*time.Hour), 3, "retention")
	if err != nil || n != 7 {
		t.Fatalf("purged %d: %v, want 7", n, err)
	}
	left, err := db.FindScans(t.Context(), store.ScanFilter{Limit: 100})
	if err != nil || len(left) != 3 {
		t.Fatalf("%d scans left: %v, want 3", len(left), err)
	}
	for _, s := range left {
		if s.At.Before(t0.Add(7 * 24 * time.Hour)) {
			t.Errorf("scan of %s survived the purge", s.At)
		}
	}
	var purges []*store.AuditRecord
	if err := db.FindAudit(t.Context(), store.AuditFilter{}, func(a *store.AuditRecord) error {
		if a.Action == store.AuditPurge {
			purges = append(purges, a)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(purges) != 1 || purges[0].Actor != "retention" || !strings.Contains(string(purges[0].Detail), `"rows":7`) {
		t.Fatalf("audited purges %+v", purges)
	}
	if n, err := db.PurgeScans(t.Context(), t0.Add(7*24*time.Hour), 3, "retention"); err != nil || n != 0 {
		t.Fatalf("second purge: %d %v", n, err)
	}
	if _, err := db.VerifyAudit(t.Context()); err != nil {
		t.Fatalf("audit trail after purges: %v", err)
	}
}
