package store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"time"
	"unicode/utf8"

	"golang.org/x/mod/sumdb/tlog"
)

// Audit actions: stable codes stored in the audit trail. Exports and
// reports match on them, so a code is never renamed.
const (
	AuditLogin         = "login"
	AuditLoginFailed   = "login_failed"
	AuditUserCreated   = "user_created"
	AuditUserDisabled  = "user_disabled"
	AuditUserEnabled   = "user_enabled"
	AuditUserRole      = "user_role"
	AuditUserPassword  = "user_password"
	AuditStatusChanged = "status_changed"
	AuditPassIssued    = "pass_issued"
	AuditPolicyChanged = "policy_changed"
	AuditExport        = "export"
	AuditTrace         = "trace"
	AuditPurge         = "purge"
	AuditEntrance      = "input_entrance"
	AuditGateHold      = "gate_hold"
	// AuditScreenRefused is a gate screen request refused for naming a
	// screen or entrance the appliance cannot accept.
	AuditScreenRefused = "gate_screen_refused"
)

// AuditRequestRefused records a logged-in user's request refused at the
// door: a page their role may not use, or a change sent from another site
// through their browser. Anonymous refusals are only logged: anyone can
// send them, and the trail is permanent.
const AuditRequestRefused = "request_refused"

// Bounds on an audit record's fields. Detail is a small JSON object
// (old → new values, a filter, a row count), never a data dump: a bound
// keeps a misbehaving caller from bloating the append-only table, which
// only retention (PurgeAudit) shrinks.
const (
	maxAuditText   = 256
	maxAuditDetail = 4096
)

// auditHashSize is the length of prev_hash and hash (SHA-256).
const auditHashSize = sha256.Size

// AuditRecord is one entry of the append-only, hash-chained audit trail.
type AuditRecord struct {
	Seq     int64     // set by the store: 1, 2, 3, … without gaps
	At      time.Time // set by the store when zero
	Actor   Actor     // who: a username, "cli", a device name
	Action  string    // one of the Audit… codes
	Subject string    // what it is about: a username, a subject pseudonym or pass ID in hex
	// Detail is a JSON object (or empty); ErrInvalid if it is not valid
	// JSON or longer than 4 KiB.
	Detail   json.RawMessage
	PrevHash []byte // hash of the previous record; 32 zero bytes for the first
	Hash     []byte // chain hash of this record, see auditHash
	// Appliance is whose trail it is, in exports (see Scan.Appliance);
	// not part of the chain.
	Appliance string
}

// AuditDetail encodes v as a record's Detail. Values that cannot be
// encoded (which would be a programming error) yield an object saying so
// rather than losing the record. Text is not HTML-escaped: a reason
// "<b>" stays readable in the trail and its exports ("\u003cb\u003e"
// otherwise); no page puts a detail into HTML unescaped.
func AuditDetail(v any) json.RawMessage {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		b, _ := json.Marshal(map[string]string{"error": err.Error()})
		return b
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}

// auditHash computes a record's chain hash:
//
//	SHA-256( "passgate-audit-v1" ‖
//	         u64(seq) ‖ i64(at_ms) ‖
//	         u32(len actor) ‖ actor ‖ u32(len action) ‖ action ‖
//	         u32(len subject) ‖ subject ‖ u32(len detail) ‖ detail ‖
//	         prev_hash )
//
// with integers big-endian (i64 as its two's-complement u64). Every
// variable-length field carries its length, so no two different records
// encode to the same bytes (moving a character from actor to action
// changes the lengths); prev_hash is always 32 bytes and comes last. The
// domain prefix keeps these hashes from being confused with any other
// SHA-256 the program computes. h and dst (which receives the sum) are
// reused across calls by VerifyAudit.
func auditHash(h hash.Hash, dst []byte, seq, atMS int64, actor, action, subject, detail, prev []byte) []byte {
	h.Reset()
	var n [8]byte
	h.Write(auditDomain)
	binary.BigEndian.PutUint64(n[:], uint64(seq))
	h.Write(n[:])
	binary.BigEndian.PutUint64(n[:], uint64(atMS))
	h.Write(n[:])
	for _, f := range [...][]byte{actor, action, subject, detail} {
		binary.BigEndian.PutUint32(n[:4], uint32(len(f)))
		h.Write(n[:4])
		h.Write(f)
	}
	h.Write(prev)
	return h.Sum(dst[:0])
}

