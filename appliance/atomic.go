package appliance

import (
	"io"
	"os"
	"path/filepath"
)

// WriteFileAtomic writes a file through fn into a temporary file beside
// path and renames it into place once complete and synced: a bundle that
// could not be written whole never appears under its name, where it could
// be carried away truncated. Bundles, exports and checkpoint files
// are written with it.
func WriteFileAtomic(path string, fn func(io.Writer) error) (err error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err := tmp.Chmod(0o600); err != nil {
		return err
	}
	if err := fn(tmp); err != nil {
		return err
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	// The rename is durable once the directory is: a bundle that was
	// reported written survives a power cut before it is carried away.
	dir, err := os.Open(filepath.Dir(path))
	if err != nil {
		return err
	}
	defer dir.Close()
	return dir.Sync()
}
