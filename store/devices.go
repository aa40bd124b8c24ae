package store

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"fmt"
	"strings"
	"time"
)

// Device tokens are "pgd_" and 32 random bytes in unpadded base64url. The
// prefix lets secret scanners and people recognise a leaked token; 256
// bits make guessing hopeless, so a plain SHA-256 (not a slow password
// hash) is enough to keep the stored form useless to a thief.
const (
	tokenPrefix = "pgd_"
	tokenBytes  = 32
)

// CreateDevice registers a device and returns its bearer token, shown once;
// only a hash of it is stored. ErrConflict for a taken name (names of
// revoked devices stay taken, so scan logs stay unambiguous). A token
// lets its holder log scans: the addition is audited as actor's, in the
// same transaction.
func (db *DB) CreateDevice(ctx context.Context, name string, actor Actor) (*Device, string, error) {
	if err := checkName(name); err != nil {
		return nil, "", fmt.Errorf("create device %q: %w", name, err)
	}
	var secret [tokenBytes]byte
	if _, err := rand.Read(secret[:]); err != nil {
		return nil, "", fmt.Errorf("create device %q: %w", name, err)
	}
	token := tokenPrefix + base64.RawURLEncoding.EncodeToString(secret[:])
	hash := sha256.Sum256([]byte(token))
	d := &Device{Name: name, CreatedAt: db.now()}
	err := db.update(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `
			INSERT INTO devices (name, token_hash, created_ms) VALUES (?, ?, ?)`,
			name, hash[:], d.CreatedAt.UnixMilli())
		if err != nil {
			return mapErr(err)
		}
		if d.ID, err = res.LastInsertId(); err != nil {
			return err
		}
		return appendAudit(ctx, tx, &AuditRecord{Actor: actor, Action: AuditDeviceAdded, Subject: name}, d.CreatedAt)
	})
	if err != nil {
		return nil, "", fmt.Errorf("create device %q: %w", name, err)
	}
	return d, token, nil
}

// FindDeviceByToken returns the unrevoked device owning token, or
// ErrNotFound.
func (db *DB) FindDeviceByToken(ctx context.Context, token string) (*Device, error) {
	// Anything not shaped like a token cannot match: answer without a
	// query, and never echo the token into an error.
	raw, ok := strings.CutPrefix(token, tokenPrefix)
	if !ok || base64.RawURLEncoding.DecodedLen(len(raw)) != tokenBytes {
		return nil, fmt.Errorf("find device by token: %w", ErrNotFound)
	}
	if _, err := base64.RawURLEncoding.DecodeString(raw); err != nil {
		return nil, fmt.Errorf("find device by token: %w", ErrNotFound)
	}
	// The lookup is by hash: timing reveals nothing about the token. It
	// runs on every scanner request, so like LastSeen it is a single
	// prepared SELECT on the read pool without a surrounding transaction
	// (which would cost three times as much).
	hash := sha256.Sum256([]byte(token))
	d, err := scanDevice(db.deviceByToken.QueryRowContext(ctx, hash[:]))
	if err != nil {
		return nil, fmt.Errorf("find device by token: %w", mapErr(err))
	}
	return d, nil
}

// FindDevices lists every device, revoked ones included, by name.
func (db *DB) FindDevices(ctx context.Context) ([]*Device, error) {
	var list []*Device
	err := db.view(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `
			SELECT id, name, created_ms, revoked_ms FROM devices ORDER BY name`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			d, err := scanDevice(rows)
			if err != nil {
				return err
			}
			list = append(list, d)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("find devices: %w", err)
	}
	return list, nil
}

const deviceByTokenSQL = `
	SELECT id, name, created_ms, revoked_ms FROM devices
	WHERE token_hash = ? AND revoked_ms IS NULL`

// RevokeDevice revokes the device called name so that its token stops
// working, audited as actor's; ErrNotFound if there is no such unrevoked
// device.
func (db *DB) RevokeDevice(ctx context.Context, name string, actor Actor) error {
	now := db.now()
	err := db.update(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `
			UPDATE devices SET revoked_ms = ? WHERE name = ? AND revoked_ms IS NULL`,
			now.UnixMilli(), name)
		if err != nil {
			return mapErr(err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		if n == 0 {
			return ErrNotFound
		}
		return appendAudit(ctx, tx, &AuditRecord{Actor: actor, Action: AuditDeviceRevoked, Subject: name}, now)
	})
	if err != nil {
		return fmt.Errorf("revoke device %q: %w", name, err)
	}
	return nil
}

func scanDevice(r rowScanner) (*Device, error) {
	var d Device
	var created int64
	var revoked sql.NullInt64
	if err := r.Scan(&d.ID, &d.Name, &created, &revoked); err != nil {
		return nil, err
	}
	d.CreatedAt, d.RevokedAt = time.UnixMilli(created), timeOrZero(revoked)
	return &d, nil
}