// auditDomain starts every hashed record; see auditHash.
var auditDomain = []byte("passgate-audit-v1")

// Audit appends rec to the audit trail in its own transaction, for
// actions that change nothing in the store (exports, tracing queries,
// refusals). A change the store makes is audited by the method making
// it, in the same transaction. On success rec
// holds its Seq, At, PrevHash and Hash.
func (db *DB) Audit(ctx context.Context, rec *AuditRecord) error {
	if rec == nil {
		return fmt.Errorf("audit: %w: nil record", ErrInvalid)
	}
	// A status change's record is appended with the change itself
	// (changeStatus): one made up here would have no status_changes row
	// and break the trail's cross-check.
	if rec.Action == AuditStatusChanged {
		return fmt.Errorf("audit: %w: a status change is recorded with the change itself", ErrInvalid)
	}
	now := db.now()
	err := db.update(ctx, func(tx *sql.Tx) error {
		return appendAudit(ctx, tx, rec, now)
	})
	if err != nil {
		return fmt.Errorf("audit %s: %w", rec.Action, err)
	}
	return nil
}

// appendAudit appends rec inside tx, so that an action and its record
// commit (or roll back) together.
//
// Reading the newest record and inserting the next is race-free because
// every write in this process goes through the single writer connection
// in BEGIN IMMEDIATE transactions: tx already holds SQLite's write lock,
// so no other transaction, in this process or another (the CLI while the
// server runs), can append between the read and the insert. seq is given
// explicitly as newest + 1, so a gap can only come from tampering.
func appendAudit(ctx context.Context, tx *sql.Tx, rec *AuditRecord, now time.Time) error {
	w, err := newAuditWriter(ctx, tx, false)
	if err != nil {
		return err
	}
	if err := w.append(ctx, rec, now); err != nil {
		return err
	}
	return w.close(ctx)
}

// auditWriter appends many records in one transaction (an import of
// thousands of residents, a bulk print): the head is read once, the
// insert prepared once, and the head written back by close. The
// transaction must not append through anything else meanwhile.
type auditWriter struct {
	tx   *sql.Tx
	ins  *sql.Stmt // nil: unprepared, for a single append
	h    hash.Hash
	seq  int64  // the newest record's seq, 0 for none
	prev []byte // the newest record's hash
	n    int    // records appended
	tree *treeWriter
}

// newAuditWriter reads the chain's head in tx. prepare prepares the
// insert, worth it only for more than a few appends.
//
// The chain continues from the head row, not from whatever row is last:
// if rows were removed from the file, the next append still links to
// the hash they had, and VerifyAudit reports the gap.
func newAuditWriter(ctx context.Context, tx *sql.Tx, prepare bool) (*auditWriter, error) {
	w := &auditWriter{tx: tx, h: sha256.New(), prev: make([]byte, auditHashSize)}
	err := tx.QueryRowContext(ctx, `SELECT seq, hash FROM audit_head WHERE id = 1`).Scan(&w.seq, &w.prev)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, err
	}
	if prepare {
		if w.ins, err = tx.PrepareContext(ctx, insertAuditSQL); err != nil {
			return nil, err
		}
	}
	if w.tree, err = newTreeWriter(ctx, tx, prepare); err != nil {
		if w.ins != nil {
			w.ins.Close()
		}
		return nil, err
	}
	return w, nil
}

