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
// its token for the cookie. Only a hash of the token is stored. It records
// nothing: a login goes through Login.
func (db *DB) CreateSession(ctx context.Context, userID int64, ttl time.Duration) (string, error) {
	token, h, err := newSessionToken()
	if err != nil {
		return "", fmt.Errorf("create session for user %d: %w", userID, err)
	}
	now := db.now()
	err = db.update(ctx, func(tx *sql.Tx) error { return insertSession(ctx, tx, h, userID, ttl, now) })
	if err != nil {
		return "", fmt.Errorf("create session for user %d: %w", userID, err)
	}
	return token, nil
}

// Login is a login whose password was checked.
type Login struct {
	User *User
	Addr string        // the address it came from, for the record
	TTL  time.Duration // how long the session lives without use
	// Previous is a session token the browser sent along ("" for none):
	// it is ended, one browser, one session.
	Previous string
}

// Login ends the browser's previous session, starts a new one for
// l.User and appends the login's audit record, in one transaction: a
// login that cannot be recorded does not happen. It returns the new
// session's token for the cookie.
func (db *DB) Login(ctx context.Context, l Login) (string, error) {
	if l.User == nil {
		return "", fmt.Errorf("login: %w: nil user", ErrInvalid)
	}
	token, h, err := newSessionToken()
	if err != nil {
		return "", fmt.Errorf("login %q: %w", l.User.Username, err)
	}
	now := db.now()
	err = db.update(ctx, func(tx *sql.Tx) error {
		if l.Previous != "" {
			if err := deleteSession(ctx, tx, l.Previous); err != nil {
				return err
			}
		}
		if err := insertSession(ctx, tx, h, l.User.ID, l.TTL, now); err != nil {
			return err
		}
		return appendAudit(ctx, tx, &AuditRecord{
			Actor: l.User.Actor(), Action: AuditLogin, Subject: l.User.Username,
			Detail: AuditDetail(map[string]string{"addr": l.Addr, "outcome": "ok", "role": string(l.User.Role)}),
		}, now)
	})
	if err != nil {
		return "", fmt.Errorf("login %q: %w", l.User.Username, err)
	}
	return token, nil
}

// LoginRefusal is a login attempt that was refused.
type LoginRefusal struct {
	// User is the account the name belongs to, nil for a name that is
	// no account: that name is not kept, since people type their
	// password into the name field and the trail is permanent.
	User    *User
	Addr    string
	Outcome string // why: "unknown_user", "bad_password", "disabled", "throttled"
	Limit   string // for "throttled", the limit that held
}

// RefuseLogin appends the audit record of a refused login. Nothing else
// changes, so the record is the whole transaction.
func (db *DB) RefuseLogin(ctx context.Context, l LoginRefusal) error {
	rec := &AuditRecord{Actor: "anonymous", Action: AuditLoginFailed}
	if l.User != nil {
		rec.Actor, rec.Subject = l.User.Actor(), l.User.Username
	}
	d := map[string]string{"addr": l.Addr, "outcome": l.Outcome}
	if l.Limit != "" {
		d["limit"] = l.Limit
	}
	rec.Detail = AuditDetail(d)
	now := db.now()
	if err := db.update(ctx, func(tx *sql.Tx) error { return appendAudit(ctx, tx, rec, now) }); err != nil {
		return fmt.Errorf("refuse login: %w", err)
	}
	return nil
}

// newSessionToken returns a fresh session token and the hash that is
// stored in its place.
func newSessionToken() (string, [sha256.Size]byte, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", [sha256.Size]byte{}, err
	}
	token := base64.RawURLEncoding.EncodeToString(b)
	return token, sha256.Sum256([]byte(token)), nil
}

func insertSession(ctx context.Context, tx *sql.Tx, h [sha256.Size]byte, userID int64, ttl time.Duration, now time.Time) error {
	_, err := tx.ExecContext(ctx, `
		INSERT INTO sessions (token_hash, user_id, created_ms, expires_ms, last_seen_ms)
		VALUES (?, ?, ?, ?, ?)`, h[:], userID, now.UnixMilli(), now.Add(ttl).UnixMilli(), now.UnixMilli())
	return mapErr(err)
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
	return db.update(ctx, func(tx *sql.Tx) error { return deleteSession(ctx, tx, token) })
}

func deleteSession(ctx context.Context, tx *sql.Tx, token string) error {
	h := sha256.Sum256([]byte(token))
	_, err := tx.ExecContext(ctx, `DELETE FROM sessions WHERE token_hash = ?`, h[:])
	return err
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
