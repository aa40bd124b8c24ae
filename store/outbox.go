package store

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// The appliance's side of pushing records to its hub.
//
// Two streams leave an enrolled appliance: its scans (numbered by
// scans.id) and its outbox (numbered by outbox.seq), which the triggers of
// migration 8 fill with passes issued, status changes, revocations made
// here and audit records, in the same transaction as the record itself.
// An outbox body is the JSON object the trigger built:
//
//	pass:       {"id", "subject", "kid" (hex), "kind", "color", "issued_ms", "expires_ms", "actor"}
//	status:     {"subject" (hex), "from_color", "to_color", "reason", "actor", "at_ms"}
//	revocation: {"kind", "target" (hex), "before_ms", "reason", "at_ms"}
//	audit:      {"seq", "at_ms", "actor", "action", "subject", "detail", "hash" (hex)}
//
// Ids are only unique within an epoch: a restore from backup hands out
// ids again, and a new epoch starts when Open finds a restored file and
// in every process that syncs, so the hub tells the records of the
// restored timeline from the ones it already holds.

// Stream names, as the hub's sync_marks spells them.
const (
	StreamScans  = "scans"
	StreamEvents = "events"
)

// EpochSize is the length of an epoch identifier.
const EpochSize = 16

// Epoch is one stretch of an appliance's record streams: the ids from
// ScansFrom and EventsFrom on, up to the next epoch's.
type Epoch struct {
	ID         []byte
	ScansFrom  int64
	EventsFrom int64
	StartedAt  time.Time
}

// OutboxRecord is one outbox row: a pass issued, a status change, a
// revocation or an audit record, bound for the hub.
type OutboxRecord struct {
	Seq  int64
	Kind string
	At   time.Time
	Body string // a JSON object
}

// ScanRun is consecutive scans of one epoch, the first right after the
// last one the hub acknowledged.
type ScanRun struct {
	Epoch   []byte
	From    int64 // the epoch's first id
	Records []*Scan
}

// EventRun is consecutive outbox records of one epoch.
type EventRun struct {
	Epoch   []byte
	From    int64
	Records []*OutboxRecord
}

// PushBatch is what the next push carries. Backlog counts the records
// left after it.
type PushBatch struct {
	Scans   *ScanRun // nil: nothing to send
	Events  *EventRun
	Backlog int64
}

// Empty reports whether there is nothing to send.
func (b *PushBatch) Empty() bool { return b.Scans == nil && b.Events == nil }

// PushAck is the hub's answer for one stream: it holds every record of
// Epoch up to Mark. Sent is the last id the push carried in that stream.
type PushAck struct {
	Epoch []byte
	Mark  int64
	Sent  int64
}

// PushAckResult says what an acknowledgement changed.
type PushAckResult struct {
	ScansAcked  int64
	EventsAcked int64
	// Ahead is set when the hub holds more of an epoch than this
	// appliance sent: the appliance lost records the hub has (it was
	// restored from an older backup). Nothing is skipped because of it.
	Ahead bool
}

// ErrNotEnrolled: the operation needs an appliance enrolled with a hub.
var ErrNotEnrolled = errors.New("not enrolled with a hub")

// EpochFileName is the file beside the database that names the newest
// epoch this data directory has seen, and the database file (device and
// inode) it was seen in. A database put back from a backup is another
// file, or has an older newest epoch than the file names, so Open can
// tell a restored copy from the file it left without starting an epoch
// on every open.
const EpochFileName = "sync-epoch"