// append validates rec, chains it to the previous record and inserts it;
// rec gets its Seq, At, Detail (compacted), PrevHash and Hash.
func (w *auditWriter) append(ctx context.Context, rec *AuditRecord, now time.Time) error {
	if rec.At.IsZero() {
		rec.At = now
	}
	rec.At = truncMS(rec.At)
	switch {
	case rec.Actor == "":
		return fmt.Errorf("%w: audit record without an actor", ErrInvalid)
	case rec.Action == "":
		return fmt.Errorf("%w: audit record without an action", ErrInvalid)
	case len(rec.Actor) > maxAuditText || len(rec.Action) > maxAuditText || len(rec.Subject) > maxAuditText:
		return fmt.Errorf("%w: audit actor, action or subject longer than %d bytes", ErrInvalid, maxAuditText)
	case !utf8.ValidString(string(rec.Actor)) || !utf8.ValidString(rec.Subject):
		return fmt.Errorf("%w: audit actor or subject is not UTF-8", ErrInvalid)
	case len(rec.Detail) > maxAuditDetail:
		return fmt.Errorf("%w: audit detail longer than %d bytes", ErrInvalid, maxAuditDetail)
	case len(rec.Detail) > 0 && !json.Valid(rec.Detail):
		return fmt.Errorf("%w: audit detail is not JSON", ErrInvalid)
	}
	// Compact so the stored (and hashed) bytes do not depend on the
	// caller's formatting.
	var detail []byte
	if len(rec.Detail) > 0 {
		var buf bytes.Buffer
		if err := json.Compact(&buf, rec.Detail); err != nil {
			return fmt.Errorf("%w: audit detail: %v", ErrInvalid, err)
		}
		detail = buf.Bytes()
	}
	seq := w.seq + 1
	sum := auditHash(w.h, nil, seq, rec.At.UnixMilli(),
		[]byte(rec.Actor), []byte(rec.Action), []byte(rec.Subject), detail, w.prev)
	args := []any{seq, rec.At.UnixMilli(), rec.Actor, rec.Action, rec.Subject, string(detail), w.prev, sum}
	var err error
	if w.ins != nil {
		_, err = w.ins.ExecContext(ctx, args...)
	} else {
		_, err = w.tx.ExecContext(ctx, insertAuditSQL, args...)
	}
	if err != nil {
		return mapErr(err)
	}
	if err := w.tree.add(ctx, seq, sum); err != nil {
		return err
	}
	rec.Seq, rec.Detail, rec.PrevHash, rec.Hash = seq, detail, w.prev, sum
	w.seq, w.prev, w.n = seq, sum, w.n+1
	return nil
}

// close writes the new head, if anything was appended, and releases the
// prepared insert. The transaction must not commit without it.
func (w *auditWriter) close(ctx context.Context) error {
	if w.ins != nil {
		defer w.ins.Close()
	}
	defer w.tree.close()
	if w.n == 0 {
		return nil
	}
	if _, err := w.tx.ExecContext(ctx, upsertAuditHeadSQL, w.seq, w.prev); err != nil {
		return mapErr(err)
	}
	return nil
}

const upsertAuditHeadSQL = `
	INSERT INTO audit_head (id, seq, hash) VALUES (1, ?, ?)
	ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash`

const insertAuditSQL = `
	INSERT INTO audit (seq, at_ms, actor, action, subject, detail, prev_hash, hash)
	VALUES (?, ?, ?, ?, ?, ?, ?, ?)`

// AuditError reports the first broken link of the audit trail.
type AuditError struct {
	Seq    int64  // the record at which the chain breaks
	Reason string // what is wrong, for a person
}

func (e *AuditError) Error() string {
	if e.Seq == 0 {
		return "audit trail broken: " + e.Reason
	}
	return fmt.Sprintf("audit trail broken at record %d: %s", e.Seq, e.Reason)
}

// Unwrap makes a broken chain match ErrCorrupt.
func (e *AuditError) Unwrap() error { return ErrCorrupt }

