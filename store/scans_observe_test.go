package store_test

import (
	"strings"
	"sync"
	"testing"
	"time"
)

// TestDB_ObserveScanCommits: the observer sees every group commit, with
// batch sizes adding up to the scans logged, a failed commit with its
// error, and nothing once removed.
func TestDB_ObserveScanCommits(t *testing.T) {
	t.Parallel()
	db := MustOpenDB(t)
	var (
		mu      sync.Mutex
		scans   int
		commits int
		failed  []error
		zeroDur int
	)
	db.ObserveScanCommits(func(n int, took time.Duration, err error) {
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			failed = append(failed, err)
			return
		}
		scans += n
		commits++
		if took <= 0 {
			zeroDur++
		}
	})
	const workers, perWorker = 16, 25
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range perWorker {
				if err := db.LogScan(t.Context(), newScan(uint16(w*perWorker+i), t0)); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	mu.Lock()
	if scans != workers*perWorker || commits < 1 || commits > scans || zeroDur > 0 || len(failed) > 0 {
		t.Errorf("observed %d scans in %d commits (%d without a duration, %d failed), want %d scans",
			scans, commits, zeroDur, len(failed), workers*perWorker)
	}
	if int64(commits) != db.ScanCommits() {
		t.Errorf("observed %d commits, the store counted %d", commits, db.ScanCommits())
	}
	mu.Unlock()

	// A commit that fails is reported with its error.
	lock, release := holdWriteLock(t, db.Path())
	if _, err := lock.ExecContext(t.Context(), `CREATE TRIGGER poison BEFORE INSERT ON scans
		WHEN NEW.source = 'poison' BEGIN SELECT RAISE(ABORT, 'poisoned'); END`); err != nil {
		t.Fatal(err)
	}
	release()
	s := newScan(9999, t0)
	s.Source = "poison"
	if err := db.LogScan(t.Context(), s); err == nil {
		t.Fatal("the poisoned scan was logged")
	}
	mu.Lock()
	if len(failed) != 1 || !strings.Contains(failed[0].Error(), "poisoned") {
		t.Errorf("failed commits observed: %v, want the poisoned one", failed)
	}
	mu.Unlock()

	// Removed, the observer hears nothing more.
	db.ObserveScanCommits(nil)
	if err := db.LogScan(t.Context(), newScan(10000, t0)); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if scans != workers*perWorker {
		t.Errorf("a removed observer still saw scans: %d", scans)
	}
}
