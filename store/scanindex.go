package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync/atomic"
	"time"
)

// The (subject, time) index of the scan log, scan_subjects, is built
// behind the log rather than by the scan writer (see the perf16idx
// migration): subjects arrive in random order, so a row-by-row index
// costs one dirty page per scan, while a range of thousands of scans
// sorted by subject shares its pages. Everything by subject reads the
// index up to the mark plus the scans above it (the tail), in one
// statement, so a scan is found from the moment it is logged.
const (
	// indexBatch is the tail at which the scan writer wakes the indexer.
	// Larger ranges share more index pages: on BenchmarkCommitScans the
	// writer and indexer together cost 26-27 us a scan at 4,096, 17-20
	// at 8,192 (the old index 41-45); but LastSeen reads the tail at about
	// 100 ns a scan (BenchmarkLastSeenTail), so it must stay short.
	indexBatch = 8192
	// indexStep caps the scans one index transaction takes, which bounds
	// how long it holds the writer connection.
	indexStep = 16384
	// maxIndexTail is the tail at which the scan writer stops taking
	// scans and indexes first: a query by subject reads the tail row by
	// row, so it must stay small whatever the indexer's lag.
	maxIndexTail = 4 * indexStep
	// indexIdle is how often a quiet log is indexed: a trickle of scans
	// that never reaches indexBatch is indexed within this time.
	indexIdle = time.Second
)

// scanIndexDay is the width of the day that leads scan_subjects' keys,
// in ms, as the perf16idx migration writes it. A day, not an hour: a
// trace of 28 days probes 28 keys (672 hours cost a 1,000,000-scan trace
// 13 times its time), and a range of scans still shares the pages of one
// day's index.
const scanIndexDay = "86400000"

// indexScansSQL indexes the scans in (?1, ?2], sorted so that the
// inserts walk the index in order and share its pages.
const indexScansSQL = `
	INSERT INTO scan_subjects (day, subject, at_ms, scan_id)
	SELECT at_ms / ` + scanIndexDay + `, subject, at_ms, id FROM scans
	WHERE id > ?1 AND id <= ?2 AND subject IS NOT NULL
	ORDER BY 1, 2, 3, 4`

// indexedScanIDsSQL selects the ids of the indexed scans of subject ?1
// at or after from and before until (SQL expressions), probing each day
// of the range that the index holds: the index is by day first.
func indexedScanIDsSQL(from, until string) string {
	return `WITH RECURSIVE h(n) AS (
			SELECT max(` + from + ` / ` + scanIndexDay + `, (SELECT min(day) FROM scan_subjects))
			UNION ALL SELECT n + 1 FROM h
			WHERE n < min((` + until + ` - 1) / ` + scanIndexDay + `, (SELECT max(day) FROM scan_subjects)))
		SELECT x.scan_id FROM h, scan_subjects x
		WHERE x.day = h.n AND x.subject = ?1 AND x.at_ms >= ` + from + ` AND x.at_ms < ` + until
}

// scanTailSQL is the mark and the newest scan id.
const scanTailSQL = `SELECT
	coalesce((SELECT mark FROM scan_index_mark WHERE id = 1), 0),
	coalesce((SELECT max(id) FROM scans), 0)`

// lastSeenSQL is the latest check of pass ?3 held by subject ?1 at or
// after ?2: in the index up to the mark, and among the scans above it.
var lastSeenSQL = `SELECT max(at_ms) FROM (
	SELECT at_ms FROM scans WHERE id IN (` + indexedScanIDsSQL("?2", "9223372036854775807") + `) AND pass_id = ?3
	UNION ALL
	SELECT at_ms FROM scans
	WHERE id > (SELECT mark FROM scan_index_mark WHERE id = 1) AND subject = ?1 AND +at_ms >= ?2 AND pass_id = ?3)`

// scanIndexer is the state shared by the scan writer and the indexer
// goroutine.
type scanIndexer struct {
	wake chan struct{} // buffered 1: a pending wake-up is enough
	stop chan struct{}
	done chan struct{}
	// mark is the mark as last read or written here, and top the newest
	// scan id the writer committed: their difference is the tail as the
	// writer sees it (scans stored by other paths are found by the
	// indexer's idle round).
	mark, top atomic.Int64
	// err is the last indexing error, nil once a later round succeeds.
	err atomic.Pointer[error]
}

// startIndexer starts the indexer goroutine (Open).
func (db *DB) startIndexer() {
	ix := &db.index
	ix.wake = make(chan struct{}, 1)
	ix.stop = make(chan struct{})
	ix.done = make(chan struct{})
	ix.wake <- struct{}{} // what the last run left unindexed, at once
	go db.runIndexer()
}

