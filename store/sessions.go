package store

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"time"
)

// Session is a logged-in browser.
type Session struct {
	UserID    int64
	CreatedAt time.Time
	ExpiresAt time.Time
	LastSeen  time.Time
}

// CreateSession starts a session for user id, valid for ttl, and returns
// its token for the cookie. Only a hash of the token is stored.
func (db *DB) CreateSession(ctx context.Context, userID int64, ttl time.Duration) (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	token := base64.RawURLEncoding.EncodeToString(b)
	h := sha256.Sum256([]byte(token))
	now := db.now()
	err := db.update(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `
			INSERT INTO sessions (token_hash, user_id, created_ms, expires_ms, last_seen_ms)
			VALUES (?, ?, ?, ?, ?)`, h[:], userID, now.UnixMilli(), now.Add(ttl).UnixMilli(), now.UnixMilli())
		return mapErr(err)
	})
	if err != nil {
		return "", fmt.Errorf("create session for user %d: %w", userID, err)
	}
	return token, nil
}

// FindSession returns the unexpired session of token with its user, or
// ErrNotFound. A session of a disabled user is not found.
func (db *DB) FindSession(ctx context.Context, token string) (*Session, *User, error) {
	if token == "" || len(token) > 128 {
		return nil, nil, fmt.Errorf("find session: %w", ErrNotFound)
	}
	h := sha256.Sum256([]byte(token))
	var s Session
	var u User
	var created, expires, seen, ucreated int64
	var disabled sql.NullInt64
	err := db.r.QueryRowContext(ctx, `
		SELECT s.user_id, s.created_ms, s.expires_ms, s.last_seen_ms,
		       u.username, u.role, u.password_hash, u.created_ms, u.disabled_ms
		FROM sessions s JOIN users u ON u.id = s.user_id
		WHERE s.token_hash = ? AND s.expires_ms > ?`, h[:], db.now().UnixMilli()).
		Scan(&s.UserID, &created, &expires, &seen, &u.Username, &u.Role, &u.PasswordHash, &ucreated, &disabled)
	if errors.Is(err, sql.ErrNoRows) || err == nil && disabled.Valid {
		return nil, nil, fmt.Errorf("find session: %w", ErrNotFound)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("find session: %w", err)
	}
	s.CreatedAt, s.ExpiresAt, s.LastSeen = time.UnixMilli(created), time.UnixMilli(expires), time.UnixMilli(seen)
	u.ID, u.CreatedAt = s.UserID, time.UnixMilli(ucreated)
	return &s, &u, nil
}

// TouchSession moves a session's expiry to now+ttl (sliding expiry).
func (db *DB) TouchSession(ctx context.Context, token string, ttl time.Duration) error {
	h := sha256.Sum256([]byte(token))
	now := db.now()
	return db.update(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE sessions SET last_seen_ms = ?, expires_ms = ? WHERE token_hash = ?`,
			now.UnixMilli(), now.Add(ttl).UnixMilli(), h[:])
		return err
	})
}

// DeleteSession ends one session (logout). Ending an unknown session is
// not an error.
func (db *DB) DeleteSession(ctx context.Context, token string) error {
	h := sha256.Sum256([]byte(token))
	return db.update(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM sessions WHERE token_hash = ?`, h[:])
		return err
	})
}

// DeleteUserSessions ends every session of a user, e.g. after a password
// change or when the account is disabled.
func (db *DB) DeleteUserSessions(ctx context.Context, userID int64) error {
	return db.update(ctx, func(tx *sql.Tx) error { return deleteUserSessions(ctx, tx, userID) })
}

func deleteUserSessions(ctx context.Context, tx *sql.Tx, userID int64) error {
	_, err := tx.ExecContext(ctx, `DELETE FROM sessions WHERE user_id = ?`, userID)
	return err
}

// PurgeSessions deletes expired sessions and returns how many.
func (db *DB) PurgeSessions(ctx context.Context) (int64, error) {
	var n int64
	err := db.update(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM sessions WHERE expires_ms <= ?`, db.now().UnixMilli())
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	return n, err
}
