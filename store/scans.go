package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"passgate/pass"
)

// Scan log limits.
const (
	// maxScanBatch caps one group commit. Batches grow on their own while
	// a commit is in flight; the cap bounds the time a single transaction
	// holds the write lock (about 3 ms at 1,000 rows on this hardware).
	maxScanBatch = 1024
	// lingerMin and lingerTime shape the batches under load (see linger).
	lingerMin  = 2
	lingerTime = time.Millisecond
	// MaxScanLimit caps ScanFilter.Limit; page with AfterID beyond it.
	MaxScanLimit = 10000
	// Bounds on the free-form scan fields, checked before a scan joins a
	// batch: one oversized or invalid scan must not fail the commit that
	// other gates are waiting on.
	maxSourceLen     = 128
	maxScanReasonLen = 64
	// countChunk bounds the parameters of one IN list.
	countChunk = 500
)

// Scan decisions as stored.
const (
	decisionAllow = "allow"
	decisionDeny  = "deny"
)

const insertScanSQL = `
	INSERT INTO scans (at_ms, source, decision, reason, repeat, pass_id, subject, kid)
	VALUES (?, ?, ?, ?, ?, ?, ?, ?)`

// The dashboard's counts of this appliance's scans, added once per key
// per group commit (see countBatch).
const (
	countTimeSQL = `
	INSERT INTO scan_counts_time VALUES (?, ?, ?, ?)
	ON CONFLICT DO UPDATE SET n = n + excluded.n`
	countSourceSQL = `
	INSERT INTO scan_counts_source VALUES (?, 0, ?, ?, ?)
	ON CONFLICT DO UPDATE SET allow = allow + excluded.allow, deny = deny + excluded.deny`
)

const scanColumns = `id, at_ms, source, decision, reason, repeat, pass_id, subject, kid`

// scanReq is one LogScan waiting for the writer. done is buffered so the
// writer never blocks on an answer; requests are pooled because every
// check makes one.
type scanReq struct {
	s    *Scan
	done chan error
}

var scanReqPool = sync.Pool{New: func() any { return &scanReq{done: make(chan error, 1)} }}

// LogScan queues s for the group-commit writer and returns once it is
// durable (its transaction committed with synchronous=FULL), setting s.ID.
// Concurrent callers share one transaction and one fsync. A zero s.At is
// set to now. ctx bounds only the wait to join the queue: once queued the
// scan is written, and LogScan waits for the outcome, so an
// acknowledgement always means durable. ErrClosed once Close has begun;
// ErrInvalid for a decision other than "allow" or "deny", an empty reason
// or oversized fields.
func (db *DB) LogScan(ctx context.Context, s *Scan) error {
	if s == nil {
		return fmt.Errorf("log scan: %w: nil scan", ErrInvalid)
	}
	if err := checkScan(s); err != nil {
		return fmt.Errorf("log scan: %w", err)
	}
	if s.At.IsZero() {
		s.At = db.now()
	} else {
		s.At = truncMS(s.At)
	}
	req := scanReqPool.Get().(*scanReq)
	req.s = s
	if err := db.enqueue(ctx, req); err != nil {
		req.s = nil
		scanReqPool.Put(req)
		return fmt.Errorf("log scan: %w", err)
	}
	err := <-req.done
	req.s = nil
	scanReqPool.Put(req)
	if err != nil {
		return fmt.Errorf("log scan: %w", err)
	}
	return nil
}

func checkScan(s *Scan) error {
	switch {
	case s.Decision != decisionAllow && s.Decision != decisionDeny:
		return fmt.Errorf("%w: decision %q", ErrInvalid, s.Decision)
	case s.Reason == "" || len(s.Reason) > maxScanReasonLen:
		return fmt.Errorf("%w: reason of %d bytes", ErrInvalid, len(s.Reason))
	case len(s.Source) > maxSourceLen:
		return fmt.Errorf("%w: source longer than %d bytes", ErrInvalid, maxSourceLen)
	}
	return nil
}

