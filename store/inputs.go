package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// Input is a scanner input configured by an admin.
type Input struct {
	Name      string
	Kind      string // "serial" or "evdev"
	Spec      string // device path and options, as on the command line
	CreatedAt time.Time
	Actor     Actor
}

// CreateInput stores an input; ErrConflict for a taken name.
func (db *DB) CreateInput(ctx context.Context, in *Input) error {
	if in.Actor == "" {
		return fmt.Errorf("create input %q: %w: no actor", in.Name, ErrInvalid)
	}
	in.CreatedAt = db.now()
	err := db.update(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO inputs (name, kind, spec, created_ms, actor) VALUES (?, ?, ?, ?, ?)`,
			in.Name, in.Kind, in.Spec, in.CreatedAt.UnixMilli(), in.Actor)
		return mapErr(err)
	})
	if err != nil {
		return fmt.Errorf("create input %q: %w", in.Name, err)
	}
	return nil
}

// DeleteInput removes an input; ErrNotFound if there is none by that name.
func (db *DB) DeleteInput(ctx context.Context, name string) error {
	err := db.update(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM inputs WHERE name = ?`, name)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return ErrNotFound
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("delete input %q: %w", name, err)
	}
	return nil
}

// FindInputs lists the configured inputs by name.
func (db *DB) FindInputs(ctx context.Context) ([]*Input, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT name, kind, spec, created_ms, actor FROM inputs ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("find inputs: %w", err)
	}
	defer rows.Close()
	var out []*Input
	for rows.Next() {
		in := &Input{}
		var ms int64
		if err := rows.Scan(&in.Name, &in.Kind, &in.Spec, &ms, &in.Actor); err != nil {
			return nil, fmt.Errorf("find inputs: %w", err)
		}
		in.CreatedAt = time.UnixMilli(ms)
		out = append(out, in)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("find inputs: %w", err)
	}
	return out, nil
}
