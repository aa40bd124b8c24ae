package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// Backup writes a consistent copy of the database to path while the
// appliance keeps running: VACUUM INTO reads one snapshot through a read
// connection, so checks and scan logging go on meanwhile, and the copy is
// compact and self-contained (no WAL beside it). path must not exist. The
// copy is checked with integrity_check before Backup returns; a copy that
// fails is removed.
//
// A restored copy is safe for district sync: the store starts a new
// epoch when it is opened, so records written after the restore are
// never taken by the hub for the ones it already holds.
func (db *DB) Backup(ctx context.Context, path string) (err error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	if abs == db.path {
		return fmt.Errorf("backup: %w: the copy cannot replace the database itself", ErrInvalid)
	}
	if _, err := os.Lstat(abs); err == nil {
		return fmt.Errorf("backup: %w: %s exists", ErrConflict, abs)
	} else if !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("backup: %w", err)
	}
	defer func() {
		if err != nil {
			os.Remove(abs)
		}
	}()
	// Its own connection: the read pool's are query_only, which refuses
	// VACUUM INTO, and the writer's would hold up scan logging. This one
	// only ever takes a read lock on the database.
	src, err := sql.Open("sqlite", dsn(db.path, commonPragmas))
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	defer src.Close()
	if _, err := src.ExecContext(ctx, "VACUUM INTO ?", abs); err != nil {
		return fmt.Errorf("backup to %s: %w", abs, err)
	}
	if err := os.Chmod(abs, 0o600); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	c, err := sql.Open("sqlite", dsn(abs, "_pragma=query_only(1)"))
	if err != nil {
		return fmt.Errorf("backup: check copy: %w", err)
	}
	defer c.Close()
	var res string
	if err := c.QueryRowContext(ctx, "PRAGMA integrity_check(1)").Scan(&res); err != nil {
		return fmt.Errorf("backup: check copy: %w", err)
	}
	if res != "ok" {
		return fmt.Errorf("backup: check copy: %w: %s", ErrCorrupt, res)
	}
	return nil
}
