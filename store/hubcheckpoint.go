package store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"passgate/pass"
)

// The hub's side of audit checkpoints: every push of an enrolled
// appliance may carry its signed checkpoint and a consistency proof
// from the newest one the hub accepted. The hub checks the signature
// with the appliance's bundle key, the proof, and the chain of the audit
// records the appliance pushed; a rewrite or rollback raises an alarm
// (an audit record here, a row of checkpoint_alarms that the status page
// and /readyz show) instead of being accepted.

// AuditCheckpointAlarm is the audit action of an alarm about an
// appliance's audit trail.
const AuditCheckpointAlarm = "audit_alarm"

// MaxCheckpointProof bounds a consistency proof's hashes: a tree of
// 2^63 records needs at most 2·63.
const MaxCheckpointProof = 128

// PushedCheckpoint is an appliance's signed checkpoint as a push
// carries it: Proof proves it extends the tree of From records, the
// newest the hub said it accepted (0: none known).
type PushedCheckpoint struct {
	Note  []byte
	From  int64
	Proof []tlog.Hash
}

// CheckpointOutcome is what the hub made of a pushed checkpoint.
type CheckpointOutcome struct {
	Accepted bool
	Size     int64  // the newest size the hub holds for the appliance
	Alarm    string // set when an alarm was raised
}

// CheckpointAlarm is an alarm a hub raised about an appliance's trail.
type CheckpointAlarm struct {
	ID        int64
	Appliance string
	At        time.Time
	Reason    string
}

// CheckpointAlarms returns the newest alarms, newest first (none on an
// appliance).
func (db *DB) CheckpointAlarms(ctx context.Context, limit int) ([]CheckpointAlarm, error) {
	rows, err := db.r.QueryContext(ctx, `
		SELECT c.id, a.name, c.at_ms, c.reason FROM checkpoint_alarms c JOIN appliances a ON a.id = c.appliance_id
		ORDER BY c.id DESC LIMIT ?`, limit)
	if err != nil {
		return nil, fmt.Errorf("find checkpoint alarms: %w", err)
	}
	defer rows.Close()
	var out []CheckpointAlarm
	for rows.Next() {
		var a CheckpointAlarm
		var at int64
		if err := rows.Scan(&a.ID, &a.Appliance, &at, &a.Reason); err != nil {
			return nil, fmt.Errorf("find checkpoint alarms: %w", err)
		}
		a.At = time.UnixMilli(at)
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("find checkpoint alarms: %w", err)
	}
	return out, nil
}

// CountCheckpointAlarms counts every alarm raised, for the metric.
func (db *DB) CountCheckpointAlarms(ctx context.Context) (int64, error) {
	var n int64
	if err := db.r.QueryRowContext(ctx, `SELECT count(*) FROM checkpoint_alarms`).Scan(&n); err != nil {
		return 0, fmt.Errorf("count checkpoint alarms: %w", err)
	}
	return n, nil
}

