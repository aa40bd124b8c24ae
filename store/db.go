// Package store is passgate's persistence: one SQLite file per appliance
// (modernc.org/sqlite, WAL, synchronous=FULL), a single writer connection
// with immediate transactions, a read pool, versioned migrations, and a
// group-commit writer for the scan log. It is the only package that knows
// SQL.
//
// Public methods each run in one transaction and call unexported helpers
// that take the *sql.Tx, so a method either happens entirely or not at
// all. The exceptions are the single-SELECT lookups made on every check or
// request (LastSeen, FindDeviceByToken, ScanStats): one statement already
// sees one snapshot, and a transaction around it would cost three times
// the query. Times are stored as INTEGER Unix milliseconds; an optional
// time that is zero is stored as NULL. Errors are wrapped with the
// operation and one of the Err values below, for errors.Is.
package store

import (
	"context"
	"crypto/cipher"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// FileName is the name of the database file inside the data directory.
const FileName = "passgate.db"

// Connection settings, all applied by the driver to every new connection
// through the DSN. A PRAGMA run with db.Exec would configure only whichever
// pooled connection happened to run it.
const (
	// WAL lets readers (the gate's lookups, exports) run while the writer
	// commits. synchronous=FULL fsyncs the WAL on every commit: a gate
	// appliance loses power, and a scan the screen showed must survive
	// it; group commit keeps that affordable. busy_timeout makes a second
	// process (the CLI while the server runs) wait for the write lock
	// instead of failing. foreign_keys is off by default in SQLite.
	// journal_size_limit truncates the WAL after a checkpoint so a burst
	// does not leave a large file behind on small flash.
	commonPragmas = "_pragma=busy_timeout(10000)" +
		"&_pragma=foreign_keys(1)" +
		"&_pragma=journal_mode(WAL)" +
		"&_pragma=journal_size_limit(67108864)" +
		"&_pragma=synchronous(FULL)"
	// The writer begins every transaction with BEGIN IMMEDIATE: it takes
	// the write lock up front, where busy_timeout can wait for it, instead
	// of failing with SQLITE_BUSY when a deferred transaction tries to
	// upgrade from read to write while another process writes.
	writerParams = commonPragmas + "&_txlock=immediate"
	// Readers cannot write even by mistake.
	readerParams = commonPragmas + "&_pragma=query_only(1)"

	// maxReaders bounds the read pool: two cores gain nothing from more,
	// and each connection holds its own page cache.
	maxReaders = 4
)

// DB is an open passgate database.
type DB struct {
	// Now is the clock used for timestamps the store sets itself. Open
	// sets it to time.Now; tests replace it before use.
	Now func() time.Time

	path string
	w    *sql.DB // the writer: one connection, immediate transactions
	r    *sql.DB // the read pool: query_only connections

	insertScan    *sql.Stmt   // prepared on w, used by the scan writer
	counts        batchCounts // the scan writer's own
	index         scanIndexer // builds scan_subjects behind the scan writer
	deviceByToken *sql.Stmt   // prepared on r: a per-request lookup
	// lastSeen is prepared on r at its first use (a per-check lookup
	// while the repeat set loads): Open may open a file whose migration
	// is still under test.
	lastSeen atomic.Pointer[sql.Stmt]
	// applianceByToken is prepared on r at its first use (a hub's: every
	// appliance's pull looks it up, 2,000 at once after a change), under
	// stmtMu.
	stmtMu           sync.Mutex
	applianceByToken *sql.Stmt

	// mu guards closed and sends on scans: LogScan sends under RLock,
	// Close takes the write lock to close the channel, so no send can
	// race the close.
	mu          sync.RWMutex
	closed      bool
	scans       chan *scanReq
	writerDone  chan struct{}
	closeOnce   sync.Once
	closeResult error

	scanCommits atomic.Int64 // group commits that succeeded

	// generation is the hub's feed generation drawn at this open; nil
	// on an enrolled appliance.
	generation []byte

	probe      writeProbe // the last ProbeWrite, reused for a moment
	modesFixed []string   // see ModesFixed

	aead         cipher.AEAD // seals keys at rest; nil without a seal key
	sealedOnOpen int         // clear keys Open sealed

	// onScanCommit, when set, learns about every group commit (see
	// ObserveScanCommits). An atomic pointer: the writer loads it once
	// per batch and never takes a lock for it.
	onScanCommit atomic.Pointer[ScanCommitFunc]

	// auditState is the newest check of the audit trail (AuditState).
	auditState atomic.Pointer[AuditState]
	// auditWarning is a warning about the trail found at start (a
	// restore) that later checks do not clear.
	auditWarning atomic.Pointer[string]

	// epochMu guards epochStarted: whether this process started its
	// sync epoch (StartSyncing).
	epochMu      sync.Mutex
	epochStarted bool

	// lastPull is the time of this process's last successful pull
	// (Unix ms): the file records an idle pull at most every
	// pullRecordEvery, and the age of the lists shown must not be that
	// much too young.
	lastPull atomic.Int64
}

// Open opens (creating if needed) the database in dir and migrates it.
// dir is created with mode 0700 if it does not exist, and dir and every
// file in it are made owner-only if they are not (ModesFixed says what
// was changed): the database holds private keys and the district's
// pseudonym key.
func Open(ctx context.Context, dir string, opts ...Option) (_ *DB, err error) {
	if dir == "" {
		return nil, fmt.Errorf("open store: %w: empty data directory", ErrInvalid)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", dir, err)
	}
	if err := os.MkdirAll(abs, 0o700); err != nil {
		return nil, fmt.Errorf("open store %s: %w", dir, err)
	}
	fixed, err := secureDataDir(abs)
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	if err := createOwnerOnly(filepath.Join(abs, FileName)); err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	db := &DB{
		modesFixed: fixed,
		Now:        time.Now,
		path:       filepath.Join(abs, FileName),
		scans:      make(chan *scanReq, maxScanBatch),
		writerDone: make(chan struct{}),
	}
	defer func() {
		if err != nil {
			db.closePools()
		}
	}()
	for _, o := range opts {
		if err := o(db); err != nil {
			return nil, fmt.Errorf("open store: %w", err)
		}
	}

	if db.w, err = sql.Open("sqlite", dsn(db.path, writerParams)); err != nil {
		return nil, fmt.Errorf("open store %s: %w", db.path, err)
	}
	// One connection: SQLite has one writer per file anyway, and funnelling
	// every write through one connection turns lock contention inside this
	// process into a queue in database/sql instead of busy waits. It is
	// kept open for ever so the prepared scan insert stays prepared.
	db.w.SetMaxOpenConns(1)
	db.w.SetMaxIdleConns(1)
	db.w.SetConnMaxLifetime(0)
	db.w.SetConnMaxIdleTime(0)
	if err := connectWriter(ctx, db.w); err != nil {
		return nil, fmt.Errorf("open store %s: %w", db.path, err)
	}
	// Migrate before the read pool exists, so readers never see a
	// half-built schema and the file is already in WAL mode.
	if err := db.migrate(ctx); err != nil {
		return nil, fmt.Errorf("open store %s: %w", db.path, err)
	}
	// The audit tree before anything else that may append an audit
	// record (sealing, restoring a root): the tree must already cover
	// every older record.
	if err := db.buildAuditTree(ctx); err != nil {
		return nil, fmt.Errorf("open store %s: %w", db.path, err)
	}
	if err := db.openSealing(ctx); err != nil {
		return nil, fmt.Errorf("open store %s: %w", db.path, err)
	}
	if err := db.startEpochOnOpen(ctx); err != nil {
		return nil, fmt.Errorf("open store %s: %w", db.path, err)
	}
	if err := db.restoreRevokedRoots(ctx); err != nil {
		return nil, fmt.Errorf("open store %s: %w", db.path, err)
	}
	if err := db.numberRevocationsOnOpen(ctx); err != nil {
		return nil, fmt.Errorf("open store %s: %w", db.path, err)
	}

	if db.r, err = sql.Open("sqlite", dsn(db.path, readerParams)); err != nil {
		return nil, fmt.Errorf("open store %s: %w", db.path, err)
	}
	db.r.SetMaxOpenConns(maxReaders)
	db.r.SetMaxIdleConns(maxReaders)
	db.r.SetConnMaxLifetime(0)
	if err := db.r.PingContext(ctx); err != nil {
		return nil, fmt.Errorf("open store %s: %w", db.path, err)
	}

	// Prepared once: an unprepared insert costs 1.8x as much.
	if db.insertScan, err = db.w.PrepareContext(ctx, insertScanSQL); err != nil {
		return nil, fmt.Errorf("open store %s: prepare scan insert: %w", db.path, err)
	}
	if db.deviceByToken, err = db.r.PrepareContext(ctx, deviceByTokenSQL); err != nil {
		return nil, fmt.Errorf("open store %s: prepare device lookup: %w", db.path, err)
	}

	go db.scanWriter()
	db.startIndexer()
	return db, nil
}

// connectWriter makes the writer's first connection. On a brand-new file
// the DSN's journal_mode(WAL) must upgrade a read lock to a write lock;
// if another process is creating the schema at that moment SQLite
// reports SQLITE_BUSY at once rather than calling the busy handler (to
// avoid a deadlock), so retry for as long as busy_timeout would wait.
func connectWriter(ctx context.Context, w *sql.DB) error {
	deadline := time.Now().Add(10 * time.Second)
	for delay := 5 * time.Millisecond; ; delay = min(2*delay, 200*time.Millisecond) {
		err := w.PingContext(ctx)
		if err == nil || !isBusy(err) || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(delay):
		}
	}
}

