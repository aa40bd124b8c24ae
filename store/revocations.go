package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"passgate/pass"
)

// maxReasonLen bounds free-text reasons.
const maxReasonLen = 500

// CreateRevocation appends a revocation and sets r.Seq and r.At. Target
// must be a subject (16 bytes), a pass ID (12) or a key ID (8) according
// to r.Kind. Before applies to subject revocations only and defaults to
// now.
func (db *DB) CreateRevocation(ctx context.Context, r *Revocation) error {
	if r == nil {
		return fmt.Errorf("create revocation: %w: nil revocation", ErrInvalid)
	}
	now := db.now()
	err := db.update(ctx, func(tx *sql.Tx) error {
		return createRevocation(ctx, tx, r, now)
	})
	if err != nil {
		return fmt.Errorf("create revocation of %x: %w", r.Target, err)
	}
	return nil
}

// RevocationsSince returns revocations with Seq > seq, in Seq order.
func (db *DB) RevocationsSince(ctx context.Context, seq int64) ([]*Revocation, error) {
	var list []*Revocation
	err := db.view(ctx, func(tx *sql.Tx) error {
		var err error
		list, err = queryRevocations(ctx, tx, `
			SELECT seq, kind, target, before_ms, reason, at_ms
			FROM revocations WHERE seq > ? ORDER BY seq`, seq)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("find revocations since %d: %w", seq, err)
	}
	return list, nil
}

// queryRevocations runs query, which selects seq, kind, target,
// before_ms, reason and at_ms, and reads its rows.
func queryRevocations(ctx context.Context, tx *sql.Tx, query string, args ...any) ([]*Revocation, error) {
	rows, err := tx.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var list []*Revocation
	for rows.Next() {
		r := &Revocation{}
		if err := scanRevocation(rows, r); err != nil {
			return nil, err
		}
		list = append(list, r)
	}
	return list, rows.Err()
}

// scanRevocation reads a row of seq, kind, target, before_ms, reason,
// at_ms and then extra into r.
func scanRevocation(rows rowScanner, r *Revocation, extra ...any) error {
	var before sql.NullInt64
	var at int64
	if err := rows.Scan(append([]any{&r.Seq, &r.Kind, &r.Target, &before, &r.Reason, &at}, extra...)...); err != nil {
		return err
	}
	r.Before, r.At = timeOrZero(before), time.UnixMilli(at)
	return nil
}

func createRevocation(ctx context.Context, tx *sql.Tx, r *Revocation, now time.Time) error {
	var want int
	switch r.Kind {
	case RevokeSubject:
		want = 16
		if r.Before.IsZero() {
			r.Before = now
		}
		r.Before = truncMS(r.Before)
	case RevokePass:
		want = 12
	case RevokeIssuer:
		want = 8
	default:
		return fmt.Errorf("%w: revocation kind %d", ErrInvalid, r.Kind)
	}
	switch {
	case len(r.Target) != want:
		return fmt.Errorf("%w: revocation target is %d bytes, want %d", ErrInvalid, len(r.Target), want)
	case r.Kind != RevokeSubject && !r.Before.IsZero():
		return fmt.Errorf("%w: only subject revocations have a before time", ErrInvalid)
	case len(r.Reason) > maxReasonLen:
		return fmt.Errorf("%w: reason longer than %d bytes", ErrInvalid, maxReasonLen)
	}
	if r.Kind == RevokeIssuer {
		// A root is replaced by a rotation, never revoked: a revoked root
		// would void every pass of its district on every gate.
		if root, err := isRootKey(ctx, tx, r.Target); err != nil {
			return err
		} else if root {
			return fmt.Errorf("%w: key %x is a district root; roots are rotated, not revoked", ErrInvalid, r.Target)
		}
	}
	r.At = now
	res, err := tx.ExecContext(ctx, `
		INSERT INTO revocations (kind, target, before_ms, reason, at_ms)
		VALUES (?, ?, ?, ?, ?)`,
		r.Kind, r.Target, msOrNull(r.Before), r.Reason, now.UnixMilli())
	if err != nil {
		return mapErr(err)
	}
	r.Seq, err = res.LastInsertId()
	return err
}

// nextCutoff is the Before of a new subject revocation made at now, when
// the subject's latest cutoff is prev. Pass issue times have one-second
// resolution, and a subject revocation voids passes issued strictly before
// its cutoff: rounding now up to the next whole second voids every pass
// issued up to now, and keeping each cutoff at least a second past the
// previous one voids a pass issued between two status changes in the same
// second. Issuers date new passes at the cutoff at the earliest
// (SubjectCutoff), so a pass issued after the change is valid.
func nextCutoff(now, prev time.Time) time.Time {
	c := now.Truncate(time.Second)
	if c.Before(now) {
		c = c.Add(time.Second)
	}
	if !prev.IsZero() && !c.After(prev) {
		c = prev.Truncate(time.Second).Add(time.Second)
	}
	return c
}

// SubjectCutoff returns the latest cutoff of the subject's revocations:
// passes of the subject issued before it are void. It is zero when the
// subject was never revoked.
func (db *DB) SubjectCutoff(ctx context.Context, s pass.Subject) (time.Time, error) {
	var t time.Time
	err := db.view(ctx, func(tx *sql.Tx) error {
		var err error
		t, err = subjectCutoff(ctx, tx, s)
		return err
	})
	if err != nil {
		return time.Time{}, fmt.Errorf("find revocation cutoff of %x: %w", s[:], err)
	}
	return t, nil
}

func subjectCutoff(ctx context.Context, tx *sql.Tx, s pass.Subject) (time.Time, error) {
	var ms sql.NullInt64
	err := tx.QueryRowContext(ctx, `
		SELECT max(before_ms) FROM revocations WHERE target = ? AND kind = ?`,
		s[:], RevokeSubject).Scan(&ms)
	if err != nil || !ms.Valid {
		return time.Time{}, err
	}
	return time.UnixMilli(ms.Int64), nil
}

// StatusChangedElsewhere returns the latest revocation of s's passes made
// elsewhere in the district (pulled from the hub: a status change at the
// hub or at another appliance) after the last status change recorded
// here, or nil if there is none. This appliance's register then holds a
// colour the district has since changed: issuing from it would hand out a
// valid pass in the old colour.
func (db *DB) StatusChangedElsewhere(ctx context.Context, s pass.Subject) (*Revocation, error) {
	r, err := statusChangedElsewhere(ctx, db.r, s)
	if err != nil {
		return nil, fmt.Errorf("status changed elsewhere: %w", err)
	}
	return r, nil
}

// rowQuerier is a *sql.DB or a *sql.Tx: a lookup made on every issue
// runs in the issuing transaction, or on the read pool without one.
type rowQuerier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func statusChangedElsewhere(ctx context.Context, q rowQuerier, s pass.Subject) (*Revocation, error) {
	r := &Revocation{Kind: RevokeSubject, Target: s[:]}
	var at, before int64
	err := q.QueryRowContext(ctx, `SELECT seq, at_ms, reason, before_ms FROM revocations
		WHERE target = ?1 AND kind = 1 AND origin <> ''
			AND at_ms > coalesce((SELECT max(at_ms) FROM status_changes WHERE subject = ?1), 0)
		ORDER BY seq DESC LIMIT 1`, s[:]).Scan(&r.Seq, &at, &r.Reason, &before)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	r.At, r.Before = time.UnixMilli(at), time.UnixMilli(before)
	return r, nil
}

// numberRevocationsOnOpen moves the numbering of a hub's (or standalone
// district's) revocations past the current time in microseconds. Its
// appliances pull revocations after the last number they hold; a hub
// restored from a backup would number new revocations from the backup's
// last one, numbers its appliances may have pulled past already, and they
// would never get them. It cannot tell a restored copy (so it runs on
// every Open), and no earlier run of the file handed out more numbers
// than microseconds passed since it started. For the same reason every
// open draws a new feed generation (generation.go): appliances then read
// the whole feed again. An enrolled appliance's own list is numbered
// locally and pulled by no one: it is left alone.
func (db *DB) numberRevocationsOnOpen(ctx context.Context) error {
	floor := db.now().UnixMicro()
	err := db.update(ctx, func(tx *sql.Tx) error {
		var enrolled bool
		if err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM sync_hub)`).Scan(&enrolled); err != nil || enrolled {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO sqlite_sequence (name, seq) SELECT 'revocations', ?1
			WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'revocations')`, floor); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE sqlite_sequence SET seq = max(seq, ?) WHERE name = 'revocations'`, floor); err != nil {
			return err
		}
		gen, err := newGenerationOnOpen(ctx, tx, db.now())
		db.generation = gen
		return err
	})
	if err != nil {
		return fmt.Errorf("number revocations: %w", err)
	}
	return nil
}
