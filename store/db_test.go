package store_test

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"passgate/store"
)

func TestOpen(t *testing.T) {
	t.Parallel()
	t.Run("OK", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "new", "data")
		db := MustOpenDBDir(t, dir)
		if got, want := db.Path(), filepath.Join(dir, store.FileName); got != want {
			t.Fatalf("Path() = %q, want %q", got, want)
		}
		fi, err := os.Stat(dir)
		if err != nil {
			t.Fatal(err)
		}
		if perm := fi.Mode().Perm(); perm != 0o700 {
			t.Fatalf("data directory mode %o, want 700", perm)
		}
		if _, err := os.Stat(db.Path()); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("OddDirectoryName", func(t *testing.T) {
		// '?' and '#' would cut a DSN short if the path were not escaped.
		dir := filepath.Join(t.TempDir(), "a?b#c d%20")
		db := MustOpenDBDir(t, dir)
		if _, err := os.Stat(filepath.Join(dir, store.FileName)); err != nil {
			t.Fatalf("database not where expected: %v (path %s)", err, db.Path())
		}
	})
	t.Run("ErrNotPassgate", func(t *testing.T) {
		dir := t.TempDir()
		raw := rawOpen(t, filepath.Join(dir, store.FileName))
		if _, err := raw.Exec("CREATE TABLE other (x)"); err != nil {
			t.Fatal(err)
		}
		raw.Close()
		if db, err := store.Open(t.Context(), dir); err == nil {
			db.Close()
			t.Fatal("Open of a foreign database succeeded")
		} else if !strings.Contains(err.Error(), "not a passgate database") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("ErrSchemaTooNew", func(t *testing.T) {
		dir := t.TempDir()
		db, err := store.Open(t.Context(), dir)
		if err != nil {
			t.Fatal(err)
		}
		db.Close()
		raw := rawOpen(t, filepath.Join(dir, store.FileName))
		if _, err := raw.Exec("PRAGMA user_version = 99"); err != nil {
			t.Fatal(err)
		}
		raw.Close()
		if db, err := store.Open(t.Context(), dir); !errors.Is(err, store.ErrSchemaTooNew) {
			if db != nil {
				db.Close()
			}
			t.Fatalf("err = %v, want ErrSchemaTooNew", err)
		}
	})
}

// rawOpen opens a database file directly, bypassing the store.
func rawOpen(t *testing.T, path string) *sql.DB {
	t.Helper()
	raw, err := sql.Open("sqlite", path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { raw.Close() })
	return raw
}

func TestDB_Migrate(t *testing.T) {
	t.Parallel()
	t.Run("Idempotent", func(t *testing.T) {
		dir := t.TempDir()
		for i := range 3 {
			db, err := store.Open(t.Context(), dir)
			if err != nil {
				t.Fatalf("open %d: %v", i, err)
			}
			v, err := db.SchemaVersion(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if v != store.SchemaSteps {
				t.Fatalf("open %d: version %d, want %d", i, v, store.SchemaSteps)
			}
			if i == 0 {
				MustSetup(t, db)
			}
			if _, err := db.District(t.Context()); err != nil {
				t.Fatalf("open %d: data lost: %v", i, err)
			}
			if err := db.Close(); err != nil {
				t.Fatal(err)
			}
		}
	})
	t.Run("ConcurrentOpen", func(t *testing.T) {
		dir := t.TempDir()
		errs := make(chan error, 4)
		dbs := make(chan *store.DB, 4)
		for range 4 {
			go func() {
				db, err := store.Open(t.Context(), dir)
				errs <- err
				dbs <- db
			}()
		}
		for range 4 {
			if err := <-errs; err != nil {
				t.Error(err)
			}
			if db := <-dbs; db != nil {
				db.Close()
			}
		}
	})
}

// TestDB_Pragmas checks that every connection of both pools got its
// settings from the DSN.
func TestDB_Pragmas(t *testing.T) {
	t.Parallel()
	db := MustOpenDB(t)
	w, r := db.Pools()
	if got := w.Stats().MaxOpenConnections; got != 1 {
		t.Fatalf("writer pool max open = %d, want 1", got)
	}

	check := func(t *testing.T, name string, c *sql.Conn, queryOnly int) {
		t.Helper()
		for _, p := range []struct {
			pragma string
			want   string
		}{
			{"journal_mode", "wal"},
			{"synchronous", "2"},
			{"foreign_keys", "1"},
			{"busy_timeout", "10000"},
			{"query_only", map[int]string{0: "0", 1: "1"}[queryOnly]},
		} {
			var got string
			if err := c.QueryRowContext(t.Context(), "PRAGMA "+p.pragma).Scan(&got); err != nil {
				t.Fatalf("%s: %s: %v", name, p.pragma, err)
			}
			if got != p.want {
				t.Errorf("%s: %s = %s, want %s", name, p.pragma, got, p.want)
			}
		}
	}

	wc, err := w.Conn(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	check(t, "writer", wc, 0)
	wc.Close()

	// Hold four read connections at once so that each is a distinct one.
	var conns []*sql.Conn
	for range 4 {
		c, err := r.Conn(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	if got := r.Stats().OpenConnections; got != 4 {
		t.Fatalf("read pool has %d open connections, want 4", got)
	}
	for i, c := range conns {
		check(t, "reader "+string(rune('0'+i)), c, 1)
		if _, err := c.ExecContext(t.Context(), "DELETE FROM scans"); err == nil {
			t.Errorf("reader %d: write succeeded on a query_only connection", i)
		}
		c.Close()
	}

	t.Run("WriterBeginsImmediate", func(t *testing.T) {
		tx, err := w.BeginTx(t.Context(), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback()
		// The transaction has not written, yet it holds the write lock.
		other, err := sql.Open("sqlite", db.Path()+"?_pragma=busy_timeout(0)")
		if err != nil {
			t.Fatal(err)
		}
		defer other.Close()
		if _, err := other.Exec("BEGIN IMMEDIATE"); err == nil {
			other.Exec("ROLLBACK")
			t.Fatal("a second writer got the lock: writer transactions are not immediate")
		}
	})
}

func TestDB_IntegrityCheck(t *testing.T) {
	t.Parallel()
	t.Run("OK", func(t *testing.T) {
		db := MustOpenDB(t)
		MustSetup(t, db)
		if err := db.IntegrityCheck(t.Context()); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("ErrCorrupt", func(t *testing.T) {
		dir := t.TempDir()
		db, err := store.Open(t.Context(), dir)
		if err != nil {
			t.Fatal(err)
		}
		if err := db.LogScan(t.Context(), &store.Scan{Source: "gate-1", Decision: "allow", Reason: "ok"}); err != nil {
			t.Fatal(err)
		}
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
		// Make an index disagree with its table behind SQLite's back: the
		// index keeps entries for (at_ms, decision) but now claims to
		// cover (at_ms, source).
		raw := rawOpen(t, filepath.Join(dir, store.FileName))
		for _, q := range []string{
			"PRAGMA writable_schema = ON",
			"UPDATE sqlite_schema SET sql = replace(sql, 'decision', 'source') WHERE name = 'scans_at'",
		} {
			if _, err := raw.Exec(q); err != nil {
				t.Skipf("cannot corrupt the schema here: %v", err)
			}
		}
		raw.Close()
		db, err = store.Open(t.Context(), dir)
		if err != nil {
			t.Skipf("corrupted database does not open: %v", err)
		}
		defer db.Close()
		if err := db.IntegrityCheck(t.Context()); !errors.Is(err, store.ErrCorrupt) {
			t.Fatalf("err = %v, want ErrCorrupt", err)
		}
	})
}

func TestDB_Ping(t *testing.T) {
	t.Parallel()
	t.Run("OK", func(t *testing.T) {
		db := MustOpenDB(t)
		if err := db.Ping(t.Context()); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("ErrLocked", func(t *testing.T) {
		db := MustOpenDB(t)
		raw := rawOpen(t, db.Path())
		c, err := raw.Conn(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := c.ExecContext(t.Context(), "BEGIN IMMEDIATE"); err != nil {
			t.Fatal(err)
		}
		defer c.ExecContext(t.Context(), "ROLLBACK")
		ctx, cancel := context.WithTimeout(t.Context(), 200e6)
		defer cancel()
		if err := db.Ping(ctx); err == nil {
			t.Fatal("Ping succeeded while another process holds the write lock")
		}
	})
}

func TestDB_Close(t *testing.T) {
	t.Parallel()
	db, err := store.Open(t.Context(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func TestDB_ExternalWrites(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	a := MustOpenDBDir(t, dir)
	v0, err := a.ExternalWrites(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	// Writes of its own do not count.
	if err := a.LogScan(t.Context(), newScan(1, t0)); err != nil {
		t.Fatal(err)
	}
	if v, _ := a.ExternalWrites(t.Context()); v != v0 {
		t.Fatalf("own write changed the version: %d → %d", v0, v)
	}
	// Another handle (another process in production) does. It is opened
	// only now: its scan indexer may index a's scan from its start, and
	// that is another connection's write too.
	b := MustOpenDBDir(t, dir)
	if err := b.LogScan(t.Context(), newScan(2, t0)); err != nil {
		t.Fatal(err)
	}
	if v, _ := a.ExternalWrites(t.Context()); v == v0 {
		t.Fatal("another connection's commit went unnoticed")
	}
}