// stopIndexer stops the indexer goroutine after the scan writer has
// stopped (Close); a second call does nothing. Only Open's caller and
// Close call it, never at once. What is left unindexed is indexed after the next
// Open: the mark is in the file.
func (db *DB) stopIndexer() {
	ix := &db.index
	if ix.stop == nil {
		return
	}
	close(ix.stop)
	<-ix.done
	ix.stop = nil
}

// runIndexer indexes at start, when the writer wakes it and, on a quiet
// log, every indexIdle, each time until the tail is below indexBatch.
func (db *DB) runIndexer() {
	ix := &db.index
	defer close(ix.done)
	tick := time.NewTicker(indexIdle)
	defer tick.Stop()
	ctx := context.Background()
	for {
		select {
		case <-ix.stop:
			return
		case <-ix.wake:
		case <-tick.C:
		}
		for {
			n, err := db.indexScans(ctx)
			if err != nil {
				ix.err.Store(&err)
				break
			}
			ix.err.Store(nil)
			if n < indexBatch {
				break
			}
			select {
			case <-ix.stop:
				return
			default:
			}
		}
	}
}

// afterScanCommit runs on the scan writer after each commit with the
// newest id it wrote: it wakes the indexer once the tail reaches
// indexBatch and, past maxIndexTail, indexes before taking more scans,
// so the tail stays bounded even when the indexer is starved.
func (db *DB) afterScanCommit(top int64) {
	ix := &db.index
	ix.top.Store(top)
	tail := top - ix.mark.Load()
	if tail >= maxIndexTail {
		if _, err := db.indexScans(context.Background()); err != nil {
			ix.err.Store(&err)
		}
		return
	}
	if tail >= indexBatch {
		select {
		case ix.wake <- struct{}{}:
		default:
		}
	}
}

// indexScans indexes the next range of at most indexStep scans above the
// mark and moves the mark in the same transaction, so a crash leaves
// either both or neither. It returns how many scans the range held (also
// those without a subject, which need no row).
func (db *DB) indexScans(ctx context.Context) (int64, error) {
	return db.indexRange(ctx, indexStep)
}

// indexRange is indexScans with a range of at most step scans.
func (db *DB) indexRange(ctx context.Context, step int64) (int64, error) {
	ix := &db.index
	if ix.mark.Load() >= ix.top.Load() {
		// Nothing the writer knows of: look before taking the write lock,
		// for scans stored by other paths.
		var mark, top int64
		if err := db.r.QueryRowContext(ctx, scanTailSQL).Scan(&mark, &top); err != nil {
			return 0, fmt.Errorf("index scans: %w", err)
		}
		ix.mark.Store(mark)
		if top <= mark {
			return 0, nil
		}
	}
	var n int64
	err := db.update(ctx, func(tx *sql.Tx) error {
		var mark, top int64
		if err := tx.QueryRowContext(ctx, scanTailSQL).Scan(&mark, &top); err != nil {
			return err
		}
		hi := top
		if top-mark > step {
			hi = mark + step
		}
		if hi <= mark {
			ix.mark.Store(mark)
			return nil
		}
		if _, err := tx.ExecContext(ctx, indexScansSQL, mark, hi); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `UPDATE scan_index_mark SET mark = ? WHERE id = 1`, hi)
		if err != nil {
			return err
		}
		if k, err := res.RowsAffected(); err != nil || k != 1 {
			return errors.Join(err, errors.New("no index mark"))
		}
		n = hi - mark
		// Stored before the commit is known: if it fails the writer
		// sees a smaller tail until the next round reads the mark again.
		ix.mark.Store(hi)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("index scans: %w", err)
	}
	return n, nil
}

// CatchUpScanIndex indexes every scan above the mark now, in ranges as
// the indexer takes them, and returns how many scans it took: what a
// load measurement owes the indexer at its end.
func (db *DB) CatchUpScanIndex(ctx context.Context) (int64, error) {
	var total int64
	for {
		n, err := db.indexScans(ctx)
		total += n
		if err != nil || n == 0 {
			return total, err
		}
	}
}

// ScanIndexLag is how many of the newest scans are not yet in the
// (subject, time) index: queries by subject read them one by one, so it
// stays bounded (a few seconds of scans under load). err is the last
// indexing error, nil when the last round succeeded.
func (db *DB) ScanIndexLag(ctx context.Context) (lag int64, err error) {
	var mark, top int64
	if err := db.r.QueryRowContext(ctx, scanTailSQL).Scan(&mark, &top); err != nil {
		return 0, fmt.Errorf("scan index lag: %w", err)
	}
	if p := db.index.err.Load(); p != nil {
		err = *p
	}
	return top - mark, err
}
