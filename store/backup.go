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
// A restored copy is safe for district sync: the live file starts a new
// epoch once the copy is made, so the copy's newest epoch is never the
// one the data directory names, and Open starts a new epoch when the
// copy is put back; records written after the restore are never taken
// by the hub for the ones it already holds.
func (db *DB) Backup(ctx context.Context, path string) error {
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
	// The copy is written in a directory of its own (mode 0700) beside
	// the target, so no other local user can read it while it grows, and
	// only a complete, checked copy is linked to its name; the link fails
	// rather than replace a file that appeared meanwhile.
	tmpDir, err := os.MkdirTemp(filepath.Dir(abs), ".passgate-backup-")
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	defer os.RemoveAll(tmpDir)
	tmp := filepath.Join(tmpDir, FileName)
	// Its own connection: the read pool's are query_only, which refuses
	// VACUUM INTO, and the writer's would hold up scan logging. This one
	// only ever takes a read lock on the database.
	src, err := sql.Open("sqlite", dsn(db.path, commonPragmas))
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	defer src.Close()
	if _, err := src.ExecContext(ctx, "VACUUM INTO ?", tmp); err != nil {
		return fmt.Errorf("backup to %s: %w", abs, err)
	}
	if err := os.Chmod(tmp, 0o600); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	if err := checkCopy(ctx, tmp); err != nil {
		return err
	}
	if err := os.Link(tmp, abs); err != nil {
		if errors.Is(err, os.ErrExist) {
			return fmt.Errorf("backup: %w: %s exists", ErrConflict, abs)
		}
		return fmt.Errorf("backup: %w", err)
	}
	if _, err := db.newEpoch(ctx); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	return nil
}

// checkCopy runs integrity_check on the copy at path.
func checkCopy(ctx context.Context, path string) error {
	c, err := sql.Open("sqlite", dsn(path, "_pragma=query_only(1)"))
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
