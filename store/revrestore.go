package store

import (
	"bytes"
	"context"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"slices"
	"strings"
	"time"
)

// Revocations a restored hub takes back from its appliances.
//
// A hub restored from a backup has lost every revocation it made (or took
// from an office) after the backup. Its appliances still hold them: the
// feed never undoes a revocation. So the hub tags each revocation of its
// feed, and an appliance that finds, after reading a new generation of the
// feed to its end, revocations it stored from the feed that the feed no
// longer carries hands them back (districtsync's restore call). The hub
// takes back only what it can prove it made: least authority, an
// appliance hands back the hub's records, never its own words.
//
// The tag is an HMAC-SHA256, cut to RevocationTagSize bytes, under a key
// derived from the private half of the district's oldest root held here:
// every backup of the hub holds that key (so a restored hub checks tags
// made after its backup), it is sealed with the other keys when a key
// file is used, root rotations leave it in place, and no appliance ever
// holds it, so no gate or office can make a tag. It covers the district,
// the revocation's identity (the number the hub first gave it) and every
// field that says what it voids.
//
// What the hub takes back, record by record:
//   - refused and audited: a record without a tag, with one no root held
//     here made (another district's, or forged), malformed, revoking a
//     district root, or differing from the record the hub holds under
//     its number (RestoreRefusal);
//   - refused and audited as a replay: a record the hub holds under its
//     own number (it is in the feed every appliance reads: an appliance
//     that read the feed to its end has it already);
//   - held, nothing done: one the hub took back already (by its number),
//     or one voiding exactly the passes a revocation held here voids;
//   - superseded, nothing done: a subject revocation whose cut-off is at
//     or before one held here for the same subject (it voids nothing
//     more);
//   - restored: anything else. The hub never removes a revocation from
//     its list (retention keeps it, see hubretention.go), so a genuine
//     record it does not hold is one it lost. It is appended with a new
//     number (every appliance pulls it, also one whose position is past
//     its first number), keeps its number as its identity (restored_id)
//     and its time, has origin OriginRestored, and a key it revokes is
//     marked revoked as the trust list would show.
//
// A person's status change itself is not handed back (appliances hold the
// revocation, not the register): the hub's register keeps the colour of
// the backup, and because a restored revocation has an origin and is
// later than the register's last change, the hub's desk refuses to issue
// that person a pass (StatusChangedElsewhere) until the status is
// recorded again.

// RevocationTagSize is the size of a hub's tag of a revocation.
const RevocationTagSize = 16

// MaxRestoreBatch bounds the revocations handed back in one call.
const MaxRestoreBatch = 1000

// OriginRestored marks at a hub a revocation an appliance handed back
// after the hub lost it.
const OriginRestored = "restored"

// Audit actions of revocations handed back to a hub.
const (
	// AuditRevocationsRestored: a hub took back revocations it had lost,
	// from the appliance named in the subject.
	AuditRevocationsRestored = "sync_revocations_restored"
	// AuditRestoreRefused: a hub refused revocations an appliance handed
	// back (the detail says why, by RestoreRefusal).
	AuditRestoreRefused = "sync_restore_refused"
)

// RestoreRefusal is why a hub refused a revocation handed back: stable
// codes, in the audit trail.
type RestoreRefusal string

// Refusals of revocations handed back.
const (
	RefuseRestoreMalformed RestoreRefusal = "malformed"
	RefuseRestoreUntagged  RestoreRefusal = "untagged"
	RefuseRestoreForged    RestoreRefusal = "forged" // no root of this district held here made the tag
	RefuseRestoreConflict  RestoreRefusal = "conflict"
	RefuseRestoreRoot      RestoreRefusal = "root"
	RefuseRestoreReplay    RestoreRefusal = "replay" // the hub holds it under its own number
	// RefuseRestoreRequest: the whole request was malformed.
	RefuseRestoreRequest RestoreRefusal = "malformed_request"
)

