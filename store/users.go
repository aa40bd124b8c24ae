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

// CreateUser stores a user made by actor and its audit record in one
// transaction, and sets u.ID and u.CreatedAt; ErrConflict for a taken
// username (compared case-insensitively). PasswordHash must come from
// HashPassword.
func (db *DB) CreateUser(ctx context.Context, u *User, actor Actor) error {
	if u == nil {
		return fmt.Errorf("create user: %w: nil user", ErrInvalid)
	}
	now := db.now()
	err := db.update(ctx, func(tx *sql.Tx) error {
		if err := createUser(ctx, tx, u, now); err != nil {
			return err
		}
		return appendAudit(ctx, tx, &AuditRecord{Actor: actor, Action: AuditUserCreated, Subject: u.Username,
			Detail: AuditDetail(map[string]string{"role": string(u.Role)})}, now)
	})
	if err != nil {
		return fmt.Errorf("create user %q: %w", u.Username, err)
	}
	return nil
}

// ErrLastAdmin is returned when a change would leave no enabled admin:
// nobody could then manage accounts without the command line.
var ErrLastAdmin = fmt.Errorf("%w: the last enabled admin cannot be disabled or lose the admin role", ErrConflict)

const userColumns = `id, username, role, password_hash, created_ms, disabled_ms`

// scanUser reads a row of userColumns.
func scanUser(row interface{ Scan(...any) error }) (*User, error) {
	var u User
	var created int64
	var disabled sql.NullInt64
	if err := row.Scan(&u.ID, &u.Username, &u.Role, &u.PasswordHash, &created, &disabled); err != nil {
		return nil, err
	}
	u.CreatedAt, u.DisabledAt = time.UnixMilli(created), timeOrZero(disabled)
	return &u, nil
}

