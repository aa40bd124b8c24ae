package store

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"
	"unicode"
)

// maxNameLen bounds user and device names: they appear on screens and
// in logs.
const maxNameLen = 64

// CreateUser stores a user and sets u.ID and u.CreatedAt; ErrConflict for
// a taken username (compared case-insensitively). PasswordHash must come
// from HashPassword.
func (db *DB) CreateUser(ctx context.Context, u *User) error {
	if u == nil {
		return fmt.Errorf("create user: %w: nil user", ErrInvalid)
	}
	now := db.now()
	err := db.update(ctx, func(tx *sql.Tx) error {
		return createUser(ctx, tx, u, now)
	})
	if err != nil {
		return fmt.Errorf("create user %q: %w", u.Username, err)
	}
	return nil
}

// FindUserByName returns a user or ErrNotFound. The name is compared
// case-insensitively.
func (db *DB) FindUserByName(ctx context.Context, name string) (*User, error) {
	var u *User
	err := db.view(ctx, func(tx *sql.Tx) error {
		var created int64
		var disabled sql.NullInt64
		u = &User{}
		err := tx.QueryRowContext(ctx, `
			SELECT id, username, role, password_hash, created_ms, disabled_ms
			FROM users WHERE username = ?`, name).
			Scan(&u.ID, &u.Username, &u.Role, &u.PasswordHash, &created, &disabled)
		u.CreatedAt, u.DisabledAt = time.UnixMilli(created), timeOrZero(disabled)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("find user %q: %w", name, mapErr(err))
	}
	return u, nil
}

func createUser(ctx context.Context, tx *sql.Tx, u *User, now time.Time) error {
	if err := checkName(u.Username); err != nil {
		return fmt.Errorf("username: %w", err)
	}
	switch u.Role {
	case UserStaff, UserIssuer, UserAdmin:
	default:
		return fmt.Errorf("%w: user role %q", ErrInvalid, u.Role)
	}
	if !strings.HasPrefix(u.PasswordHash, "$argon2id$") {
		return fmt.Errorf("%w: password hash is not an argon2id PHC string", ErrInvalid)
	}
	u.CreatedAt, u.DisabledAt = now, truncMS(u.DisabledAt)
	res, err := tx.ExecContext(ctx, `
		INSERT INTO users (username, role, password_hash, created_ms, disabled_ms)
		VALUES (?, ?, ?, ?, ?)`,
		u.Username, u.Role, u.PasswordHash, u.CreatedAt.UnixMilli(), msOrNull(u.DisabledAt))
	if err != nil {
		return mapErr(err)
	}
	u.ID, err = res.LastInsertId()
	return err
}

// checkName accepts a user or device name: 1 to maxNameLen bytes, no
// control characters, no surrounding space.
func checkName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("%w: empty name", ErrInvalid)
	case len(name) > maxNameLen:
		return fmt.Errorf("%w: name longer than %d bytes", ErrInvalid, maxNameLen)
	case strings.TrimSpace(name) != name:
		return fmt.Errorf("%w: name %q has surrounding space", ErrInvalid, name)
	case strings.IndexFunc(name, unicode.IsControl) >= 0:
		return fmt.Errorf("%w: name %q has control characters", ErrInvalid, name)
	}
	return nil
}
