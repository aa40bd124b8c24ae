package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"time"

	"golang.org/x/sys/unix"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// ErrNoSpace means the scan log cannot grow: the disk holding the
// database is (nearly) full, or the database reached its page limit.
var ErrNoSpace = errors.New("store: no space for the scan log")

// Limits of the write probe.
const (
	// probeEvery is how long a probe's answer is reused: a monitor or a
	// load balancer polling /readyz many times a second then costs one
	// tiny write every two seconds, not one per poll.
	probeEvery = 2 * time.Second
	// minFreeBytes is the free space below which the scan log counts as
	// full. A WAL checkpoint or a burst of scans needs a few megabytes;
	// with less, writes fail with "database or disk is full" any moment.
	minFreeBytes = 8 << 20
	// minFreePages is the room the page limit must leave: a group commit
	// of scans grows the table and its indexes by a few pages.
	minFreePages = 16
)

// writeProbe remembers the last probe, so concurrent and rapid callers
// share one write.
type writeProbe struct {
	mu  sync.Mutex
	at  time.Time
	err error
}

// ProbeWrite reports whether the scan log can take a write now: it
// updates a one-row table in an immediate transaction on the writer (the
// same connection and lock the scan log uses) and checks that the disk
// and the database's page limit leave room to grow. A ping or a begin
// without a write would succeed on a full disk, where every scan fails.
// Answers are reused for probeEvery; the error says why the log cannot
// be written (ErrNoSpace, a lock held elsewhere, an I/O error).
func (db *DB) ProbeWrite(ctx context.Context) error {
	db.mu.RLock()
	closed := db.closed
	db.mu.RUnlock()
	if closed {
		return fmt.Errorf("probe write: %w", ErrClosed)
	}
	p := &db.probe
	p.mu.Lock()
	defer p.mu.Unlock()
	if now := time.Now(); !p.at.IsZero() && now.Sub(p.at) < probeEvery && now.After(p.at) {
		return p.err
	}
	p.err = db.probeWrite(ctx)
	p.at = time.Now()
	return p.err
}

func (db *DB) probeWrite(ctx context.Context) error {
	var st unix.Statfs_t
	if err := unix.Statfs(filepath.Dir(db.path), &st); err != nil {
		return fmt.Errorf("probe write: %w", err)
	}
	if free := uint64(st.Bavail) * uint64(st.Bsize); free < minFreeBytes {
		return fmt.Errorf("probe write: %w: %d KiB free on the disk", ErrNoSpace, free>>10)
	}
	err := db.update(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx,
			`INSERT INTO write_probe (id, at_ms) VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET at_ms = excluded.at_ms`,
			time.Now().UnixMilli()); err != nil {
			return err
		}
		var pages, maxPages, freePages int64
		if err := tx.QueryRowContext(ctx, "SELECT page_count, max_page_count, freelist_count FROM pragma_page_count, pragma_max_page_count, pragma_freelist_count").
			Scan(&pages, &maxPages, &freePages); err != nil {
			return err
		}
		if maxPages-pages+freePages < minFreePages {
			return fmt.Errorf("%w: the database reached its limit of %d pages", ErrNoSpace, maxPages)
		}
		return nil
	})
	if err != nil {
		if isFull(err) {
			err = fmt.Errorf("%w: %v", ErrNoSpace, err)
		}
		return fmt.Errorf("probe write: %w", err)
	}
	return nil
}

// isFull tells SQLite's "database or disk is full" from other failures.
func isFull(err error) bool {
	var se *sqlite.Error
	return errors.As(err, &se) && se.Code()&0xff == sqlite3.SQLITE_FULL
}