// startEpochOnOpen starts a new epoch when the database belongs to an
// enrolled appliance and its newest epoch is not the one the data
// directory last saw: the file was put back from a backup (or the
// directory is new to it), and ids handed out from now on may repeat ids
// the hub already holds. An unchanged file starts none, so a command run
// against a working appliance adds no epoch; processes that sync start
// their own (startSyncingEpoch).
func (db *DB) startEpochOnOpen(ctx context.Context) error {
	var started *Epoch
	err := db.update(ctx, func(tx *sql.Tx) error {
		var enrolled bool
		if err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM sync_hub)`).Scan(&enrolled); err != nil {
			return err
		}
		if !enrolled {
			return nil
		}
		var newest []byte
		err := tx.QueryRowContext(ctx, `SELECT epoch FROM sync_epochs ORDER BY started_ms DESC LIMIT 1`).Scan(&newest)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		if newest != nil && bytes.Equal(newest, db.seenEpoch()) {
			return nil
		}
		started, err = startSyncEpoch(ctx, tx, db.now())
		return err
	})
	if err == nil && started != nil {
		err = db.saveSeenEpoch(started.ID)
	}
	if err != nil {
		return fmt.Errorf("start sync epoch: %w", err)
	}
	return nil
}

// seenEpoch reads the epoch EpochFileName names; nil when it is
// missing or unreadable, or when it was written for another file than
// the database now in place (a copy put back has a new inode even when
// the epoch file was restored with it): each only costs an epoch.
func (db *DB) seenEpoch() []byte {
	b, err := os.ReadFile(filepath.Join(filepath.Dir(db.path), EpochFileName))
	if err != nil || len(b) > 256 {
		return nil
	}
	hexID, ident, _ := strings.Cut(strings.TrimSpace(string(b)), " ")
	id, err := hex.DecodeString(hexID)
	if err != nil || len(id) != EpochSize || ident != db.fileIdentity() {
		return nil
	}
	return id
}

// fileIdentity names the database file as the epoch file records it.
func (db *DB) fileIdentity() string {
	fi, err := os.Stat(db.path)
	if err != nil {
		return ""
	}
	return fileIdentity(fi)
}

// saveSeenEpoch records id as the newest epoch of this data directory's
// database file, written beside and renamed, so a crash leaves the old
// name or the new one. A crash before it only makes the next Open start
// one more epoch.
func (db *DB) saveSeenEpoch(id []byte) error {
	dir := filepath.Dir(db.path)
	tmp, err := os.CreateTemp(dir, "."+EpochFileName+"-")
	if err != nil {
		return fmt.Errorf("save epoch: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := fmt.Fprintf(tmp, "%x %s\n", id, db.fileIdentity()); err != nil {
		tmp.Close()
		return fmt.Errorf("save epoch: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("save epoch: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("save epoch: %w", err)
	}
	if err := os.Rename(tmp.Name(), filepath.Join(dir, EpochFileName)); err != nil {
		return fmt.Errorf("save epoch: %w", err)
	}
	return nil
}

// StartSyncing starts this process's epoch, once per open database: a
// process that pushes or writes bundles may run on a copy restored from
// backup that Open could not tell (the epoch file was restored with it),
// and its own epoch keeps what it sends from being taken for what the
// hub holds. Later calls do nothing. NextPush and PrepareUpBundle call
// it; ErrNotEnrolled is not returned, a standalone appliance has no
// epochs.
func (db *DB) StartSyncing(ctx context.Context) error {
	db.epochMu.Lock()
	defer db.epochMu.Unlock()
	if db.epochStarted {
		return nil
	}
	started, err := db.newEpoch(ctx)
	if err != nil {
		return err
	}
	db.epochStarted = started != nil
	return nil
}

// newEpoch starts an epoch on an enrolled appliance and names it in the
// epoch file; nil on a standalone appliance or a hub.
func (db *DB) newEpoch(ctx context.Context) (*Epoch, error) {
	var started *Epoch
	err := db.update(ctx, func(tx *sql.Tx) error {
		var enrolled bool
		if err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM sync_hub)`).Scan(&enrolled); err != nil || !enrolled {
			return err
		}
		var err error
		started, err = startSyncEpoch(ctx, tx, db.now())
		return err
	})
	if err == nil && started != nil {
		err = db.saveSeenEpoch(started.ID)
	}
	if err != nil {
		return nil, fmt.Errorf("start sync epoch: %w", err)
	}
	return started, nil
}