// CheckApplianceTrail runs after a push of appliance applianceID was
// stored: it checks the chain of the audit records received since the
// last check and, if in is not nil, the pushed checkpoint. Anything
// wrong raises an alarm, reported in the outcome; the push itself
// stays stored (its records are evidence).
func (db *DB) CheckApplianceTrail(ctx context.Context, applianceID int64, in *PushedCheckpoint) (*CheckpointOutcome, error) {
	now := db.now()
	out := &CheckpointOutcome{}
	err := db.update(ctx, func(tx *sql.Tx) error {
		*out = CheckpointOutcome{}
		a, err := scanAppliance(tx.QueryRowContext(ctx, `SELECT `+applianceColumns+` FROM appliances WHERE id = ?`, applianceID))
		if err != nil {
			return err
		}
		d, err := findDistrict(ctx, tx)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO appliance_checkpoints (appliance_id) VALUES (?)
			ON CONFLICT (appliance_id) DO NOTHING`, a.ID); err != nil {
			return mapErr(err)
		}
		alarm := func(reason string) error {
			out.Alarm = reason
			return raiseCheckpointAlarm(ctx, tx, a, reason, now)
		}
		var size int64
		var root []byte
		if err := tx.QueryRowContext(ctx, `SELECT size, root FROM appliance_checkpoints WHERE appliance_id = ?`, a.ID).
			Scan(&size, &root); err != nil {
			return err
		}
		out.Size = size
		var cp *Checkpoint
		var signedSize int64 // the size a validly signed checkpoint names, accepted or not
		if in != nil {
			var reason string
			cp, signedSize, reason = judgeCheckpoint(a, d.ID, in, size, root)
			if reason != "" {
				if err := alarm(reason); err != nil {
					return err
				}
			}
		}
		reason, err := checkPushedChain(ctx, tx, a.ID, signedSize)
		if err != nil {
			return err
		}
		if reason != "" {
			if err := alarm(reason); err != nil {
				return err
			}
		}
		if cp == nil || out.Alarm != "" {
			return nil
		}
		if cp.Size == size && bytes.Equal(cp.Root[:], root) {
			out.Accepted = true // the one held: nothing to write
			return nil
		}
		if _, err := tx.ExecContext(ctx, `UPDATE appliance_checkpoints SET size = ?, root = ?, note = ?, received_ms = ?
			WHERE appliance_id = ?`, cp.Size, cp.Root[:], in.Note, now.UnixMilli(), a.ID); err != nil {
			return mapErr(err)
		}
		out.Accepted, out.Size = true, cp.Size
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("check audit trail of appliance %d: %w", applianceID, err)
	}
	return out, nil
}

// judgeCheckpoint decides on a pushed checkpoint against the one the hub
// holds (size held, root nil for none): a reason for an alarm, or
// whether to accept it.
func judgeCheckpoint(a *Appliance, districtID string, in *PushedCheckpoint, held int64, heldRoot []byte) (accept *Checkpoint, signed int64, reason string) {
	cp, reason := openPushedCheckpoint(a, districtID, in)
	if reason != "" {
		return nil, 0, reason
	}
	accept, reason = extendsHeld(cp, in, held, heldRoot)
	return accept, cp.Size, reason
}

// openPushedCheckpoint checks a pushed checkpoint's signature (by the
// appliance's bundle key) and origin.
func openPushedCheckpoint(a *Appliance, districtID string, in *PushedCheckpoint) (*Checkpoint, string) {
	vkey, err := AuditVerifierKey(a.BundleKey)
	if err != nil {
		return nil, "no key to check its checkpoints with: " + err.Error()
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		return nil, "no key to check its checkpoints with: " + err.Error()
	}
	cp, err := OpenCheckpoint(in.Note, note.VerifierList(v))
	if err != nil {
		return nil, "a checkpoint not signed by its key or malformed: " + err.Error()
	}
	if want := AuditOrigin(districtID, a.Name); cp.Origin != want {
		return nil, fmt.Sprintf("a checkpoint of another trail (%q, want %q)", cp.Origin, want)
	}
	return cp, ""
}

// extendsHeld decides on a validly signed checkpoint against the one the
// hub holds (held records, heldRoot nil for none): accepted, ignored
// (nil, "": proven from another size, the answer names held), or an
// alarm's reason.
func extendsHeld(cp *Checkpoint, in *PushedCheckpoint, held int64, heldRoot []byte) (*Checkpoint, string) {
	if heldRoot == nil || held == 0 {
		return cp, "" // the first (or an empty trail): trusted on first use, like the enrolment
	}
	var r tlog.Hash
	copy(r[:], heldRoot)
	switch {
	case cp.Size < held:
		return nil, fmt.Sprintf("trail rolled back: a checkpoint of %d records after one of %d (records removed, or the database restored from an older copy)", cp.Size, held)
	case cp.Size == held:
		if cp.Root != r {
			return nil, fmt.Sprintf("trail rewritten: a checkpoint of %d records with another root than the one accepted", cp.Size)
		}
		return cp, ""
	case in.From != held:
		return nil, "" // proven from another size: ask again from held
	}
	if err := tlog.CheckTree(in.Proof, cp.Size, cp.Root, held, r); err != nil {
		return nil, fmt.Sprintf("trail rewritten: the checkpoint of %d records does not extend the accepted one of %d (%v)", cp.Size, held, err)
	}
	return cp, ""
}

// raiseCheckpointAlarm records an alarm about appliance a's trail: a
// row for the status page and an audit record of the hub's own. The
// same reason as the appliance's newest alarm is not repeated: every
// push of a rewritten trail would raise it again.
func raiseCheckpointAlarm(ctx context.Context, tx *sql.Tx, a *Appliance, reason string, now time.Time) error {
	var last string
	err := tx.QueryRowContext(ctx, `SELECT reason FROM checkpoint_alarms WHERE appliance_id = ? ORDER BY id DESC LIMIT 1`, a.ID).Scan(&last)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return err
	}
	if last == reason {
		return nil
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO checkpoint_alarms (appliance_id, at_ms, reason) VALUES (?, ?, ?)`,
		a.ID, now.UnixMilli(), reason); err != nil {
		return mapErr(err)
	}
	return appendAudit(ctx, tx, &AuditRecord{Actor: ActorHub, Action: AuditCheckpointAlarm, Subject: a.Name,
		Detail: AuditDetail(map[string]string{"reason": reason})}, now)
}

// pushedAudit is an audit record as the outbox_audit trigger sent it.
type pushedAudit struct {
	Seq     int64  `json:"seq"`
	At      int64  `json:"at_ms"`
	Actor   Actor  `json:"actor"`
	Action  string `json:"action"`
	Subject string `json:"subject"`
	Detail  string `json:"detail"`
	Hash    string `json:"hash"` // upper-case hex
}

// checkPushedChain recomputes the chain hash of every audit record the
// appliance pushed since the last check, linked to the one before it as
// the hub holds it: a trail rewritten and rehashed on the appliance
// shows as a record whose link or hash does not fit what came before,
// and one rolled back as a record number sent again with another hash.
// It then matches the status changes pushed to their audit records
// (checkStatusEvents). It returns the reason for an alarm, or "".
func checkPushedChain(ctx context.Context, tx *sql.Tx, applianceID, signedSize int64) (string, error) {
	var row, seq int64
	var prev []byte
	if err := tx.QueryRowContext(ctx, `SELECT chain_row, chain_seq, chain_hash FROM appliance_checkpoints WHERE appliance_id = ?`,
		applianceID).Scan(&row, &seq, &prev); err != nil {
		return "", err
	}
	got, err := pushedEvents(ctx, tx, applianceID, "audit", row)
	if err != nil {
		return "", err
	}
	var reason string
	h := sha256.New()
	// The newest record sent again: if the hub holds it with the same
	// hash, the chain behind it is the same too, so one look-up (a scan
	// of what the hub holds) does for a whole range sent again.
	var resent *pushedAudit
	var resentID int64
	for _, p := range got {
		row = p.id
		if reason != "" {
			continue
		}
		var e pushedAudit
		var sum []byte
		err := json.Unmarshal([]byte(p.body), &e)
		if err == nil {
			sum, err = hex.DecodeString(e.Hash)
		}
		if err != nil || len(sum) != auditHashSize {
			reason = fmt.Sprintf("audit record %d it pushed is unreadable", e.Seq)
			continue
		}
		if e.Seq <= seq {
			// Sent again (a restored outbox): checked below, once.
			resent, resentID = &e, p.id
			continue
		}
		if resent != nil {
			if reason, err = checkResent(ctx, tx, applianceID, resentID, resent, seq); err != nil || reason != "" {
				return reason, err
			}
			resent = nil
		}
		if e.Seq == seq+1 && prev != nil {
			want := auditHash(h, nil, e.Seq, e.At, []byte(e.Actor), []byte(e.Action), []byte(e.Subject), []byte(e.Detail), prev)
			if !bytes.Equal(want, sum) {
				reason = fmt.Sprintf("trail rewritten: audit record %d it pushed does not chain to record %d the hub holds", e.Seq, seq)
				continue
			}
		}
		seq, prev = e.Seq, sum
	}
	if resent != nil && reason == "" {
		if reason, err = checkResent(ctx, tx, applianceID, resentID, resent, seq); err != nil {
			return "", err
		}
	}
	if len(got) > 0 {
		if _, err := tx.ExecContext(ctx, `UPDATE appliance_checkpoints SET chain_row = ?, chain_seq = ?, chain_hash = ? WHERE appliance_id = ?`,
			row, seq, prev, applianceID); err != nil {
			return "", mapErr(err)
		}
	}
	if reason != "" {
		return reason, nil
	}
	return checkStatusEvents(ctx, tx, applianceID, signedSize, seq)
}

// checkStatusEvents matches each status change an appliance pushed (the
// outbox_status trigger fires on any row inserted into status_changes)
// to the status_changed audit record passgate appends in the same
// transaction, pushed after it. A row written into the file by hand,
// say deleted and inserted again with another reason, has none. A status
// change whose record has not arrived yet is left for a later check,
// unless the hub holds every audit record up to a checkpoint signed
// after it was made (signedSize ≤ heldSeq): then its record will never
// come.
func checkStatusEvents(ctx context.Context, tx *sql.Tx, applianceID, signedSize, heldSeq int64) (string, error) {
	var from int64
	if err := tx.QueryRowContext(ctx, `SELECT status_row FROM appliance_checkpoints WHERE appliance_id = ?`, applianceID).Scan(&from); err != nil {
		return "", err
	}
	list, err := pushedEvents(ctx, tx, applianceID, "status", from)
	if err != nil {
		return "", err
	}
	done := from
	var reason string
	for _, st := range list {
		var ev struct {
			Subject string `json:"subject"`
			From    *int   `json:"from_color"`
			To      int    `json:"to_color"`
			Reason  string `json:"reason"`
			Actor   Actor  `json:"actor"`
			At      int64  `json:"at_ms"`
		}
		if err := json.Unmarshal([]byte(st.body), &ev); err != nil {
			reason = "a status change it pushed is unreadable"
			done = st.id
			break
		}
		ok, err := hasStatusRecord(ctx, tx, applianceID, st.id, ev.Subject, ev.From, ev.To, ev.Reason, ev.Actor, ev.At)
		if err != nil {
			return "", err
		}
		if !ok {
			if signedSize == 0 || heldSeq < signedSize {
				break // its record may still be on the way
			}
			reason = fmt.Sprintf("status change of %s at %s (reason %q) pushed without its audit record: written into the database outside passgate",
				strings.ToLower(ev.Subject), time.UnixMilli(ev.At).UTC().Format(time.RFC3339), ev.Reason)
			done = st.id
			break
		}
		done = st.id
	}
	if done != from {
		if _, err := tx.ExecContext(ctx, `UPDATE appliance_checkpoints SET status_row = ? WHERE appliance_id = ?`, done, applianceID); err != nil {
			return "", mapErr(err)
		}
	}
	return reason, nil
}

// hasStatusRecord looks for the status_changed audit record of a pushed
// status change among the audit records pushed after it.
func hasStatusRecord(ctx context.Context, tx *sql.Tx, applianceID, after int64, subject string, from *int, to int, reason string, actor Actor, at int64) (bool, error) {
	rows, err := tx.QueryContext(ctx, `SELECT json_extract(body, '$.detail') FROM district_events
		WHERE appliance_id = ? AND kind = 'audit' AND id > ?
			AND json_extract(body, '$.action') = ? AND lower(json_extract(body, '$.subject')) = lower(?)
			AND json_extract(body, '$.at_ms') = ? AND json_extract(body, '$.actor') = ?`,
		applianceID, after, AuditStatusChanged, subject, at, actor)
	if err != nil {
		return false, err
	}
	defer rows.Close()
	wantFrom := ""
	if from != nil {
		wantFrom = pass.Color(*from).String()
	}
	for rows.Next() {
		var detail string
		if err := rows.Scan(&detail); err != nil {
			return false, err
		}
		var d auditStatus
		if json.Unmarshal([]byte(detail), &d) == nil && d.Reason == reason && d.To == pass.Color(to).String() && d.From == wantFrom {
			return true, nil
		}
	}
	return false, rows.Err()
}

// checkResent compares an audit record sent again (stored as row id)
// with the one of the same number the hub already holds: a restored
// outbox sends what the hub has, with the same hash; anything else is
// another history. It returns the reason for an alarm, or "".
func checkResent(ctx context.Context, tx *sql.Tx, applianceID, id int64, e *pushedAudit, held int64) (string, error) {
	var body string
	err := tx.QueryRowContext(ctx, `SELECT body FROM district_events WHERE appliance_id = ? AND kind = 'audit'
		AND id < ? AND json_extract(body, '$.seq') = ? ORDER BY id DESC LIMIT 1`, applianceID, id, e.Seq).Scan(&body)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return "", err
	}
	var old pushedAudit
	if err != nil || json.Unmarshal([]byte(body), &old) != nil || old.Hash != e.Hash {
		return fmt.Sprintf("trail rolled back or rewritten: audit record %d pushed again with another content, after record %d", e.Seq, held), nil
	}
	return "", nil
}

// pushedEvent is an appliance's outbox record as the hub stored it.
type pushedEvent struct {
	id   int64 // district_events.id
	body string
}

// pushedEvents reads the records of kind the appliance pushed after row
// after, in the order they arrived. They are read whole before the
// caller queries again in the same transaction.
func pushedEvents(ctx context.Context, tx *sql.Tx, applianceID int64, kind string, after int64) ([]pushedEvent, error) {
	rows, err := tx.QueryContext(ctx, `SELECT id, body FROM district_events
		WHERE appliance_id = ? AND kind = ? AND id > ? ORDER BY id`, applianceID, kind, after)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []pushedEvent
	for rows.Next() {
		var e pushedEvent
		if err := rows.Scan(&e.id, &e.body); err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, rows.Err()
}
