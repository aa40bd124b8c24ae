package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"passgate/pass"
)

// CreatePass records an issued pass. IssuedAt defaults to now. The subject
// must be registered and the key stored (ErrNotFound otherwise);
// ErrConflict if the pass ID is already recorded.
func (db *DB) CreatePass(ctx context.Context, p *IssuedPass) error {
	if p == nil {
		return fmt.Errorf("create pass: %w: nil pass", ErrInvalid)
	}
	now := db.now()
	err := db.update(ctx, func(tx *sql.Tx) error {
		aw, err := newAuditWriter(ctx, tx, false)
		if err != nil {
			return err
		}
		if err := createPass(ctx, tx, aw, p, now); err != nil {
			return err
		}
		return aw.close(ctx)
	})
	if err != nil {
		return fmt.Errorf("create pass %x: %w", p.ID[:], err)
	}
	return nil
}

// FindPass returns an issued pass or ErrNotFound.
func (db *DB) FindPass(ctx context.Context, id pass.ID) (*IssuedPass, error) {
	var p *IssuedPass
	err := db.view(ctx, func(tx *sql.Tx) (err error) {
		p, err = findPass(ctx, tx, id)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("find pass %x: %w", id[:], err)
	}
	return p, nil
}

// createPass inserts p and appends its pass_issued record through aw.
func createPass(ctx context.Context, tx *sql.Tx, aw *auditWriter, p *IssuedPass, now time.Time) error {
	if p.IssuedAt.IsZero() {
		p.IssuedAt = now
	}
	p.IssuedAt, p.ExpiresAt = truncMS(p.IssuedAt), truncMS(p.ExpiresAt)
	switch {
	case p.ID.IsZero():
		return fmt.Errorf("%w: zero pass id", ErrInvalid)
	case p.Subject.IsZero():
		return fmt.Errorf("%w: zero subject", ErrInvalid)
	case p.KID == pass.KeyID{}:
		return fmt.Errorf("%w: zero key id", ErrInvalid)
	case p.Kind != pass.Phone && p.Kind != pass.Paper:
		return fmt.Errorf("%w: pass kind %d", ErrInvalid, uint8(p.Kind))
	case !validColor(p.Color):
		return fmt.Errorf("%w: colour %d", ErrInvalid, uint8(p.Color))
	case !p.ExpiresAt.After(p.IssuedAt):
		return fmt.Errorf("%w: pass expires before it is issued", ErrInvalid)
	case p.Actor == "":
		return fmt.Errorf("%w: no actor", ErrInvalid)
	}
	_, err := tx.ExecContext(ctx, `
		INSERT INTO passes (id, subject, kid, kind, color, issued_ms, expires_ms, actor)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		p.ID[:], p.Subject[:], p.KID[:], int64(p.Kind), int64(p.Color),
		p.IssuedAt.UnixMilli(), p.ExpiresAt.UnixMilli(), p.Actor)
	if err != nil {
		return mapErr(err)
	}
	// Audited in the same transaction: a pass is never on record without
	// its audit entry, nor the entry without the pass.
	return aw.append(ctx, &AuditRecord{
		At: now, Actor: p.Actor, Action: AuditPassIssued, Subject: fmt.Sprintf("%x", p.ID[:]),
		Detail: AuditDetail(map[string]any{
			"subject": fmt.Sprintf("%x", p.Subject[:]), "kid": fmt.Sprintf("%x", p.KID[:]),
			"kind": p.Kind.String(), "color": p.Color.String(),
			"issued_ms": p.IssuedAt.UnixMilli(), "expires_ms": p.ExpiresAt.UnixMilli(),
		}),
	}, now)
}

func findPass(ctx context.Context, tx *sql.Tx, id pass.ID) (*IssuedPass, error) {
	p := &IssuedPass{ID: id}
	var subject, kid []byte
	var kind, color, issued, expires int64
	err := tx.QueryRowContext(ctx, `
		SELECT subject, kid, kind, color, issued_ms, expires_ms, actor
		FROM passes WHERE id = ?`, id[:]).
		Scan(&subject, &kid, &kind, &color, &issued, &expires, &p.Actor)
	if err != nil {
		return nil, mapErr(err)
	}
	if err := copyID(p.Subject[:], subject); err != nil {
		return nil, err
	}
	if err := copyID(p.KID[:], kid); err != nil {
		return nil, err
	}
	p.Kind, p.Color = pass.Kind(kind), pass.Color(color)
	p.IssuedAt, p.ExpiresAt = time.UnixMilli(issued), time.UnixMilli(expires)
	return p, nil
}

// PurgePasses deletes the records of passes that expired before
// expiredBefore (a pass expiring exactly then is kept), in transactions
// of at most batch rows, sized and spaced by a purgePacer so the scan
// writer is never held up for long,
// and records the purge in the audit trail (subject "passes", with the
// row count and the boundary). It returns how many records were deleted.
//
// Nothing refers to a pass row: scans and revocations hold the pass ID
// without a foreign key, and the pass_issued audit record keeps its own
// copy of the pass, so both stay as they are (each under its own
// retention). An export snapshot taken before the purge still sees the
// rows it counted.
func (db *DB) PurgePasses(ctx context.Context, expiredBefore time.Time, batch int, actor Actor) (int64, error) {
	if actor == "" {
		return 0, fmt.Errorf("purge passes: %w: no actor", ErrInvalid)
	}
	if batch <= 0 {
		batch = 1000
	}
	cutoff := expiredBefore.UnixMilli()
	// passes has no index on expires_ms (the schema is fixed). Rather than
	// have each batch scan the table inside the writer's transaction, the
	// read pool walks the primary key once, from a cursor, collecting
	// expired IDs; the writer then deletes just those by key. The zero ID
	// sorts before every stored one (CreatePass refuses it).
	after := make([]byte, len(pass.ID{}))
	var total int64
	var err error
	pace := newPurgePacer(batch)
	for ctx.Err() == nil {
		var ids [][]byte
		ids, err = db.expiredPasses(ctx, after, cutoff, pace.size)
		if err != nil || len(ids) == 0 {
			break
		}
		var n int64
		start := time.Now()
		err = db.update(ctx, func(tx *sql.Tx) error {
			st, err := tx.PrepareContext(ctx, `DELETE FROM passes WHERE id = ? AND expires_ms < ?`)
			if err != nil {
				return err
			}
			defer st.Close()
			for _, id := range ids {
				res, err := st.ExecContext(ctx, id, cutoff)
				if err != nil {
					return mapErr(err)
				}
				k, err := res.RowsAffected()
				if err != nil {
					return err
				}
				n += k
			}
			return nil
		})
		if err != nil {
			break
		}
		total += n
		after = ids[len(ids)-1]
		if len(ids) < pace.size {
			break
		}
		if err = pace.next(ctx, time.Since(start)); err != nil {
			break
		}
	}
	if err == nil {
		err = ctx.Err()
	}
	if aerr := db.auditPurged(ctx, actor, "passes", map[string]any{
		"kind": "passes", "expired_before_ms": cutoff, "rows": total}, total); aerr != nil {
		return total, fmt.Errorf("purge passes: %w", errors.Join(err, aerr))
	}
	if err != nil {
		return total, fmt.Errorf("purge passes expired before %s: %w", expiredBefore.Format(time.RFC3339), err)
	}
	return total, nil
}

// expiredPasses returns up to limit IDs, in key order after after, of
// passes that expired before cutoffMS. It reads on the read pool.
func (db *DB) expiredPasses(ctx context.Context, after []byte, cutoffMS int64, limit int) ([][]byte, error) {
	rows, err := db.r.QueryContext(ctx, `
		SELECT id FROM passes WHERE id > ? AND expires_ms < ? ORDER BY id LIMIT ?`,
		after, cutoffMS, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var ids [][]byte
	for rows.Next() {
		var id []byte
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}

// auditPurged appends the purge record for rows deleted from subject,
// if any were. Deleted rows are gone whatever happens next, so the record
// is written even when ctx has just been cancelled (shutdown mid-purge):
// only its deadline-free copy is used.
func (db *DB) auditPurged(ctx context.Context, actor Actor, subject string, detail map[string]any, rows int64) error {
	if rows == 0 {
		return nil
	}
	err := db.Audit(context.WithoutCancel(ctx), &AuditRecord{Actor: actor, Action: AuditPurge,
		Subject: subject, Detail: AuditDetail(detail)})
	if err != nil {
		return fmt.Errorf("audit %s purge: %w", subject, err)
	}
	return nil
}