// markSyncing records that this process already started an epoch (its
// enrolment did), so its first push starts no other.
func (db *DB) markSyncing(id []byte) error {
	db.epochMu.Lock()
	defer db.epochMu.Unlock()
	db.epochStarted = true
	return db.saveSeenEpoch(id)
}

// startSyncEpoch starts a new epoch in tx. The first epoch of a file
// starts at id 1 of both streams, so records written in the enrolment
// transaction itself are pushed too; later ones start after the greatest
// id handed out so far. Enrolment calls it in its own transaction.
//
// started_ms is kept strictly increasing in the file: it breaks the tie
// between epochs with the same *_from (opened twice without a record in
// between), the later one owning the ids.
func startSyncEpoch(ctx context.Context, tx *sql.Tx, now time.Time) (*Epoch, error) {
	e := &Epoch{ID: make([]byte, EpochSize), ScansFrom: 1, EventsFrom: 1}
	if _, err := rand.Read(e.ID); err != nil {
		return nil, err
	}
	var lastStart sql.NullInt64
	if err := tx.QueryRowContext(ctx, `SELECT max(started_ms) FROM sync_epochs`).Scan(&lastStart); err != nil {
		return nil, err
	}
	started := now.UnixMilli()
	if lastStart.Valid {
		started = max(started, lastStart.Int64+1)
		// The next id each table hands out: scans without AUTOINCREMENT
		// take max(id)+1 (PurgeScans keeps the newest scan of an
		// enrolled appliance, so that never goes back); the outbox
		// remembers its greatest seq in sqlite_sequence even once the
		// rows are deleted.
		err := tx.QueryRowContext(ctx, `SELECT
			coalesce((SELECT max(id) FROM scans), 0) + 1,
			max(coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'outbox'), 0),
			    coalesce((SELECT max(seq) FROM outbox), 0)) + 1`).Scan(&e.ScansFrom, &e.EventsFrom)
		if err != nil {
			return nil, err
		}
	}
	e.StartedAt = time.UnixMilli(started)
	_, err := tx.ExecContext(ctx, `INSERT INTO sync_epochs (epoch, scans_from, events_from, started_ms) VALUES (?, ?, ?, ?)`,
		e.ID, e.ScansFrom, e.EventsFrom, started)
	if err != nil {
		return nil, mapErr(err)
	}
	return e, nil
}

