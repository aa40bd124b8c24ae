package main

import (
	"context"
	"fmt"
	"time"

	"passgate/store"
)

// cmdBackup writes a consistent copy of the database while the appliance
// keeps running. Restoring is stopping passgate and putting the copy in
// place of DIR/passgate.db (the -wal and -shm files beside it removed).
func cmdBackup(ctx context.Context, e *env, args []string) int {
	fs, data := e.newFlags("backup", "--out FILE")
	out := fs.String("out", "", "the copy to write; must not exist")
	if ok, code := e.parseNoArgs(fs, args); !ok {
		return code
	}
	if *out == "" {
		return e.usageError("backup", "--out is required")
	}
	db, err := openExisting(ctx, e, *data)
	if err != nil {
		return e.fail(err)
	}
	defer db.Close()
	// A backup copies every key: on record before the copy is made, so
	// the copy holds its own record too.
	if err := db.Audit(ctx, &store.AuditRecord{Actor: cliActor(), Action: store.AuditBackup, Subject: *out}); err != nil {
		return e.fail(fmt.Errorf("backup: audit: %w", err))
	}
	start := time.Now()
	if err := db.Backup(ctx, *out); err != nil {
		return e.fail(err)
	}
	fmt.Fprintf(e.stdout, "backup written to %s in %v (integrity checked)\n", *out, time.Since(start).Round(time.Millisecond))
	return exitOK
}