// enqueue hands req to the writer. The read lock makes the closed check
// and the send one step with respect to Close, which closes the channel
// under the write lock.
func (db *DB) enqueue(ctx context.Context, req *scanReq) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	db.mu.RLock()
	defer db.mu.RUnlock()
	if db.closed {
		return ErrClosed
	}
	select {
	case db.scans <- req:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// scanWriter is the only goroutine that writes scans. It blocks for the
// first request, then takes whatever else is already queued, without
// waiting for more: no timer adds latency when the gate is quiet, and when
// it is busy the queue fills while the previous commit's fsync runs, so
// the slower the disk, the larger the next batch. It returns when Close
// has closed the queue and every queued request has been answered.
func (db *DB) scanWriter() {
	defer close(db.writerDone)
	batch := make([]*scanReq, 0, maxScanBatch)
	ids := make([]int64, maxScanBatch)
	prev := 0
	for first := range db.scans {
		batch = append(batch[:0], first)
	drain:
		for len(batch) < maxScanBatch {
			select {
			case r, ok := <-db.scans:
				if !ok {
					break drain
				}
				batch = append(batch, r)
			default:
				break drain
			}
		}
		if len(batch) < maxScanBatch && prev >= lingerMin {
			batch = db.linger(batch)
		}
		prev = len(batch)
		start := time.Now()
		err := db.commitScans(batch, ids)
		if fn := db.onScanCommit.Load(); fn != nil {
			(*fn)(len(batch), time.Since(start), err)
		}
		if err == nil {
			db.scanCommits.Add(1)
			db.afterScanCommit(ids[len(batch)-1])
		} else {
			err = fmt.Errorf("commit %d scans: %w", len(batch), err)
		}
		for i, r := range batch {
			if err == nil {
				r.s.ID = ids[i]
			}
			r.done <- err
		}
		clear(batch) // drop references to answered requests
	}
}

// ScanCommitFunc learns about one group commit of the scan log: how many
// scans it held, how long the transaction took (begin to durable commit)
// and whether it failed. It runs on the scan writer between commits, so it
// must return at once (update counters, nothing more).
type ScanCommitFunc func(scans int, took time.Duration, err error)

// ObserveScanCommits makes fn learn about every later group commit of the
// scan log (metrics use it); nil stops. Safe to call while scans are
// being logged.
func (db *DB) ObserveScanCommits(fn ScanCommitFunc) {
	if fn == nil {
		db.onScanCommit.Store(nil)
		return
	}
	db.onScanCommit.Store(&fn)
}

// linger waits up to lingerTime for more scans to join batch. It runs only
// under load (the previous batch held at least lingerMin scans), where
// checks arrive continuously: every fsync costs the same whatever the batch
// size, and a slightly longer wait buys a larger batch, less CPU and disk
// time per scan and so higher throughput. A quiet gate never waits.
func (db *DB) linger(batch []*scanReq) []*scanReq {
	t := time.NewTimer(lingerTime)
	defer t.Stop()
	for len(batch) < maxScanBatch {
		select {
		case r, ok := <-db.scans:
			if !ok {
				return batch
			}
			batch = append(batch, r)
		case <-t.C:
			return batch
		}
	}
	return batch
}

// commitScans inserts batch in one immediate transaction with the
// prepared insert and stores the new row IDs in ids. Nothing is reported
// written unless the commit succeeded. It does not take a caller's
// context: a queued scan is written even if its caller has gone.
func (db *DB) commitScans(batch []*scanReq, ids []int64) error {
	ctx := context.Background()
	if err := db.counts.prepare(ctx, db); err != nil {
		return fmt.Errorf("prepare counts: %w", err)
	}
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback() }() // a no-op after Commit
	stmt := tx.StmtContext(ctx, db.insertScan)
	for i, r := range batch {
		s := r.s
		res, err := stmt.ExecContext(ctx, s.At.UnixMilli(), s.Source, s.Decision, s.Reason, s.Repeat,
			blobOrNull(s.PassID[:]), blobOrNull(s.Subject[:]), blobOrNull(s.KID[:]))
		if err != nil {
			return mapErr(err)
		}
		if ids[i], err = res.LastInsertId(); err != nil {
			return err
		}
	}
	if err := db.counts.add(ctx, tx, db, batch); err != nil {
		return fmt.Errorf("count: %w", err)
	}
	return tx.Commit()
}

