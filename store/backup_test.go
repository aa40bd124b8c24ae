package store_test

import (
	"errors"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"passgate/store"
)

// A backup taken while scans are being logged is a consistent, openable
// database holding every scan acknowledged before it started, and the
// logging never fails meanwhile.
func TestDB_Backup(t *testing.T) {
	t.Parallel()
	db := MustOpenDB(t)
	ctx := t.Context()
	for i := range 200 {
		if err := db.LogScan(ctx, newScan(uint16(i), t0.Add(time.Duration(i)*time.Millisecond))); err != nil {
			t.Fatal(err)
		}
	}
	var (
		wg     sync.WaitGroup
		stop   atomic.Bool
		logged atomic.Int64
		failed atomic.Value
	)
	for g := range 4 {
		wg.Go(func() {
			for i := 0; !stop.Load(); i++ {
				if err := db.LogScan(ctx, newScan(uint16(1000+g*10000+i), t0.Add(time.Hour))); err != nil {
					failed.Store(err)
					return
				}
				logged.Add(1)
			}
		})
	}
	out := filepath.Join(t.TempDir(), "copy", "passgate.db")
	if err := os.MkdirAll(filepath.Dir(out), 0o700); err != nil {
		t.Fatal(err)
	}
	err := db.Backup(ctx, out)
	stop.Store(true)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if e := failed.Load(); e != nil {
		t.Fatalf("logging during the backup: %v", e)
	}
	if logged.Load() == 0 {
		t.Fatal("no scan was logged while the backup ran")
	}
	fi, err := os.Stat(out)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("backup mode %v, want 0600", fi.Mode().Perm())
	}
	// Only the copy is left: the directory it was written in is gone.
	if entries, err := os.ReadDir(filepath.Dir(out)); err != nil || len(entries) != 1 {
		t.Fatalf("beside the backup: %v, %v", entries, err)
	}

	copyDB, err := store.Open(ctx, filepath.Dir(out))
	if err != nil {
		t.Fatal(err)
	}
	defer copyDB.Close()
	if err := copyDB.IntegrityCheck(ctx); err != nil {
		t.Fatal(err)
	}
	got, err := copyDB.FindScans(ctx, store.ScanFilter{Limit: store.MaxScanLimit})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) < 200 || len(got) == store.MaxScanLimit {
		t.Fatalf("backup holds %d scans; 200 were logged before it", len(got))
	}
	// A snapshot: the copy holds a prefix of the log with no gap (scan ids
	// are handed out in commit order from 1).
	ids := map[int64]bool{}
	for _, s := range got {
		ids[s.ID] = true
	}
	for id := int64(1); id <= int64(len(got)); id++ {
		if !ids[id] {
			t.Fatalf("scan %d missing from a copy of %d scans", id, len(got))
		}
	}
}

func TestDB_BackupRefuses(t *testing.T) {
	t.Parallel()
	db := MustOpenDB(t)
	ctx := t.Context()
	existing := filepath.Join(t.TempDir(), "x.db")
	if err := os.WriteFile(existing, []byte("keep me"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := db.Backup(ctx, existing); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("backup over an existing file: %v", err)
	}
	if b, _ := os.ReadFile(existing); string(b) != "keep me" {
		t.Fatal("existing file was changed")
	}
	if err := db.Backup(ctx, db.Path()); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("backup over the database itself: %v", err)
	}
	if err := db.Backup(ctx, filepath.Join(t.TempDir(), "no", "such", "dir", "x.db")); err == nil {
		t.Fatal("backup into a missing directory succeeded")
	}
}

// A hub restored from a backup numbered its new revocations from the
// backup's last one, numbers its appliances had already pulled past: they
// asked for revocations after their mark and never got the new ones (a
// person red-coded after the restore kept passing every gate). Every
// start numbers on past anything the file could have handed out before.
func TestBackup_RestoredHubNumbersRevocationsPastTheLost(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	dirA, dirB := t.TempDir(), t.TempDir()
	db, err := store.Open(ctx, dirA)
	if err != nil {
		t.Fatal(err)
	}
	MustSetup(t, db)
	revoke := func(db *store.DB, n byte) int64 {
		t.Helper()
		r := &store.Revocation{Kind: store.RevokeSubject, Target: []byte{n, 15: 1}, Reason: "test"}
		if err := db.CreateRevocation(ctx, r); err != nil {
			t.Fatal(err)
		}
		return r.Seq
	}
	for i := range 3 {
		revoke(db, byte(i))
	}
	if err := db.Backup(ctx, filepath.Join(dirB, store.FileName)); err != nil {
		t.Fatal(err)
	}
	var pulled int64 // what appliances pulled from the lost timeline
	for i := range 2 {
		pulled = revoke(db, byte(10+i))
	}
	db.Close()

	restored, err := store.Open(ctx, dirB)
	if err != nil {
		t.Fatal(err)
	}
	defer restored.Close()
	if seq := revoke(restored, 20); seq <= pulled {
		t.Fatalf("the restored hub's new revocation is number %d; appliances pulled up to %d and will never see it", seq, pulled)
	}
	if seq := revoke(restored, 21); seq <= pulled+1 {
		t.Fatalf("numbering does not go on: %d", seq)
	}
}