// FindUserByName returns a user or ErrNotFound. The name is compared
// case-insensitively.
func (db *DB) FindUserByName(ctx context.Context, name string) (*User, error) {
	var u *User
	err := db.view(ctx, func(tx *sql.Tx) error {
		var err error
		u, err = scanUser(tx.QueryRowContext(ctx, `SELECT `+userColumns+` FROM users WHERE username = ?`, name))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("find user %q: %w", name, mapErr(err))
	}
	return u, nil
}

// FindUserByID returns a user or ErrNotFound.
func (db *DB) FindUserByID(ctx context.Context, id int64) (*User, error) {
	var u *User
	err := db.view(ctx, func(tx *sql.Tx) error {
		var err error
		u, err = findUser(ctx, tx, id)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("find user %d: %w", id, err)
	}
	return u, nil
}

// findUser reads user id in tx; ErrNotFound for none.
func findUser(ctx context.Context, tx *sql.Tx, id int64) (*User, error) {
	u, err := scanUser(tx.QueryRowContext(ctx, `SELECT `+userColumns+` FROM users WHERE id = ?`, id))
	return u, mapErr(err)
}

// FindUsers returns every user, disabled ones included, ordered by name
// (case-insensitively). An appliance has a handful of accounts, so there
// is no paging.
func (db *DB) FindUsers(ctx context.Context) ([]*User, error) {
	var us []*User
	err := db.view(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT `+userColumns+` FROM users ORDER BY username, id`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			u, err := scanUser(rows)
			if err != nil {
				return err
			}
			us = append(us, u)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("find users: %w", err)
	}
	return us, nil
}

// UpdateUserRole changes a user's role and records who did it, in one
// transaction; ErrNotFound for an unknown user, ErrInvalid for an unknown
// role, ErrLastAdmin when it would demote the last enabled admin.
// Sessions stay: they read the role afresh on every request, so the
// change applies at once.
func (db *DB) UpdateUserRole(ctx context.Context, id int64, role UserRole, actor Actor) error {
	if !ValidRole(role) {
		return fmt.Errorf("update role of user %d: %w: role %q", id, ErrInvalid, role)
	}
	now := db.now()
	err := db.update(ctx, func(tx *sql.Tx) error {
		u, err := findUser(ctx, tx, id)
		if err != nil {
			return err
		}
		if role != UserAdmin {
			if err := keepAnAdmin(ctx, tx, id); err != nil {
				return err
			}
		}
		if err := execOne(ctx, tx, `UPDATE users SET role = ? WHERE id = ?`, role, id); err != nil {
			return err
		}
		return auditUser(ctx, tx, actor, AuditUserRole, u.Username, map[string]string{"old": string(u.Role), "new": string(role)}, now)
	})
	if err != nil {
		return fmt.Errorf("update role of user %d: %w", id, err)
	}
	return nil
}

// DisableUser stops a user from logging in, ends all their sessions and
// records who did it, in one transaction, so that no request is served
// for them after it returns. Disabling a disabled user keeps the first
// date. ErrNotFound for an unknown user, ErrLastAdmin for the last
// enabled admin.
func (db *DB) DisableUser(ctx context.Context, id int64, actor Actor) error {
	now := db.now()
	err := db.update(ctx, func(tx *sql.Tx) error {
		u, err := findUser(ctx, tx, id)
		if err != nil {
			return err
		}
		if err := keepAnAdmin(ctx, tx, id); err != nil {
			return err
		}
		if err := execOne(ctx, tx, `UPDATE users SET disabled_ms = COALESCE(disabled_ms, ?) WHERE id = ?`, now.UnixMilli(), id); err != nil {
			return err
		}
		if err := deleteUserSessions(ctx, tx, id); err != nil {
			return err
		}
		return auditUser(ctx, tx, actor, AuditUserDisabled, u.Username, nil, now)
	})
	if err != nil {
		return fmt.Errorf("disable user %d: %w", id, err)
	}
	return nil
}

// EnableUser lets a disabled user log in again and records who did it;
// ErrNotFound for an unknown user. Enabling an enabled user changes
// nothing but is recorded all the same: someone asked for it.
func (db *DB) EnableUser(ctx context.Context, id int64, actor Actor) error {
	now := db.now()
	err := db.update(ctx, func(tx *sql.Tx) error {
		u, err := findUser(ctx, tx, id)
		if err != nil {
			return err
		}
		if err := execOne(ctx, tx, `UPDATE users SET disabled_ms = NULL WHERE id = ?`, id); err != nil {
			return err
		}
		return auditUser(ctx, tx, actor, AuditUserEnabled, u.Username, nil, now)
	})
	if err != nil {
		return fmt.Errorf("enable user %d: %w", id, err)
	}
	return nil
}

// SetPassword replaces a user's password hash (from HashPassword), ends
// all their sessions and records who did it, in one transaction: whoever
// knew the old password is logged out too. generated says whether the
// password was made up by the appliance; the record never holds the
// password nor its hash. ErrNotFound for an unknown user.
func (db *DB) SetPassword(ctx context.Context, id int64, hash string, actor Actor, generated bool) error {
	if !strings.HasPrefix(hash, "$argon2id$") {
		return fmt.Errorf("set password of user %d: %w: password hash is not an argon2id PHC string", id, ErrInvalid)
	}
	now := db.now()
	err := db.update(ctx, func(tx *sql.Tx) error {
		u, err := findUser(ctx, tx, id)
		if err != nil {
			return err
		}
		if err := execOne(ctx, tx, `UPDATE users SET password_hash = ? WHERE id = ?`, hash, id); err != nil {
			return err
		}
		if err := deleteUserSessions(ctx, tx, id); err != nil {
			return err
		}
		return auditUser(ctx, tx, actor, AuditUserPassword, u.Username, map[string]bool{"generated": generated}, now)
	})
	if err != nil {
		return fmt.Errorf("set password of user %d: %w", id, err)
	}
	return nil
}

// auditUser appends the record of a change actor made to the account
// username, inside the change's transaction.
func auditUser(ctx context.Context, tx *sql.Tx, actor Actor, action, username string, detail any, now time.Time) error {
	rec := &AuditRecord{Actor: actor, Action: action, Subject: username}
	if detail != nil {
		rec.Detail = AuditDetail(detail)
	}
	return appendAudit(ctx, tx, rec, now)
}

// keepAnAdmin returns ErrLastAdmin if user id is the only enabled admin,
// so that disabling or demoting it would lock everyone out of the admin
// pages.
func keepAnAdmin(ctx context.Context, tx *sql.Tx, id int64) error {
	var others int
	var isAdmin bool
	err := tx.QueryRowContext(ctx, `
		SELECT
			(SELECT COUNT(*) FROM users WHERE role = 'admin' AND disabled_ms IS NULL AND id <> ?1),
			EXISTS (SELECT 1 FROM users WHERE id = ?1 AND role = 'admin' AND disabled_ms IS NULL)`, id).
		Scan(&others, &isAdmin)
	if err != nil {
		return err
	}
	if isAdmin && others == 0 {
		return ErrLastAdmin
	}
	return nil
}

// execOne runs a statement that must change exactly one row: none is
// ErrNotFound.
func execOne(ctx context.Context, tx *sql.Tx, query string, args ...any) error {
	res, err := tx.ExecContext(ctx, query, args...)
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
	return nil
}

func createUser(ctx context.Context, tx *sql.Tx, u *User, now time.Time) error {
	if err := checkName(u.Username); err != nil {
		return fmt.Errorf("username: %w", err)
	}
	if !ValidRole(u.Role) {
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