// SyncEpochs lists the epochs of this appliance, oldest first.
func (db *DB) SyncEpochs(ctx context.Context) ([]*Epoch, error) {
	var list []*Epoch
	err := db.view(ctx, func(tx *sql.Tx) error {
		var err error
		list, err = syncEpochs(ctx, tx)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list sync epochs: %w", err)
	}
	return list, nil
}

func syncEpochs(ctx context.Context, tx *sql.Tx) ([]*Epoch, error) {
	rows, err := tx.QueryContext(ctx, `SELECT epoch, scans_from, events_from, started_ms FROM sync_epochs ORDER BY started_ms`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var list []*Epoch
	for rows.Next() {
		e := &Epoch{}
		var started int64
		if err := rows.Scan(&e.ID, &e.ScansFrom, &e.EventsFrom, &started); err != nil {
			return nil, err
		}
		e.StartedAt = time.UnixMilli(started)
		list = append(list, e)
	}
	return list, rows.Err()
}

// epochOf finds the epoch id belongs to in a stream, and where the next
// epoch of that stream starts (0: none after it). Of epochs with equal
// from, the later one owns the ids.
func epochOf(ctx context.Context, tx *sql.Tx, stream string, id int64) (e *Epoch, next int64, err error) {
	col := "scans_from"
	if stream == StreamEvents {
		col = "events_from"
	}
	e = &Epoch{}
	var started int64
	err = tx.QueryRowContext(ctx, `SELECT epoch, scans_from, events_from, started_ms FROM sync_epochs
		WHERE `+col+` <= ? ORDER BY `+col+` DESC, started_ms DESC LIMIT 1`, id).
		Scan(&e.ID, &e.ScansFrom, &e.EventsFrom, &started)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, 0, fmt.Errorf("%w: no sync epoch holds %s id %d", ErrNotFound, stream, id)
	}
	if err != nil {
		return nil, 0, err
	}
	e.StartedAt = time.UnixMilli(started)
	var n sql.NullInt64
	if err := tx.QueryRowContext(ctx, `SELECT min(`+col+`) FROM sync_epochs WHERE `+col+` > ?`, id).Scan(&n); err != nil {
		return nil, 0, err
	}
	return e, n.Int64, nil
}

// maxPushEventBytes bounds the outbox bodies of one push, whatever the
// record count: audit details vary in size, and the hub refuses a body
// larger than it will decompress.
const maxPushEventBytes = 16 << 20

// syncCursor is sync_state's acknowledged ids.
type syncCursor struct {
	scansAcked, eventsAcked int64
}

func readCursor(ctx context.Context, tx *sql.Tx) (syncCursor, error) {
	var c syncCursor
	var enrolled bool
	if err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM sync_hub)`).Scan(&enrolled); err != nil {
		return c, err
	}
	if !enrolled {
		return c, ErrNotEnrolled
	}
	err := tx.QueryRowContext(ctx, `SELECT scans_acked, events_acked FROM sync_state WHERE id = 1`).Scan(&c.scansAcked, &c.eventsAcked)
	if errors.Is(err, sql.ErrNoRows) {
		return syncCursor{}, nil // enrolment made no state row yet: nothing acknowledged
	}
	return c, err
}

// NextPush reads what the next push carries: up to maxScans scans and
// maxEvents outbox records after the acknowledged ids, each run within
// one epoch. It only reads, so the gate's scan writer is never held up.
// ErrNotEnrolled on a standalone appliance or a hub.
func (db *DB) NextPush(ctx context.Context, maxScans, maxEvents int) (*PushBatch, error) {
	if maxScans <= 0 || maxEvents <= 0 {
		return nil, fmt.Errorf("next push: %w: batch sizes %d, %d", ErrInvalid, maxScans, maxEvents)
	}
	if err := db.StartSyncing(ctx); err != nil {
		return nil, fmt.Errorf("next push: %w", err)
	}
	b := &PushBatch{}
	err := db.view(ctx, func(tx *sql.Tx) error {
		cur, err := readCursor(ctx, tx)
		if err != nil {
			return err
		}
		if b.Scans, err = nextScans(ctx, tx, cur.scansAcked, maxScans); err != nil {
			return fmt.Errorf("scans: %w", err)
		}
		if b.Events, err = nextEvents(ctx, tx, cur.eventsAcked, maxEvents); err != nil {
			return fmt.Errorf("events: %w", err)
		}
		sentScans, sentEvents := cur.scansAcked, cur.eventsAcked
		if b.Scans != nil {
			sentScans = b.Scans.Records[len(b.Scans.Records)-1].ID
		}
		if b.Events != nil {
			sentEvents = b.Events.Records[len(b.Events.Records)-1].Seq
		}
		b.Backlog, err = backlogAfter(ctx, tx, sentScans, sentEvents)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("next push: %w", err)
	}
	return b, nil
}

func nextScans(ctx context.Context, tx *sql.Tx, acked int64, limit int) (*ScanRun, error) {
	var first sql.NullInt64
	if err := tx.QueryRowContext(ctx, `SELECT min(id) FROM scans WHERE id > ?`, acked).Scan(&first); err != nil {
		return nil, err
	}
	if !first.Valid {
		return nil, nil
	}
	e, next, err := epochOf(ctx, tx, StreamScans, first.Int64)
	if err != nil {
		return nil, err
	}
	q := `SELECT ` + scanColumns + ` FROM scans WHERE id > ?`
	args := []any{acked}
	if next > 0 {
		q += ` AND id < ?`
		args = append(args, next)
	}
	rows, err := tx.QueryContext(ctx, q+` ORDER BY id LIMIT ?`, append(args, limit)...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	run := &ScanRun{Epoch: e.ID, From: e.ScansFrom, Records: make([]*Scan, 0, min(limit, 1024))}
	for rows.Next() {
		s, err := scanScan(rows)
		if err != nil {
			return nil, err
		}
		run.Records = append(run.Records, s)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(run.Records) == 0 {
		return nil, nil
	}
	return run, nil
}

func nextEvents(ctx context.Context, tx *sql.Tx, acked int64, limit int) (*EventRun, error) {
	var first sql.NullInt64
	if err := tx.QueryRowContext(ctx, `SELECT min(seq) FROM outbox WHERE seq > ?`, acked).Scan(&first); err != nil {
		return nil, err
	}
	if !first.Valid {
		return nil, nil
	}
	e, next, err := epochOf(ctx, tx, StreamEvents, first.Int64)
	if err != nil {
		return nil, err
	}
	q := `SELECT seq, kind, at_ms, body FROM outbox WHERE seq > ?`
	args := []any{acked}
	if next > 0 {
		q += ` AND seq < ?`
		args = append(args, next)
	}
	rows, err := tx.QueryContext(ctx, q+` ORDER BY seq LIMIT ?`, append(args, limit)...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	run := &EventRun{Epoch: e.ID, From: e.EventsFrom}
	size := 0
	for rows.Next() {
		r := &OutboxRecord{}
		var at int64
		if err := rows.Scan(&r.Seq, &r.Kind, &at, &r.Body); err != nil {
			return nil, err
		}
		r.At = time.UnixMilli(at)
		run.Records = append(run.Records, r)
		if size += len(r.Body); size >= maxPushEventBytes {
			break
		}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(run.Records) == 0 {
		return nil, nil
	}
	return run, nil
}

// backlogAfter counts the records after the given ids. Both streams
// hand out consecutive ids, and neither loses a row the hub has not
// acknowledged (outbox rows are deleted on acknowledgement, old scans
// purged only once acknowledged: ScanPurgeGuard), so the count is the
// greatest id minus the one given: two index lookups instead of walking a
// million-row backlog on every push.
func backlogAfter(ctx context.Context, tx *sql.Tx, scansAfter, eventsAfter int64) (int64, error) {
	var n int64
	err := tx.QueryRowContext(ctx, `SELECT
		max(coalesce((SELECT max(id) FROM scans), 0) - ?, 0) +
		max(coalesce((SELECT max(seq) FROM outbox), 0) - ?, 0)`,
		scansAfter, eventsAfter).Scan(&n)
	return n, err
}

// SyncBacklog counts the records waiting for the hub; ErrNotEnrolled on
// a standalone appliance or a hub.
func (db *DB) SyncBacklog(ctx context.Context) (int64, error) {
	var n int64
	err := db.view(ctx, func(tx *sql.Tx) error {
		cur, err := readCursor(ctx, tx)
		if err != nil {
			return err
		}
		n, err = backlogAfter(ctx, tx, cur.scansAcked, cur.eventsAcked)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("sync backlog: %w", err)
	}
	return n, nil
}

// OldestWaiting is when the oldest record waiting for the hub (scan or
// outbox record) was written; zero when none waits. ErrNotEnrolled on a
// standalone appliance or a hub. Two lookups by primary key: cheap
// enough for every /readyz.
func (db *DB) OldestWaiting(ctx context.Context) (time.Time, error) {
	var scan, event sql.NullInt64
	err := db.view(ctx, func(tx *sql.Tx) error {
		cur, err := readCursor(ctx, tx)
		if err != nil {
			return err
		}
		return tx.QueryRowContext(ctx, `SELECT
			(SELECT at_ms FROM scans WHERE id > ? ORDER BY id LIMIT 1),
			(SELECT at_ms FROM outbox WHERE seq > ? ORDER BY seq LIMIT 1)`,
			cur.scansAcked, cur.eventsAcked).Scan(&scan, &event)
	})
	if err != nil {
		return time.Time{}, fmt.Errorf("oldest waiting record: %w", err)
	}
	if !scan.Valid || (event.Valid && event.Int64 < scan.Int64) {
		scan = event
	}
	return timeOrZero(scan), nil
}

// ScansAcked returns the last scan id the hub acknowledged, and whether
// this appliance is enrolled at all (when it is not, every scan is its
// own and retention may purge any of them).
func (db *DB) ScansAcked(ctx context.Context) (acked int64, enrolled bool, err error) {
	err = db.view(ctx, func(tx *sql.Tx) error {
		cur, err := readCursor(ctx, tx)
		if errors.Is(err, ErrNotEnrolled) {
			return nil
		}
		if err != nil {
			return err
		}
		acked, enrolled = cur.scansAcked, true
		return nil
	})
	if err != nil {
		return 0, false, fmt.Errorf("scans acknowledged: %w", err)
	}
	return acked, enrolled, nil
}

// AckPush records the hub's answer to a push: each stream's acknowledged
// id becomes min(mark, sent) — never more than was sent, because a mark
// beyond it means the hub holds records of a timeline this copy of the
// database lost, and this appliance's own records after sent must still
// go. Outbox rows the hub now holds are deleted. A nil ack leaves its
// stream alone. The acknowledged ids only move forward here; RewindPush
// moves them back on a gap.
func (db *DB) AckPush(ctx context.Context, scans, events *PushAck) (*PushAckResult, error) {
	now := db.now()
	res := &PushAckResult{}
	err := db.update(ctx, func(tx *sql.Tx) error {
		cur, err := readCursor(ctx, tx)
		if err != nil {
			return err
		}
		res.ScansAcked, res.EventsAcked = cur.scansAcked, cur.eventsAcked
		if scans != nil {
			if scans.Mark > scans.Sent {
				res.Ahead = true
			}
			res.ScansAcked = max(cur.scansAcked, min(scans.Mark, scans.Sent))
		}
		if events != nil {
			if events.Mark > events.Sent {
				res.Ahead = true
			}
			res.EventsAcked = max(cur.eventsAcked, min(events.Mark, events.Sent))
		}
		if err := saveCursor(ctx, tx, res.ScansAcked, res.EventsAcked); err != nil {
			return err
		}
		if res.EventsAcked > cur.eventsAcked {
			if _, err := tx.ExecContext(ctx, `DELETE FROM outbox WHERE seq <= ?`, res.EventsAcked); err != nil {
				return err
			}
		}
		_, err = tx.ExecContext(ctx, `UPDATE sync_state SET last_push_ms = ?, last_error = '', last_error_ms = NULL WHERE id = 1`, now.UnixMilli())
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("record push acknowledgement: %w", err)
	}
	return res, nil
}

// saveCursor writes the acknowledged ids, making the state row if
// enrolment did not.
func saveCursor(ctx context.Context, tx *sql.Tx, scansAcked, eventsAcked int64) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO sync_state (id, scans_acked, events_acked) VALUES (1, ?, ?)
		ON CONFLICT (id) DO UPDATE SET scans_acked = excluded.scans_acked, events_acked = excluded.events_acked`,
		scansAcked, eventsAcked)
	return err
}