// Keys of the dashboard's counts (see the dash migration): a 5-minute
// bucket per decision and reason, a 15-minute bucket per source.
type (
	timeCountKey struct {
		bucketMS         int64
		decision, reason string
	}
	sourceCountKey struct {
		bucketMS int64
		source   string
	}
)

// batchCounts adds one group commit's scans to the dashboard's counts.
// A batch of hundreds of scans holds a handful of keys (a few gates, a
// few reasons, one or two buckets), so one UPSERT per key replaces the
// two per scan that a trigger would make. Only the scan writer uses it;
// its maps and statements are kept from batch to batch. The statements
// are prepared at the first commit rather than at Open, which may open a
// file whose migration is still under test.
type batchCounts struct {
	time                 map[timeCountKey]int64
	source               map[sourceCountKey]DecisionCount
	timeStmt, sourceStmt *sql.Stmt // prepared on the writer connection
}

// prepare prepares the UPSERTs once, on the writer connection; outside a
// transaction, which holds that connection.
func (c *batchCounts) prepare(ctx context.Context, db *DB) (err error) {
	if c.timeStmt == nil {
		if c.timeStmt, err = db.w.PrepareContext(ctx, countTimeSQL); err != nil {
			return err
		}
	}
	if c.sourceStmt == nil {
		if c.sourceStmt, err = db.w.PrepareContext(ctx, countSourceSQL); err != nil {
			return err
		}
	}
	return nil
}

// add counts batch into the counts tables inside tx (after prepare). Buckets are aligned
// to UTC as the dash migration's SQL aligns them (ms - ms % width: Go and
// SQLite both truncate toward zero).
func (c *batchCounts) add(ctx context.Context, tx *sql.Tx, db *DB, batch []*scanReq) error {
	if c.time == nil {
		c.time, c.source = make(map[timeCountKey]int64), make(map[sourceCountKey]DecisionCount)
	}
	clear(c.time)
	clear(c.source)
	const timeMS, sourceMS = int64(timeCountBucket / time.Millisecond), int64(sourceCountBucket / time.Millisecond)
	for _, r := range batch {
		s := r.s
		ms := s.At.UnixMilli()
		c.time[timeCountKey{ms - ms%timeMS, s.Decision, s.Reason}]++
		k := sourceCountKey{ms - ms%sourceMS, s.Source}
		d := c.source[k]
		if s.Decision == decisionAllow {
			d.Allow++
		} else {
			d.Deny++
		}
		c.source[k] = d
	}
	st := tx.StmtContext(ctx, c.timeStmt)
	for k, n := range c.time {
		if _, err := st.ExecContext(ctx, k.bucketMS, k.decision, k.reason, n); err != nil {
			return err
		}
	}
	st = tx.StmtContext(ctx, c.sourceStmt)
	for k, d := range c.source {
		if _, err := st.ExecContext(ctx, k.bucketMS, k.source, d.Allow, d.Deny); err != nil {
			return err
		}
	}
	return nil
}