// isBusy reports whether err is SQLITE_BUSY (or one of its extended
// codes).
func isBusy(err error) bool {
	var se *sqlite.Error
	return errors.As(err, &se) && se.Code()&0xff == sqlite3.SQLITE_BUSY
}

// dsn builds a file: URI for path with the given query parameters. The path
// is escaped so that a '?' or '#' in a directory name cannot be taken for
// the start of the parameters.
func dsn(path, params string) string {
	u := url.URL{Scheme: "file", OmitHost: true, Path: filepath.ToSlash(path), RawQuery: params}
	return u.String()
}

// Close stops the scan writer after flushing every queued scan, then
// closes the database. LogScan returns ErrClosed once Close has begun.
// Calling Close again returns the first call's result.
func (db *DB) Close() error {
	db.closeOnce.Do(func() {
		db.mu.Lock()
		db.closed = true
		close(db.scans) // the writer drains what is queued, then exits
		db.mu.Unlock()
		<-db.writerDone
		db.stopIndexer()
		db.closeResult = db.closePools()
	})
	return db.closeResult
}

// closePools closes statements and both pools, tolerating a partly opened
// DB.
func (db *DB) closePools() error {
	var errs []error
	for _, st := range []*sql.Stmt{db.insertScan, db.counts.timeStmt, db.counts.sourceStmt, db.lastSeen.Load(), db.deviceByToken, db.preparedApplianceByToken()} {
		if st != nil {
			errs = append(errs, st.Close())
		}
	}
	if db.r != nil {
		errs = append(errs, db.r.Close())
	}
	if db.w != nil {
		errs = append(errs, db.w.Close())
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("close store: %w", err)
	}
	return nil
}