// RestoreResult is what a hub made of revocations handed back.
type RestoreResult struct {
	Restored   int
	Held       int
	Superseded int
	// Refused counts the refusals by reason.
	Refused map[RestoreRefusal]int
	// Dropped are the identities of records the appliance need not hand
	// back again: superseded, or refused for what the record is (a
	// replay is not among them: the hub holds it).
	Dropped []int64
}

// tagKeys are the keys a hub tags and checks revocations with. Each key's
// HMAC is made once and reset per record: a page of the feed tags
// thousands.
type tagKeys struct {
	district string
	macs     []hash.Hash
}

// revocationTagKeys derives the tag keys from the private halves of the
// district's roots held here, the oldest first (the one that tags): none
// on an enrolled appliance, which holds no root's private half.
func (db *DB) revocationTagKeys(ctx context.Context, tx *sql.Tx) (*tagKeys, error) {
	d, err := findDistrict(ctx, tx)
	if errors.Is(err, ErrNotInitialized) {
		return &tagKeys{}, nil
	}
	if err != nil {
		return nil, err
	}
	rows, err := tx.QueryContext(ctx, `SELECT kid, private FROM keys
		WHERE role = 'root' AND district = ? AND private IS NOT NULL ORDER BY created_ms, rowid`, d.ID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	tk := &tagKeys{district: d.ID}
	for rows.Next() {
		k := &Key{}
		var kid []byte
		if err := rows.Scan(&kid, &k.Private); err != nil {
			return nil, err
		}
		if err := copyID(k.KID[:], kid); err != nil {
			return nil, err
		}
		if err := db.unsealKeys(k); err != nil {
			return nil, err
		}
		key, err := hkdf.Key(sha256.New, k.Private, []byte(d.ID), "passgate revocation tag v1", 32)
		if err != nil {
			return nil, err
		}
		tk.macs = append(tk.macs, hmac.New(sha256.New, key))
	}
	return tk, rows.Err()
}

// tag is the tag of r (identity r.ID) under the key of m.
func (tk *tagKeys) tag(m hash.Hash, r *Revocation) []byte {
	m.Reset()
	var n [8]byte
	u64 := func(v int64) {
		binary.BigEndian.PutUint64(n[:], uint64(v))
		m.Write(n[:])
	}
	field := func(b []byte) {
		binary.BigEndian.PutUint32(n[:4], uint32(len(b)))
		m.Write(n[:4])
		m.Write(b)
	}
	m.Write([]byte("passgate-revocation-v1"))
	field([]byte(tk.district))
	u64(r.ID)
	u64(int64(r.Kind))
	field(r.Target)
	u64(msOrZero(r.Before))
	field([]byte(r.Reason))
	u64(msOrZero(r.At))
	return m.Sum(nil)[:RevocationTagSize]
}

// sign sets the tag of every revocation in list (nothing without keys).
func (tk *tagKeys) sign(list []*Revocation) {
	if len(tk.macs) == 0 {
		return
	}
	for _, r := range list {
		r.Tag = tk.tag(tk.macs[0], r)
	}
}

// verify tells whether r's tag was made by one of the keys.
func (tk *tagKeys) verify(r *Revocation) bool {
	for _, m := range tk.macs {
		if hmac.Equal(tk.tag(m, r), r.Tag) {
			return true
		}
	}
	return false
}

func msOrZero(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

// CheckRestoreRecord says what is wrong with the shape of a revocation
// handed back (empty: nothing), before its tag is looked at: the bounds
// of what a hub stores, and a tag of the right size.
func CheckRestoreRecord(r *Revocation) RestoreRefusal {
	want := r.Kind.targetLen()
	switch {
	case r.ID <= 0 || r.At.IsZero() || r.At.UnixMilli() <= 0:
		return RefuseRestoreMalformed
	case want == 0 || len(r.Target) != want:
		return RefuseRestoreMalformed
	case (r.Kind == RevokeSubject) == r.Before.IsZero():
		return RefuseRestoreMalformed
	case r.Kind == RevokeSubject && r.Before.UnixMilli() <= 0:
		return RefuseRestoreMalformed
	case len(r.Reason) > maxReasonLen:
		return RefuseRestoreMalformed
	case len(r.Tag) == 0:
		return RefuseRestoreUntagged
	case len(r.Tag) != RevocationTagSize:
		return RefuseRestoreMalformed
	}
	return ""
}

// RestoreRevocations takes back at a hub the revocations appliance handed
// back (see the top of this file for what is taken), with one audit record
// of what was restored and one of what was refused. Shapes and tags are
// judged before the writer is taken: records nobody tagged cost the hub's
// own gates no more than the one audit record of their refusal.
func (db *DB) RestoreRevocations(ctx context.Context, appliance string, recs []*Revocation) (*RestoreResult, error) {
	if len(recs) > MaxRestoreBatch {
		return nil, fmt.Errorf("restore revocations: %w: %d records, at most %d", ErrInvalid, len(recs), MaxRestoreBatch)
	}
	var tk *tagKeys
	err := db.view(ctx, func(tx *sql.Tx) error {
		var enrolled bool
		if err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM sync_hub)`).Scan(&enrolled); err != nil {
			return err
		}
		if enrolled {
			return ErrNotHub
		}
		var err error
		tk, err = db.revocationTagKeys(ctx, tx)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("restore revocations from %s: %w", appliance, err)
	}
	judged := make([]RestoreRefusal, len(recs))
	for i, r := range recs {
		if judged[i] = CheckRestoreRecord(r); judged[i] == "" && !tk.verify(r) {
			judged[i] = RefuseRestoreForged
		}
	}
	now := db.now()
	res := &RestoreResult{}
	err = db.update(ctx, func(tx *sql.Tx) error {
		*res = RestoreResult{Refused: map[RestoreRefusal]int{}}
		var restored, refused []int64
		for i, r := range recs {
			why := judged[i]
			if why == "" {
				var took bool
				var err error
				if took, why, err = restoreOne(ctx, tx, r, res); err != nil {
					return fmt.Errorf("revocation %d: %w", r.ID, err)
				}
				if took {
					restored = append(restored, r.ID)
				}
			}
			if why != "" {
				res.Refused[why]++
				refused = append(refused, r.ID)
				if why != RefuseRestoreReplay {
					res.Dropped = append(res.Dropped, r.ID)
				}
			}
		}
		if len(restored) > 0 {
			if err := appendAudit(ctx, tx, &AuditRecord{Actor: ActorSync, Action: AuditRevocationsRestored, Subject: appliance,
				Detail: AuditDetail(map[string]any{"appliance": appliance, "restored": len(restored), "ids": firstIDs(restored),
					"held": res.Held, "superseded": res.Superseded})}, now); err != nil {
				return err
			}
		}
		if len(refused) > 0 {
			return auditRestoreRefused(ctx, tx, appliance, res.Refused, refused, now)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("restore revocations from %s: %w", appliance, err)
	}
	return res, nil
}

// RefuseRestore records at a hub that appliance's whole hand-back was
// refused (why: RefuseRestoreRequest) before any record was read.
func (db *DB) RefuseRestore(ctx context.Context, appliance string, why RestoreRefusal, detail string) error {
	now := db.now()
	err := db.update(ctx, func(tx *sql.Tx) error {
		return appendAudit(ctx, tx, &AuditRecord{Actor: ActorSync, Action: AuditRestoreRefused, Subject: appliance,
			Detail: AuditDetail(map[string]any{"appliance": appliance, "why": string(why), "error": cutReason(detail)})}, now)
	})
	if err != nil {
		return fmt.Errorf("refuse restore from %s: %w", appliance, err)
	}
	return nil
}

func auditRestoreRefused(ctx context.Context, tx *sql.Tx, appliance string, why map[RestoreRefusal]int, ids []int64, now time.Time) error {
	counts := make(map[string]int, len(why))
	for k, n := range why {
		counts[string(k)] = n
	}
	return appendAudit(ctx, tx, &AuditRecord{Actor: ActorSync, Action: AuditRestoreRefused, Subject: appliance,
		Detail: AuditDetail(map[string]any{"appliance": appliance, "refused": len(ids), "why": counts, "ids": firstIDs(ids)})}, now)
}

// firstIDs keeps an audit record's list of identities short.
func firstIDs(ids []int64) []int64 {
	const most = 50
	return ids[:min(len(ids), most)]
}

// cutReason cuts a free text to what a record keeps, on a character
// boundary: pages show it.
func cutReason(s string) string {
	if len(s) > maxReasonLen {
		return strings.ToValidUTF8(s[:maxReasonLen], "")
	}
	return s
}

// restoreOne judges one record of a good shape and a tag the hub made
// against what the hub holds, and takes it back if it may: took when it
// was restored, else the refusal, or neither when it was held or
// superseded (counted in res).
func restoreOne(ctx context.Context, tx *sql.Tx, r *Revocation, res *RestoreResult) (took bool, why RestoreRefusal, err error) {
	if r.Kind == RevokeIssuer {
		if root, err := isRootKey(ctx, tx, r.Target); err != nil || root {
			return false, RefuseRestoreRoot, err
		}
	}
	if why, held, err := heldByID(ctx, tx, r); err != nil || why != "" || held {
		if held {
			res.Held++
		}
		return false, why, err
	}
	// Voiding no more than one held here: the same pass or key revoked,
	// or the subject's passes up to the same cut-off or a later one.
	var latest sql.NullInt64
	if err := tx.QueryRowContext(ctx, `SELECT max(coalesce(before_ms, 0)) FROM revocations WHERE target = ? AND kind = ?`,
		r.Target, r.Kind).Scan(&latest); err != nil {
		return false, "", err
	}
	switch {
	case latest.Valid && latest.Int64 == msOrZero(r.Before):
		res.Held++
		return false, "", nil
	case latest.Valid && latest.Int64 > msOrZero(r.Before):
		res.Superseded++
		res.Dropped = append(res.Dropped, r.ID)
		return false, "", nil
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO revocations (kind, target, before_ms, reason, at_ms, origin, restored_id)
		VALUES (?, ?, ?, ?, ?, ?, ?)`, r.Kind, r.Target, msOrNull(r.Before), r.Reason, r.At.UnixMilli(), OriginRestored, r.ID); err != nil {
		return false, "", mapErr(err)
	}
	if r.Kind == RevokeIssuer {
		// The key itself too, as the trust list shows it.
		if _, err := tx.ExecContext(ctx, `UPDATE keys SET revoked_ms = ? WHERE kid = ? AND revoked_ms IS NULL`,
			r.At.UnixMilli(), r.Target); err != nil {
			return false, "", err
		}
	}
	res.Restored++
	return true, "", nil
}

// heldByID looks r up under its identity: held when the hub took it back
// already; a replay when the hub holds it under its first number (it is
// in the feed); a conflict when what the hub holds there differs.
func heldByID(ctx context.Context, tx *sql.Tx, r *Revocation) (RestoreRefusal, bool, error) {
	h := &Revocation{}
	var before, restoredID sql.NullInt64
	var at int64
	err := tx.QueryRowContext(ctx, `SELECT kind, target, before_ms, reason, at_ms, restored_id FROM revocations
		WHERE seq = ?1 OR restored_id = ?1 ORDER BY restored_id IS NULL LIMIT 1`, r.ID).
		Scan(&h.Kind, &h.Target, &before, &h.Reason, &at, &restoredID)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return "", false, nil
	case err != nil:
		return "", false, err
	case h.Kind != r.Kind || !bytes.Equal(h.Target, r.Target) || before.Int64 != msOrZero(r.Before) ||
		h.Reason != r.Reason || at != r.At.UnixMilli():
		return RefuseRestoreConflict, false, nil
	case !restoredID.Valid:
		return RefuseRestoreReplay, false, nil
	}
	return "", true, nil
}

// HubRevocationsToReturn returns, on an enrolled appliance, at most limit
// revocations stored from the hub's feed, with the hub's tag and identity,
// that the feed of the hub's current generation did not carry: after the
// feed was read to its end, the ones the hub lost. gen is that
// generation, for MarkReturned.
func (db *DB) HubRevocationsToReturn(ctx context.Context, limit int) (list []*Revocation, gen []byte, err error) {
	if limit <= 0 {
		return nil, nil, fmt.Errorf("hub revocations to return: %w: limit %d", ErrInvalid, limit)
	}
	err = db.view(ctx, func(tx *sql.Tx) error {
		if err := tx.QueryRowContext(ctx, `SELECT generation FROM sync_state WHERE id = 1`).Scan(&gen); err != nil {
			return mapNotEnrolled(err)
		}
		if gen == nil {
			return nil // no generation read yet: nothing to compare with
		}
		rows, err := tx.QueryContext(ctx, `SELECT r.seq, r.kind, r.target, r.before_ms, r.reason, r.at_ms, t.hub_id, t.tag
			FROM hub_revocation_tags t JOIN revocations r ON r.seq = t.seq
			WHERE t.generation <> ? ORDER BY t.seq LIMIT ?`, gen, limit)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			r := &Revocation{}
			if err := scanRevocation(rows, r, &r.ID, &r.Tag); err != nil {
				return err
			}
			list = append(list, r)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, nil, fmt.Errorf("hub revocations to return: %w", err)
	}
	return list, gen, nil
}

// MarkReturned records on an appliance the hub's answer to revocations
// handed back in generation gen: those the hub need not get again
// (dropped, by the hub's identity) lose their tag and are never handed
// back again; the others count as held by the hub in gen. The
// revocations themselves stay: the feed never undoes one.
func (db *DB) MarkReturned(ctx context.Context, gen []byte, sent []*Revocation, dropped []int64) error {
	err := db.update(ctx, func(tx *sql.Tx) error {
		for _, r := range sent {
			var err error
			if slices.Contains(dropped, r.ID) {
				_, err = tx.ExecContext(ctx, `DELETE FROM hub_revocation_tags WHERE seq = ? AND hub_id = ?`, r.Seq, r.ID)
			} else {
				_, err = tx.ExecContext(ctx, `UPDATE hub_revocation_tags SET generation = ? WHERE seq = ? AND hub_id = ?`, gen, r.Seq, r.ID)
			}
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("mark revocations returned: %w", err)
	}
	return nil
}

// noteHubTag keeps, on an appliance, the hub's tag and identity of feed
// revocation r (applied just before, or found already held from the
// feed) and that the feed of generation gen carried it. A revocation this
// appliance made itself gets none: it never hands back its own.
func noteHubTag(ctx context.Context, tx *sql.Tx, r *Revocation, gen []byte) error {
	if len(r.Tag) != RevocationTagSize || r.ID <= 0 || gen == nil {
		return nil
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO hub_revocation_tags (seq, hub_id, tag, generation)
		SELECT seq, ?4, ?5, ?6 FROM revocations WHERE target = ?1 AND kind = ?2 AND before_ms IS ?3 AND origin = ?7
			ORDER BY seq LIMIT 1
		ON CONFLICT (seq) DO UPDATE SET hub_id = excluded.hub_id, tag = excluded.tag, generation = excluded.generation`,
		r.Target, r.Kind, msOrNull(r.Before), r.ID, r.Tag, gen, OriginHub)
	return err
}
