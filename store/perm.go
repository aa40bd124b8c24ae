package store

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
)

// secureDataDir makes dir and everything in it readable by its owner only,
// whatever already exists there: a directory made by hand or by an
// installer with 0755, or files a former version (or SQLite under umask
// 022) created 0644. Every private key and the pseudonym key live in
// these files. It returns the paths (relative to dir) whose mode it
// changed, for a warning. Symbolic links are not followed.
func secureDataDir(dir string) ([]string, error) {
	var fixed []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) && path != dir {
				return nil // removed meanwhile (a WAL after a checkpoint)
			}
			return err
		}
		if d.Type()&fs.ModeSymlink != 0 || (!d.IsDir() && !d.Type().IsRegular()) {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		perm := info.Mode().Perm()
		if perm&0o077 == 0 {
			return nil
		}
		if err := os.Chmod(path, perm&^0o077); err != nil {
			return fmt.Errorf("restrict %s: %w", path, err)
		}
		rel, _ := filepath.Rel(dir, path)
		fixed = append(fixed, fmt.Sprintf("%s (was %04o)", rel, perm))
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("secure data directory %s: %w", dir, err)
	}
	sort.Strings(fixed)
	return fixed, nil
}

// createOwnerOnly creates the database file 0600 before SQLite does, if
// it does not exist: SQLite creates files 0644 less the umask, and gives
// the -wal and -shm files the mode of the database file.
func createOwnerOnly(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("create %s: %w", path, err)
	}
	return f.Close()
}

// ModesFixed lists what Open found readable by others in the data
// directory and restricted to the owner (path and former mode), for the
// caller to warn about; nil when nothing needed fixing.
func (db *DB) ModesFixed() []string { return db.modesFixed }