// RewindPush handles the hub's "gap" answer for a stream: the hub expects
// id expected next in the epoch starting at from, so it lacks records
// this appliance took as acknowledged (the hub was restored from an older
// backup). When those records are all still here, the acknowledged id
// goes back to expected-1 (never below the epoch's start; for scans, to
// before the oldest scan still held) so they are sent again, and resent
// reports true. Acknowledged outbox rows are
// deleted, and old scans may have been purged: then they cannot be sent
// again, and the records not yet acknowledged move to a new epoch
// starting right after the acknowledged id, which the hub takes from its
// start (it holds none of them: its mark is below). resent is then false
// and the caller should warn that the hub lost records for good.
func (db *DB) RewindPush(ctx context.Context, stream string, from, expected int64) (resent bool, err error) {
	if stream != StreamScans && stream != StreamEvents {
		return false, fmt.Errorf("rewind push: %w: stream %q", ErrInvalid, stream)
	}
	now := db.now()
	var moved []byte // the new epoch the unacknowledged records moved to
	err = db.update(ctx, func(tx *sql.Tx) error {
		cur, err := readCursor(ctx, tx)
		if err != nil {
			return err
		}
		to := max(expected-1, from-1, 0)
		acked, table, col := cur.scansAcked, "scans", "id"
		if stream == StreamEvents {
			acked, table, col = cur.eventsAcked, "outbox", "seq"
		}
		if to >= acked {
			return nil // nothing this appliance counts as held is missing
		}
		held := func(after int64) (bool, error) {
			var n int64
			err := tx.QueryRowContext(ctx, `SELECT count(*) FROM `+table+` WHERE `+col+` > ? AND `+col+` <= ?`, after, acked).Scan(&n)
			return n == acked-after, err
		}
		if stream == StreamScans {
			// A hub that lost this epoch's records may have lost earlier
			// epochs' too, and only says so for the epoch it was sent.
			// Every scan still here goes again (the hub skips what it
			// holds): after a restore of the hub, a few days of scans
			// cross the network twice rather than some are missing.
			var first sql.NullInt64
			if err := tx.QueryRowContext(ctx, `SELECT min(id) FROM scans`).Scan(&first); err != nil {
				return err
			}
			if first.Valid && first.Int64-1 < to {
				ok, err := held(first.Int64 - 1)
				if err != nil {
					return err
				}
				if ok {
					to = first.Int64 - 1
				}
			}
		}
		all, err := held(to)
		if err != nil {
			return err
		}
		if all {
			resent = true
			if stream == StreamScans {
				return saveCursor(ctx, tx, to, cur.eventsAcked)
			}
			return saveCursor(ctx, tx, cur.scansAcked, to)
		}
		e, err := startSyncEpoch(ctx, tx, now)
		if err != nil {
			return err
		}
		moved = e.ID
		// The other stream keeps the fresh epoch's start (after every id
		// handed out), so none of its records changes epoch.
		_, err = tx.ExecContext(ctx, `UPDATE sync_epochs SET `+stream+`_from = ? WHERE epoch = ?`, acked+1, e.ID)
		return err
	})
	if err == nil && moved != nil {
		err = db.saveSeenEpoch(moved)
	}
	if err != nil {
		return false, fmt.Errorf("rewind %s push to %d: %w", stream, expected, err)
	}
	return resent, nil
}