// Path is the database file.
func (db *DB) Path() string { return db.path }

// IntegrityCheck runs PRAGMA integrity_check and returns an error unless
// it says ok.
func (db *DB) IntegrityCheck(ctx context.Context) error {
	// integrity_check reports at most this many problems.
	rows, err := db.r.QueryContext(ctx, "PRAGMA integrity_check(20)")
	if err != nil {
		return fmt.Errorf("integrity check: %w", err)
	}
	defer rows.Close()
	var msgs []string
	for rows.Next() {
		var m string
		if err := rows.Scan(&m); err != nil {
			return fmt.Errorf("integrity check: %w", err)
		}
		msgs = append(msgs, m)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("integrity check: %w", err)
	}
	if len(msgs) == 1 && msgs[0] == "ok" {
		return nil
	}
	return fmt.Errorf("integrity check: %w: %s", ErrCorrupt, strings.Join(msgs, "; "))
}

// ExternalWrites returns a number that changes whenever another process
// has committed to the database since the last call (SQLite's
// data_version, read on the writer connection, which is the only one in
// this process that writes). Callers that cache what they write, like the
// checker's repeat set, use it to learn when their cache may be
// incomplete.
func (db *DB) ExternalWrites(ctx context.Context) (int64, error) {
	var v int64
	if err := db.w.QueryRowContext(ctx, "PRAGMA data_version").Scan(&v); err != nil {
		return 0, fmt.Errorf("read data version: %w", err)
	}
	return v, nil
}

// update runs fn in one immediate transaction on the writer connection
// and commits if fn succeeds.
func (db *DB) update(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}

// view runs fn in one read transaction on the read pool, so that several
// queries see one snapshot.
func (db *DB) view(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := db.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback() }()
	return fn(tx)
}

// now returns the store clock truncated to what the database keeps
// (milliseconds), so values handed back equal values read back later.
func (db *DB) now() time.Time {
	return time.UnixMilli(db.Now().UnixMilli())
}

// msOrNull encodes an optional time: zero is NULL.
func msOrNull(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixMilli()
}

// timeOrZero decodes an optional time: NULL is the zero time.
func timeOrZero(ms sql.NullInt64) time.Time {
	if !ms.Valid {
		return time.Time{}
	}
	return time.UnixMilli(ms.Int64)
}

// truncMS drops what the database does not keep (below a millisecond,
// the monotonic reading), keeping zero as zero.
func truncMS(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return time.UnixMilli(t.UnixMilli())
}

// blobOrNull stores an all-zero identifier (unknown) as NULL.
func blobOrNull(b []byte) any {
	for _, c := range b {
		if c != 0 {
			return b
		}
	}
	return nil
}

// mapErr translates SQLite constraint failures into the package's errors
// so callers can test them with errors.Is; the SQLite message stays in the
// chain for logs.
func mapErr(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, sql.ErrNoRows) {
		return ErrNotFound
	}
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return err
	}
	switch se.Code() {
	case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
		return fmt.Errorf("%w: %v", ErrConflict, err)
	case sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY:
		return fmt.Errorf("%w: referenced row missing: %v", ErrNotFound, err)
	case sqlite3.SQLITE_CONSTRAINT_CHECK, sqlite3.SQLITE_CONSTRAINT_NOTNULL,
		sqlite3.SQLITE_CONSTRAINT_DATATYPE, sqlite3.SQLITE_CONSTRAINT_TRIGGER:
		return fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	return err
}
