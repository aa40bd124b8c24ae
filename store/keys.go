package store

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"passgate/pass"
)

// CreateKey stores a key (e.g. a trusted foreign root). It sets
// k.CreatedAt if zero; ErrConflict if the key ID is already stored.
func (db *DB) CreateKey(ctx context.Context, k *Key) error {
	if k == nil {
		return fmt.Errorf("create key: %w: nil key", ErrInvalid)
	}
	now := db.now()
	err := db.update(ctx, func(tx *sql.Tx) error {
		return db.createKeySealed(ctx, tx, k, now)
	})
	if err != nil {
		return fmt.Errorf("create key %x: %w", k.KID[:], err)
	}
	return nil
}

// FindKeys lists keys matching f, oldest first.
func (db *DB) FindKeys(ctx context.Context, f KeyFilter) ([]*Key, error) {
	var keys []*Key
	err := db.view(ctx, func(tx *sql.Tx) (err error) {
		if keys, err = findKeys(ctx, tx, f); err != nil {
			return err
		}
		return db.unsealKeys(keys...)
	})
	if err != nil {
		return nil, fmt.Errorf("find keys: %w", err)
	}
	return keys, nil
}

// SigningKey returns the newest unrevoked issuer key whose private half is
// held here, or ErrNotFound. A key valid now is preferred to one outside
// its validity; the latter is still returned rather than nothing, so that
// a clock set wrong shows up as passes that fail to verify (visible at
// the desk) instead of an appliance that cannot issue at all.
func (db *DB) SigningKey(ctx context.Context) (*Key, error) {
	now := db.now().UnixMilli()
	var k *Key
	err := db.view(ctx, func(tx *sql.Tx) error {
		row := tx.QueryRowContext(ctx, `SELECT `+keyColumns+` FROM keys
			WHERE role = 'issuer' AND private IS NOT NULL AND revoked_ms IS NULL
			ORDER BY (coalesce(not_before_ms <= ?, 1) AND coalesce(not_after_ms > ?, 1)) DESC,
				created_ms DESC, rowid DESC
			LIMIT 1`, now, now)
		var err error
		if k, err = scanKey(row); err != nil {
			return err
		}
		return db.unsealKeys(k)
	})
	if err != nil {
		return nil, fmt.Errorf("find signing key: %w", mapErr(err))
	}
	return k, nil
}

const keyColumns = `kid, role, alg, public, private, cert, district,
	not_before_ms, not_after_ms, created_ms, revoked_ms, rotation`

func createKey(ctx context.Context, tx *sql.Tx, k *Key, now time.Time) error {
	switch {
	case k.KID == pass.KeyID{}:
		return fmt.Errorf("%w: zero key id", ErrInvalid)
	case k.Role != RoleRoot && k.Role != RoleIssuer:
		return fmt.Errorf("%w: key role %q", ErrInvalid, k.Role)
	case k.Alg != pass.AlgEdDSA && k.Alg != pass.AlgES256:
		return fmt.Errorf("%w: key algorithm %d", ErrInvalid, int(k.Alg))
	case len(k.Public) == 0:
		return fmt.Errorf("%w: empty public key", ErrInvalid)
	case k.District == "":
		return fmt.Errorf("%w: key without district", ErrInvalid)
	case !k.NotBefore.IsZero() && !k.NotAfter.IsZero() && !k.NotAfter.After(k.NotBefore):
		return fmt.Errorf("%w: key validity ends before it starts", ErrInvalid)
	}
	if k.CreatedAt.IsZero() {
		k.CreatedAt = now
	}
	k.CreatedAt = truncMS(k.CreatedAt)
	k.NotBefore, k.NotAfter, k.RevokedAt = truncMS(k.NotBefore), truncMS(k.NotAfter), truncMS(k.RevokedAt)
	_, err := tx.ExecContext(ctx, `INSERT INTO keys (`+keyColumns+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		k.KID[:], k.Role, int64(k.Alg), k.Public, nilIfEmpty(k.Private), nilIfEmpty(k.Cert), k.District,
		msOrNull(k.NotBefore), msOrNull(k.NotAfter), k.CreatedAt.UnixMilli(), msOrNull(k.RevokedAt), nilIfEmpty(k.Rotation))
	return mapErr(err)
}

func findKeys(ctx context.Context, tx *sql.Tx, f KeyFilter) ([]*Key, error) {
	var where []string
	var args []any
	if f.Role != "" {
		where, args = append(where, "role = ?"), append(args, f.Role)
	}
	if f.HasPrivate {
		where = append(where, "private IS NOT NULL")
	}
	q := `SELECT ` + keyColumns + ` FROM keys`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY created_ms, kid"
	rows, err := tx.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var keys []*Key
	for rows.Next() {
		k, err := scanKey(rows)
		if err != nil {
			return nil, err
		}
		keys = append(keys, k)
	}
	return keys, rows.Err()
}

// rowScanner is *sql.Row or *sql.Rows.
type rowScanner interface{ Scan(dest ...any) error }

func scanKey(r rowScanner) (*Key, error) {
	var k Key
	var kid []byte
	var alg, created int64
	var notBefore, notAfter, revoked sql.NullInt64
	if err := r.Scan(&kid, &k.Role, &alg, &k.Public, &k.Private, &k.Cert, &k.District,
		&notBefore, &notAfter, &created, &revoked, &k.Rotation); err != nil {
		return nil, err
	}
	if err := copyID(k.KID[:], kid); err != nil {
		return nil, err
	}
	k.Alg = pass.Alg(alg)
	k.NotBefore, k.NotAfter = timeOrZero(notBefore), timeOrZero(notAfter)
	k.CreatedAt, k.RevokedAt = time.UnixMilli(created), timeOrZero(revoked)
	return &k, nil
}

// copyID fills a fixed-size identifier from a column; NULL leaves it zero.
func copyID(dst, src []byte) error {
	if src == nil {
		return nil
	}
	if len(src) != len(dst) {
		return fmt.Errorf("stored identifier is %d bytes, want %d", len(src), len(dst))
	}
	copy(dst, src)
	return nil
}

// nilIfEmpty stores an absent optional blob as NULL.
func nilIfEmpty(b []byte) any {
	if len(b) == 0 {
		return nil
	}
	return b
}