// VerifyAudit reads the whole audit trail in seq order, one row at a
// time (constant memory), and recomputes the chain. It returns the
// number of records checked and, if the chain is broken, an *AuditError
// (matching ErrCorrupt) naming the first bad record:
//   - its stored hash differs from the recomputed one: the record was
//     altered;
//   - its prev_hash differs from the previous record's hash, or its seq
//     does not follow the previous one: records before it were removed
//     or reordered;
//   - the last record is not the newest one appended (kept in a head row
//     updated with every append): records were removed from the end;
//   - records were removed from the start other than by PurgeAudit,
//     whose purge record must name the trail's base;
//   - the stored Merkle tree does not match the records, or a status
//     change in status_changes differs from the one its audit record
//     describes (see VerifyAuditTrail).
//
// Any other error (I/O, a cancelled ctx) is returned wrapped as is. The
// read runs in one read transaction, so appends made meanwhile are
// neither half-seen nor block.
func (db *DB) VerifyAudit(ctx context.Context) (n int64, err error) {
	v, err := db.VerifyAuditTrail(ctx, nil)
	return v.Records, err
}

// AuditVerification is what VerifyAuditTrail checked.
type AuditVerification struct {
	Records       int64     // records read (those after the purge base)
	Size          int64     // records ever appended: the tree's size
	Root          tlog.Hash // the tree's root, recomputed from the records
	StatusChanges int64     // status_changes rows matched to their records
	Checkpoints   int       // checkpoints the trail was proven to extend
}

// VerifyAuditTrail is VerifyAudit that also proves the trail extends
// each of checkpoints (made earlier and kept outside the database, their
// signatures already checked): a consistency proof from the stored tree,
// checked against the root recomputed from the records read, so neither
// rewritten records nor a rewritten tree pass. It also cross-checks the
// status_changes table against the status_changed records: a row
// without its record (inserted, or replaced with another reason) or a
// record without its row (deleted) breaks the trail. Rows older than
// the oldest record left after retention are not checked. The returned
// value is never nil.
func (db *DB) VerifyAuditTrail(ctx context.Context, checkpoints []*Checkpoint) (*AuditVerification, error) {
	v := &AuditVerification{}
	err := db.view(ctx, func(tx *sql.Tx) error {
		return verifyAuditTx(ctx, tx, v, checkpoints)
	})
	st := &AuditState{CheckedAt: time.Now(), Records: v.Records}
	var ae *AuditError
	if errors.As(err, &ae) {
		st.Broken = ae.Error()
		db.auditState.Store(st)
		return v, err
	}
	if err != nil {
		return v, fmt.Errorf("verify audit trail: %w", err)
	}
	db.auditState.Store(st)
	return v, nil
}

func verifyAuditTx(ctx context.Context, tx *sql.Tx, v *AuditVerification, checkpoints []*Checkpoint) error {
	w, err := startAuditWalk(ctx, tx)
	if err != nil {
		return err
	}
	if err := w.readRecords(ctx, tx, v); err != nil {
		return err
	}
	if err := w.checkBase(); err != nil {
		return err
	}
	lastSeq := w.lastSeq
	if err := checkAuditHead(ctx, tx, lastSeq, w.want); err != nil {
		return err
	}
	v.Size, v.Root = lastSeq, w.tree.root()
	if lastSeq > 0 {
		root, err := tlog.TreeHash(lastSeq, w.tr)
		if err != nil || root != v.Root {
			return &AuditError{Seq: lastSeq, Reason: "the stored tree of the trail does not match its records: tree rewritten"}
		}
	} else if err := treeRootEmpty(ctx, tx); err != nil {
		return err
	}
	// Rows whose record retention may have removed are not required to
	// have one: those up to the newest purge's status_through, or (a
	// purge from before that was recorded) older than the oldest record.
	exempt := w.purged.StatusThrough
	firstAt := w.firstAt
	if w.baseSeq == 0 || exempt > 0 {
		firstAt = -1 << 63
	}
	if v.StatusChanges, err = w.statuses.check(ctx, tx, firstAt, exempt); err != nil {
		return err
	}
	for _, cp := range checkpoints {
		if err := checkExtends(ctx, tx, v.Size, v.Root, cp); err != nil {
			return err
		}
		v.Checkpoints++
	}
	return nil
}