// RecordPushError notes a failed push in sync_state, for the status page.
func (db *DB) RecordPushError(ctx context.Context, msg string) error {
	return db.RecordSyncError(ctx, msg)
}

// ScansAfter returns up to limit scans with an id above after, oldest
// first (after 0: from the first). It reads the log forward the way a
// push does, whatever has been acknowledged.
func (db *DB) ScansAfter(ctx context.Context, after int64, limit int) ([]*Scan, error) {
	if limit <= 0 || limit > MaxScanLimit {
		limit = MaxScanLimit
	}
	var list []*Scan
	err := db.view(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT `+scanColumns+` FROM scans WHERE id > ? ORDER BY id LIMIT ?`, after, limit)
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
		return nil, fmt.Errorf("scans after %d: %w", after, err)
	}
	return list, nil
}

// ScanPurgeGuard is the condition retention adds to its DELETE of old
// scans (PurgeScans: "... WHERE at_ms < ? AND " + ScanPurgeGuard ...) so
// that an enrolled appliance never removes a scan the hub has not
// acknowledged, nor its newest scan: scans.id has no AUTOINCREMENT, and
// with the newest row gone the next scan would reuse its id inside the
// current epoch, where the hub takes it for one it already holds. A
// standalone appliance or a hub purges freely.
const ScanPurgeGuard = `(NOT EXISTS (SELECT 1 FROM sync_hub)
	OR (id <= coalesce((SELECT scans_acked FROM sync_state WHERE id = 1), 0)
	    AND id < (SELECT max(id) FROM scans)))`