// FindScans lists scans matching f: newest first, or oldest first after
// f.AfterID when it is set (to page forward through the log).
func (db *DB) FindScans(ctx context.Context, f ScanFilter) ([]*Scan, error) {
	limit := f.Limit
	if limit <= 0 {
		limit = 100
	}
	limit = min(limit, MaxScanLimit)
	var where []string
	var args []any
	order := "id DESC"
	if f.AfterID > 0 {
		where, args, order = append(where, "id > ?"), append(args, f.AfterID), "id"
	}
	if !f.Since.IsZero() {
		where, args = append(where, "at_ms >= ?"), append(args, f.Since.UnixMilli())
	}
	if !f.Until.IsZero() {
		where, args = append(where, "at_ms < ?"), append(args, f.Until.UnixMilli())
	}
	if f.Source != "" {
		where, args = append(where, "source = ?"), append(args, f.Source)
	}
	q := "SELECT " + scanColumns + " FROM scans"
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY " + order + " LIMIT ?"
	args = append(args, limit)

	var list []*Scan
	err := db.view(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, q, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			s, err := scanScan(rows)
			if err != nil {
				return err
			}
			list = append(list, s)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("find scans: %w", err)
	}
	return list, nil
}

func scanScan(r rowScanner) (*Scan, error) {
	var s Scan
	var at int64
	var passID, subject, kid []byte
	if err := r.Scan(&s.ID, &at, &s.Source, &s.Decision, &s.Reason, &s.Repeat, &passID, &subject, &kid); err != nil {
		return nil, err
	}
	s.At = time.UnixMilli(at)
	for _, c := range []struct{ dst, src []byte }{{s.PassID[:], passID}, {s.Subject[:], subject}, {s.KID[:], kid}} {
		if err := copyID(c.dst, c.src); err != nil {
			return nil, err
		}
	}
	return &s, nil
}

