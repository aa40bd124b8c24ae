package store_test

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"passgate/store"
)

// withUmask runs the test under umask 022, the usual default, which lets
// SQLite create files 0644.
func withUmask022(t *testing.T) {
	old := syscall.Umask(0o022)
	t.Cleanup(func() { syscall.Umask(old) })
}

// modes returns the permission bits of every entry under dir (dir itself
// as ".").
func modes(t *testing.T, dir string) map[string]os.FileMode {
	t.Helper()
	m := map[string]os.FileMode{}
	err := filepath.Walk(dir, func(path string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		m[rel] = info.Mode().Perm()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func checkOwnerOnly(t *testing.T, dir string, want ...string) {
	t.Helper()
	m := modes(t, dir)
	for _, name := range want {
		if _, ok := m[name]; !ok {
			t.Errorf("%s missing", name)
		}
	}
	for name, perm := range m {
		if perm&0o077 != 0 {
			t.Errorf("%s is %04o: readable by others", name, perm)
		}
	}
}

// A data directory made beforehand with 0755 (by hand, by a package)
// under umask 022: the database, its WAL and shared-memory files are
// created owner-only, and the directory is restricted.
func TestOpen_NewFilesOwnerOnly(t *testing.T) {
	t.Parallel()
	withUmask022(t)
	dir := filepath.Join(t.TempDir(), "data")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	db := MustOpenDBDir(t, dir)
	MustSetup(t, db) // writes: the WAL and -shm exist now
	if fixed := db.ModesFixed(); len(fixed) != 1 || !strings.HasPrefix(fixed[0], ". (was 0755)") {
		t.Errorf("modes fixed %v, want the directory", fixed)
	}
	checkOwnerOnly(t, dir, ".", store.FileName, store.FileName+"-wal", store.FileName+"-shm")
}

// Files readable by others from an earlier version are restricted on the
// next start, and each is named.
func TestOpen_FixesExistingModes(t *testing.T) {
	t.Parallel()
	withUmask022(t)
	dir := t.TempDir()
	db, err := store.Open(t.Context(), dir)
	if err != nil {
		t.Fatal(err)
	}
	MustSetup(t, db) // kept open: its WAL and -shm stay for the second open
	if err := os.MkdirAll(filepath.Join(dir, "tls"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "tls", "ca.key"), []byte("key"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "export.csv"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{".", "tls", "tls/ca.key", "export.csv", store.FileName, store.FileName + "-wal", store.FileName + "-shm"} {
		mode := os.FileMode(0o644)
		if name == "." || name == "tls" {
			mode = 0o755
		}
		if err := os.Chmod(filepath.Join(dir, name), mode); err != nil {
			t.Fatal(err)
		}
	}
	db2 := MustOpenDBDir(t, dir)
	defer db.Close()
	got := strings.Join(db2.ModesFixed(), "\n")
	for _, name := range []string{". (was 0755)", "tls (was 0755)", "tls/ca.key (was 0644)", "export.csv (was 0644)",
		store.FileName + " (was 0644)", store.FileName + "-wal (was 0644)", store.FileName + "-shm (was 0644)"} {
		if !strings.Contains(got, name) {
			t.Errorf("modes fixed %q lack %q", got, name)
		}
	}
	checkOwnerOnly(t, dir, ".", "tls", "tls/ca.key", "export.csv", store.FileName)
	// Nothing left to fix on the next start.
	db.Close()
	if db3 := MustOpenDBDir(t, dir); len(db3.ModesFixed()) != 0 {
		t.Errorf("modes fixed again: %v", db3.ModesFixed())
	}
}
