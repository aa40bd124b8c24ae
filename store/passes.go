package store

import (
	"context"
	"database/sql"
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