// auditWalk is what one pass over the trail has learnt so far.
type auditWalk struct {
	lastSeq  int64
	want     []byte // the previous record's hash
	baseSeq  int64
	baseHash []byte
	tr       *treeReader
	tree     treeStack
	purgeSeq int64 // the newest purge record that moved the base
	purged   auditPurge
	statuses statusRecords
	firstAt  int64
}

// startAuditWalk begins at the base: retention may have removed records
// up to it, and the chain starts after it, linked to the hash of the
// last one removed.
func startAuditWalk(ctx context.Context, tx *sql.Tx) (*auditWalk, error) {
	w := &auditWalk{want: make([]byte, auditHashSize), statuses: statusRecords{}, firstAt: -1 << 63}
	err := tx.QueryRowContext(ctx, `SELECT seq, hash FROM audit_base WHERE id = 1`).Scan(&w.lastSeq, &w.want)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, err
	}
	w.baseSeq, w.baseHash = w.lastSeq, bytes.Clone(w.want)
	w.tr = newTreeReader(ctx, tx)
	if w.baseSeq > 0 {
		if err := w.tree.startAt(w.tr, w.baseSeq); err != nil {
			return nil, &AuditError{Seq: w.baseSeq, Reason: fmt.Sprintf("the tree hashes of the purged records are missing: %v", err)}
		}
	}
	return w, nil
}

// readRecords checks every record after the base against its link and
// hash, adds it to the tree and notes purges and status changes.
func (w *auditWalk) readRecords(ctx context.Context, tx *sql.Tx, v *AuditVerification) error {
	rows, err := tx.QueryContext(ctx, `
		SELECT seq, at_ms, actor, action, subject, detail, prev_hash, hash
		FROM audit WHERE seq > ? ORDER BY seq`, w.baseSeq)
	if err != nil {
		return err
	}
	defer rows.Close()
	h := sha256.New()
	sum := make([]byte, 0, auditHashSize)
	var leafBuf [1 + auditHashSize]byte // tlog.RecordHash's input, without its allocation
	var seq, at int64
	// RawBytes point into the driver's row: no copy per column, which
	// is most of the cost over a million rows. They are valid until
	// the next Next, and only read before it.
	var actor, action, subject, detail, prev, stored sql.RawBytes
	for rows.Next() {
		if err := rows.Scan(&seq, &at, &actor, &action, &subject, &detail, &prev, &stored); err != nil {
			return &AuditError{Seq: w.lastSeq + 1, Reason: fmt.Sprintf("unreadable record: %v", err)}
		}
		switch {
		case seq != w.lastSeq+1:
			return &AuditError{Seq: seq, Reason: fmt.Sprintf("expected record %d next: records removed or reordered", w.lastSeq+1)}
		case !bytes.Equal(prev, w.want):
			return &AuditError{Seq: seq, Reason: "previous-hash link does not match the record before it: records removed or reordered"}
		}
		sum = auditHash(h, sum, seq, at, actor, action, subject, detail, prev)
		if !bytes.Equal(sum, stored) {
			return &AuditError{Seq: seq, Reason: "hash does not match the record's contents: record altered"}
		}
		if w.baseSeq > 0 && v.Records == 0 {
			w.firstAt = at
		}
		copy(leafBuf[1:], sum)
		w.tree.push(sha256.Sum256(leafBuf[:]))
		switch string(action) {
		case AuditPurge:
			var p auditPurge
			if json.Unmarshal(detail, &p) == nil && p.AuditThrough > 0 {
				w.purgeSeq, w.purged = seq, p
			}
		case AuditStatusChanged:
			w.statuses.add(seq, at, actor, subject, detail)
		}
		w.want = append(w.want[:0], stored...)
		w.lastSeq = seq
		v.Records++
	}
	return rows.Err()
}