// CountScansByID returns how many distinct ids exist in the scan log
// (a sync peer uses it to see what has arrived).
func (db *DB) CountScansByID(ctx context.Context, ids []int64) (int, error) {
	uniq := slices.Clone(ids)
	slices.Sort(uniq)
	uniq = slices.Compact(uniq)
	total := 0
	err := db.view(ctx, func(tx *sql.Tx) error {
		for chunk := range slices.Chunk(uniq, countChunk) {
			q := "SELECT count(*) FROM scans WHERE id IN (?" + strings.Repeat(", ?", len(chunk)-1) + ")"
			args := make([]any, len(chunk))
			for i, id := range chunk {
				args[i] = id
			}
			var n int
			if err := tx.QueryRowContext(ctx, q, args...).Scan(&n); err != nil {
				return err
			}
			total += n
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("count %d scans by id: %w", len(ids), err)
	}
	return total, nil
}

// LastSeen returns the time of the latest logged scan of pass id, held by
// subject, at or after since; ErrNotFound if none. The checker asks when
// its in-memory repeat set may be incomplete, so it is one prepared
// statement over the (subject, time) index and the few scans not yet in
// it (a holder's checks in the repeat window are few), without a
// surrounding transaction: a single SELECT sees one snapshot anyway.
func (db *DB) LastSeen(ctx context.Context, subject pass.Subject, id pass.ID, since time.Time) (time.Time, error) {
	stmt, err := db.lastSeenStmt(ctx)
	if err != nil {
		return time.Time{}, fmt.Errorf("last seen %x: %w", id[:], err)
	}
	var ms sql.NullInt64
	if err := stmt.QueryRowContext(ctx, subject[:], since.UnixMilli(), id[:]).Scan(&ms); err != nil {
		return time.Time{}, fmt.Errorf("last seen %x: %w", id[:], err)
	}
	if !ms.Valid {
		return time.Time{}, fmt.Errorf("last seen %x: %w", id[:], ErrNotFound)
	}
	return time.UnixMilli(ms.Int64), nil
}

// lastSeenStmt is LastSeen's statement, prepared at its first use.
func (db *DB) lastSeenStmt(ctx context.Context) (*sql.Stmt, error) {
	if st := db.lastSeen.Load(); st != nil {
		return st, nil
	}
	db.stmtMu.Lock()
	defer db.stmtMu.Unlock()
	if st := db.lastSeen.Load(); st != nil {
		return st, nil
	}
	st, err := db.r.PrepareContext(ctx, lastSeenSQL)
	if err != nil {
		return nil, err
	}
	db.lastSeen.Store(st)
	return st, nil
}

// ScanStats counts the scans logged at or after since by decision, for
// the gate screen's counters. It reads only the (at_ms, decision) index.
func (db *DB) ScanStats(ctx context.Context, since time.Time) (allow, deny int64, err error) {
	err = db.r.QueryRowContext(ctx, `
		SELECT coalesce(sum(decision = 'allow'), 0), coalesce(sum(decision = 'deny'), 0)
		FROM scans WHERE at_ms >= ?`, since.UnixMilli()).Scan(&allow, &deny)
	if err != nil {
		return 0, 0, fmt.Errorf("scan stats since %s: %w", since.Format(time.RFC3339), err)
	}
	return allow, deny, nil
}

// SeenPass is when a pass was last checked.
type SeenPass struct {
	ID pass.ID
	At time.Time
}

// RecentPasses calls fn for every pass checked at or after since with the
// time of its latest check, stopping after limit passes. It reports
// whether it saw them all, so a caller can tell a complete picture of the
// window from a truncated one.
func (db *DB) RecentPasses(ctx context.Context, since time.Time, limit int, fn func(SeenPass)) (complete bool, err error) {
	rows, err := db.r.QueryContext(ctx, `
		SELECT pass_id, max(at_ms) FROM scans
		WHERE at_ms >= ? AND pass_id IS NOT NULL
		GROUP BY pass_id LIMIT ?`, since.UnixMilli(), limit+1)
	if err != nil {
		return false, fmt.Errorf("recent passes: %w", err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var id []byte
		var ms int64
		if err := rows.Scan(&id, &ms); err != nil {
			return false, fmt.Errorf("recent passes: %w", err)
		}
		if n++; n > limit {
			return false, rows.Close()
		}
		var sp SeenPass
		copy(sp.ID[:], id)
		sp.At = time.UnixMilli(ms)
		fn(sp)
	}
	if err := rows.Err(); err != nil {
		return false, fmt.Errorf("recent passes: %w", err)
	}
	return true, nil
}

// purgeScansSQL deletes up to ?2 scans older than ?1, but on an enrolled
// appliance none the hub has not acknowledged (see ScanPurgeGuard).
const purgeScansSQL = `
	DELETE FROM scans WHERE id IN (
		SELECT id FROM scans WHERE at_ms < ?1 AND ` + ScanPurgeGuard + `
		ORDER BY at_ms LIMIT ?2)`

// PurgeScans deletes the scans logged before before, in transactions of
// at most batch rows, sized and spaced by a purgePacer so the scan writer
// is never held up for long, and records the purge in the audit trail, also when an
// error or ctx stops it part way (what was deleted stays deleted). It
// returns how many scans were deleted. An enrolled appliance keeps the
// scans its hub has not acknowledged and its newest scan (see
// ScanPurgeGuard).
func (db *DB) PurgeScans(ctx context.Context, before time.Time, batch int, actor Actor) (int64, error) {
	if actor == "" {
		return 0, fmt.Errorf("purge scans: %w: no actor", ErrInvalid)
	}
	total, err := db.purgeBatches(ctx, batch, func(tx *sql.Tx, size int) (int64, error) {
		return execRows(ctx, tx, purgeScansSQL, before.UnixMilli(), size)
	})
	if err == nil {
		err = db.purgeScanCounts(ctx, before)
	}
	if aerr := db.auditPurged(ctx, actor, "scans", map[string]any{
		"kind": "scans", "before_ms": before.UnixMilli(), "rows": total}, total); aerr != nil {
		return total, fmt.Errorf("purge scans: %w", errors.Join(err, aerr))
	}
	if err != nil {
		return total, fmt.Errorf("purge scans before %s: %w", before.Format(time.RFC3339), err)
	}
	return total, nil
}
