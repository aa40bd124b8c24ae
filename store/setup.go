package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Setup stores a new standalone district in one transaction: the district,
// its root and issuer keys, the first admin and the default policy. It
// fails with ErrConflict if the district exists. It sets the CreatedAt
// fields left zero, the admin's ID, and fills an empty Role on the keys
// and the admin.
func (db *DB) Setup(ctx context.Context, d *District, root, issuer *Key, admin *User) error {
	if d == nil || root == nil || issuer == nil || admin == nil {
		return fmt.Errorf("setup: %w: missing district, key or admin", ErrInvalid)
	}
	now := db.now()
	err := db.update(ctx, func(tx *sql.Tx) error {
		if _, err := findDistrict(ctx, tx); err == nil {
			return fmt.Errorf("district: %w", ErrConflict)
		} else if !errors.Is(err, ErrNotInitialized) {
			return err
		}
		if err := db.createDistrictSealed(ctx, tx, d, now); err != nil {
			return err
		}
		for _, k := range []struct {
			key  *Key
			role string
		}{{root, RoleRoot}, {issuer, RoleIssuer}} {
			if k.key.Role == "" {
				k.key.Role = k.role
			}
			if k.key.Role != k.role {
				return fmt.Errorf("%s key: %w: role %q", k.role, ErrInvalid, k.key.Role)
			}
			if err := db.createKeySealed(ctx, tx, k.key, now); err != nil {
				return fmt.Errorf("%s key: %w", k.role, err)
			}
		}
		if admin.Role == "" {
			admin.Role = UserAdmin
		}
		if admin.Role != UserAdmin {
			return fmt.Errorf("first user: %w: role %q, want %q", ErrInvalid, admin.Role, UserAdmin)
		}
		if err := createUser(ctx, tx, admin, now); err != nil {
			return err
		}
		if err := auditFirstAdmin(ctx, tx, admin, now); err != nil {
			return err
		}
		p := DefaultPolicy()
		return setPolicy(ctx, tx, &p, "setup", now)
	})
	if err != nil {
		return fmt.Errorf("setup district %q: %w", d.ID, err)
	}
	return nil
}

// District returns the district, or ErrNotInitialized.
func (db *DB) District(ctx context.Context) (*District, error) {
	var d *District
	err := db.view(ctx, func(tx *sql.Tx) (err error) {
		if d, err = findDistrict(ctx, tx); err != nil {
			return err
		}
		if err := db.unsealDistrict(ctx, tx, d); err != nil {
			return err
		}
		d.CityPseudonymKey, err = db.cityPseudonymKey(ctx, tx)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("find district: %w", err)
	}
	return d, nil
}

func findDistrict(ctx context.Context, tx *sql.Tx) (*District, error) {
	var d District
	var created int64
	err := tx.QueryRowContext(ctx, `
		SELECT district_id, name, pseudonym_key, appliance, created_ms
		FROM district WHERE id = 1`).
		Scan(&d.ID, &d.Name, &d.PseudonymKey, &d.Appliance, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotInitialized
	}
	if err != nil {
		return nil, err
	}
	d.CreatedAt = time.UnixMilli(created)
	return &d, nil
}

func createDistrict(ctx context.Context, tx *sql.Tx, d *District, now time.Time) error {
	if d.ID == "" {
		return fmt.Errorf("district: %w: empty id", ErrInvalid)
	}
	// The pseudonym key is the HMAC key of every subject in the district;
	// a gate holds none (SetupEnrolled).
	var key any
	switch len(d.PseudonymKey) {
	case 0:
	case 32:
		key = d.PseudonymKey
	default:
		return fmt.Errorf("district: %w: pseudonym key is %d bytes, want 32", ErrInvalid, len(d.PseudonymKey))
	}
	if d.CreatedAt.IsZero() {
		d.CreatedAt = now
	}
	d.CreatedAt = truncMS(d.CreatedAt)
	_, err := tx.ExecContext(ctx, `
		INSERT INTO district (id, district_id, name, pseudonym_key, appliance, created_ms)
		VALUES (1, ?, ?, ?, ?, ?)`,
		d.ID, d.Name, key, d.Appliance, d.CreatedAt.UnixMilli())
	if err != nil {
		return fmt.Errorf("district: %w", mapErr(err))
	}
	return nil
}
