package store

import (
	"context"
	"database/sql"
	"fmt"
)

// Pools exposes the writer and read pools to the tests.
func (db *DB) Pools() (w, r *sql.DB) { return db.w, db.r }

// ScanQueueLen is how many scans wait for the writer.
func (db *DB) ScanQueueLen() int { return len(db.scans) }

// SchemaSteps is the number of migrations this build knows.
var SchemaSteps = len(migrations)

// ScanCommits is how many group commits succeeded.
func (db *DB) ScanCommits() int64 { return db.scanCommits.Load() }

// LastSeenSQL is the repeat lookup, for plan tests.
var LastSeenSQL = lastSeenSQL

// SchemaVersion returns the schema version recorded in the database file.
func (db *DB) SchemaVersion(ctx context.Context) (int, error) {
	var v int
	if err := db.r.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil {
		return 0, fmt.Errorf("schema version: %w", err)
	}
	return v, nil
}

// Ping checks that the database answers and is writable: it takes and
// releases the write lock on the writer connection (BEGIN IMMEDIATE;
// ROLLBACK), then reads through the read pool. A full disk or a stuck
// lock shows here before a scan fails.
func (db *DB) Ping(ctx context.Context) error {
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("ping writer: %w", err)
	}
	if err := tx.Rollback(); err != nil {
		return fmt.Errorf("ping writer: %w", err)
	}
	var v int
	if err := db.r.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil {
		return fmt.Errorf("ping reader: %w", err)
	}
	return nil
}

// DeleteUserSessions ends every session of a user, e.g. after a password
// change or when the account is disabled.
func (db *DB) DeleteUserSessions(ctx context.Context, userID int64) error {
	return db.update(ctx, func(tx *sql.Tx) error { return deleteUserSessions(ctx, tx, userID) })
}
