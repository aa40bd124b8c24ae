package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"time"

	"passgate/store"
)

// districtLocation is the district's time zone (store.Policy.Location)
// for the dates typed to a command, whatever zone this machine is set
// to. It is read before the command opens its database for work, since
// a refused command must neither create nor change anything: a database
// that does not exist yet, or is not set up, means the default zone,
// which is the one a new district gets.
func districtLocation(ctx context.Context, e *env, dir string) (*time.Location, error) {
	if _, err := os.Stat(filepath.Join(dir, store.FileName)); errors.Is(err, os.ErrNotExist) {
		return (*store.Policy)(nil).Location(), nil
	}
	db, err := openExisting(ctx, e, dir)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	loc, err := db.Location(ctx)
	if errors.Is(err, store.ErrNotInitialized) {
		return (*store.Policy)(nil).Location(), nil
	}
	return loc, err
}