// checkBase refuses a base moved by hand, which would hide removed
// records: it must be the one the newest audited purge set.
func (w *auditWalk) checkBase() error {
	if w.baseSeq > 0 && (w.purged.AuditThrough != w.baseSeq || w.purged.AuditThroughHash != hex.EncodeToString(w.baseHash)) {
		reason := "records were removed before it without an audited purge"
		if w.purgeSeq > 0 {
			reason = fmt.Sprintf("the purge boundary (record %d) is not the one the purge in record %d set", w.baseSeq, w.purgeSeq)
		}
		return &AuditError{Seq: w.baseSeq + 1, Reason: reason}
	}
	return nil
}

// checkAuditHead compares the last record read (seq 0 and a zero hash
// for none) with the head row, which names the newest record appended.
func checkAuditHead(ctx context.Context, tx *sql.Tx, lastSeq int64, lastHash []byte) error {
	var headSeq int64
	var headHash []byte
	err := tx.QueryRowContext(ctx, `SELECT seq, hash FROM audit_head WHERE id = 1`).Scan(&headSeq, &headHash)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		if lastSeq == 0 {
			return nil // nothing ever appended
		}
		return &AuditError{Seq: lastSeq, Reason: "the record of the newest record (audit_head) is missing"}
	case err != nil:
		return err
	case headSeq > lastSeq:
		return &AuditError{Seq: lastSeq + 1, Reason: fmt.Sprintf("the trail ends at record %d but record %d was appended: records removed from the end", lastSeq, headSeq)}
	case headSeq < lastSeq:
		return &AuditError{Seq: headSeq + 1, Reason: fmt.Sprintf("records after %d, the newest appended, were added to the file", headSeq)}
	case !bytes.Equal(headHash, lastHash):
		return &AuditError{Seq: lastSeq, Reason: "the last record's hash differs from the one recorded when it was appended: record replaced"}
	}
	return nil
}

// AuditFilter selects audit records for FindAudit.
type AuditFilter struct {
	// AfterSeq skips records up to and including this seq.
	AfterSeq int64
	// Last, if positive, keeps only the newest Last records (still
	// returned oldest first).
	Last int
}

// FindAudit calls fn for each selected record, oldest first, streaming
// from one read snapshot; an error from fn stops the walk and is
// returned. The record passed to fn is reused: copy what must outlive
// the call.
func (db *DB) FindAudit(ctx context.Context, f AuditFilter, fn func(*AuditRecord) error) error {
	err := db.view(ctx, func(tx *sql.Tx) error {
		from := f.AfterSeq
		if f.Last > 0 {
			var maxSeq sql.NullInt64
			if err := tx.QueryRowContext(ctx, `SELECT max(seq) FROM audit`).Scan(&maxSeq); err != nil {
				return err
			}
			from = max(from, maxSeq.Int64-int64(f.Last))
		}
		rows, err := tx.QueryContext(ctx, `
			SELECT seq, at_ms, actor, action, subject, detail, prev_hash, hash
			FROM audit WHERE seq > ? ORDER BY seq`, from)
		if err != nil {
			return err
		}
		defer rows.Close()
		var rec AuditRecord
		for rows.Next() {
			var at int64
			var detail []byte
			if err := rows.Scan(&rec.Seq, &at, &rec.Actor, &rec.Action, &rec.Subject, &detail, &rec.PrevHash, &rec.Hash); err != nil {
				return err
			}
			rec.At, rec.Detail = time.UnixMilli(at), detail
			if err := fn(&rec); err != nil {
				return err
			}
		}
		return rows.Err()
	})
	if err != nil {
		return fmt.Errorf("find audit records: %w", err)
	}
	return nil
}

// auditPurge is the detail of a purge record that moved the audit
// trail's base; purges of other data have other details.
type auditPurge struct {
	Kind             string `json:"kind"`
	Before           int64  `json:"before_ms"`
	AuditThrough     int64  `json:"audit_through_seq"`
	AuditThroughHash string `json:"audit_through_hash"`
	// StatusThrough is the newest status_changes row when the purge
	// ran: rows up to it may have lost their audit record to it, rows
	// after it never have.
	StatusThrough int64 `json:"status_through,omitempty"`
}

// auditPurgeBatch bounds the records one purge transaction deletes, so
// the writer (and with it the scan log) is never held for long.
const auditPurgeBatch = 1000

// PurgeAudit removes the audit records older than before, for the audit
// trail's retention period. It first moves the trail's base (the last
// record removed, whose hash the next record links to) and appends a
// purge record naming it, in one transaction; then deletes in
// transactions of at most 1,000 records, sized and spaced by a
// purgePacer, so checking never waits long for the writer. VerifyAudit accepts the shorter trail only with a base
// that the newest such purge record names. It returns the number of
// records deleted; a purge interrupted by an error or ctx is finished by
// the next call.
func (db *DB) PurgeAudit(ctx context.Context, before time.Time, actor Actor) (int64, error) {
	now := db.now()
	var through int64
	err := db.update(ctx, func(tx *sql.Tx) error {
		var baseSeq int64
		err := tx.QueryRowContext(ctx, `SELECT seq FROM audit_base WHERE id = 1`).Scan(&baseSeq)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		through = baseSeq
		var seq int64
		var sum []byte
		err = tx.QueryRowContext(ctx, `
			SELECT seq, hash FROM audit WHERE seq > ? AND at_ms < ? ORDER BY seq DESC LIMIT 1`,
			baseSeq, before.UnixMilli()).Scan(&seq, &sum)
		if errors.Is(err, sql.ErrNoRows) {
			return nil // nothing new to remove; finish an earlier purge
		}
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `
			INSERT INTO audit_base (id, seq, hash) VALUES (1, ?, ?)
			ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash`, seq, sum); err != nil {
			return mapErr(err)
		}
		through = seq
		var statusThrough int64
		if err := tx.QueryRowContext(ctx, `SELECT coalesce(max(id), 0) FROM status_changes`).Scan(&statusThrough); err != nil {
			return err
		}
		return appendAudit(ctx, tx, &AuditRecord{
			Actor: actor, Action: AuditPurge, Subject: "audit",
			Detail: AuditDetail(auditPurge{Kind: "audit", Before: before.UnixMilli(),
				AuditThrough: seq, AuditThroughHash: hex.EncodeToString(sum), StatusThrough: statusThrough}),
		}, now)
	})
	if err != nil {
		return 0, fmt.Errorf("purge audit records: %w", err)
	}
	var n int64
	pace := newPurgePacer(auditPurgeBatch)
	for {
		var k int64
		size, start := pace.size, time.Now()
		err := db.update(ctx, func(tx *sql.Tx) error {
			res, err := tx.ExecContext(ctx, `
				DELETE FROM audit WHERE seq IN (
					SELECT seq FROM audit WHERE seq <= ? ORDER BY seq LIMIT ?)`, through, size)
			if err != nil {
				return mapErr(err)
			}
			k, err = res.RowsAffected()
			return err
		})
		if err != nil {
			return n, fmt.Errorf("purge audit records: %w", err)
		}
		n += k
		if k < int64(size) {
			return n, nil
		}
		if err := pace.next(ctx, time.Since(start)); err != nil {
			return n, fmt.Errorf("purge audit records: %w", err)
		}
	}
}

// AuditHead returns the seq and hash of the newest record appended (0
// and nil before the first). Written down or sent elsewhere, it lets a
// later verify prove that no records were removed from the end together
// with a forged head, which nothing inside the file alone can.
func (db *DB) AuditHead(ctx context.Context) (seq int64, hash []byte, err error) {
	err = db.r.QueryRowContext(ctx, `SELECT seq, hash FROM audit_head WHERE id = 1`).Scan(&seq, &hash)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil, nil
	}
	if err != nil {
		return 0, nil, fmt.Errorf("find audit head: %w", err)
	}
	return seq, hash, nil
}
