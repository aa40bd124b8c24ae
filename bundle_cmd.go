package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"passgate/appliance"
	"passgate/districtsync"
	"passgate/store"
)

// cmdBundle syncs by file where there is no network: an enrolled
// appliance exports its records for the hub and imports the hub's
// answer; the hub imports appliances' bundles and exports one for each.
func cmdBundle(ctx context.Context, e *env, args []string) int {
	if len(args) == 0 {
		return e.usageError("bundle", "want a subcommand: export or import")
	}
	sub, args := args[0], args[1:]
	switch sub {
	case "export":
		return bundleExport(ctx, e, args)
	case "import":
		return bundleImport(ctx, e, args)
	}
	return e.usageError("bundle", "unknown subcommand %q (want export or import)", sub)
}

func bundleExport(ctx context.Context, e *env, args []string) int {
	fs, data := e.newFlags("bundle export", "--out FILE [--for APPLIANCE]")
	out := fs.String("out", "", "write the bundle to this file")
	forName := fs.String("for", "", "on the hub: the appliance the bundle is for (required there)")
	if ok, code := e.parseNoArgs(fs, args); !ok {
		return code
	}
	if *out == "" {
		return e.usageError("bundle export", "--out is required")
	}
	db, code := openBundleDB(ctx, e, "bundle export", *data)
	if db == nil {
		return code
	}
	defer db.Close()
	_, err := db.SyncHubInfo(ctx)
	enrolled := err == nil
	if err != nil && !errors.Is(err, store.ErrNotEnrolled) {
		return e.fail(err)
	}
	switch {
	case enrolled && *forName != "":
		return e.usageError("bundle export", "this is an enrolled appliance: its bundle goes to its hub; leave out --for")
	case !enrolled && *forName == "":
		return e.usageError("bundle export", "this passgate is not enrolled with a hub; on the hub, name the appliance the bundle is for with --for")
	}

	var summary string
	err = writeFileAtomic(*out, func(w io.Writer) error {
		if enrolled {
			res, err := districtsync.ExportUp(ctx, db, w)
			if err != nil {
				return err
			}
			summary = fmt.Sprintf("bundle %d of %q for the hub: %d records", res.Header.Seq, res.Header.Appliance, res.Records)
			if res.Backlog > 0 {
				summary += fmt.Sprintf("; %d more wait for the next bundle (export again once the hub's answer is imported here)", res.Backlog)
			}
			return nil
		}
		res, err := districtsync.ExportDown(ctx, db, *forName, w)
		if err != nil {
			return err
		}
		summary = fmt.Sprintf("bundle %d for %q: %d trust keys, %d revocations, policy, %d marks",
			res.Header.Seq, res.Header.Appliance, res.Trust, res.Revocations, res.Marks)
		return nil
	})
	switch {
	case errors.Is(err, store.ErrBundleForeign), errors.Is(err, store.ErrRetired):
		fmt.Fprintf(e.stderr, "passgate bundle export: %v\n", err)
		return exitError
	case err != nil:
		return e.fail(err)
	}
	fmt.Fprintf(e.stdout, "wrote %s to %s\n", summary, *out)
	return exitOK
}

func bundleImport(ctx context.Context, e *env, args []string) int {
	fs, data := e.newFlags("bundle import", "FILE")
	if ok, code := parse(fs, args); !ok {
		return code
	}
	if fs.NArg() != 1 {
		return e.usageError("bundle import", "give one bundle file")
	}
	path := fs.Arg(0)
	f, err := os.Open(path)
	if err != nil {
		return e.fail(err)
	}
	defer f.Close()
	// Refuse an oversize file from its size, before reading any of it.
	if st, err := f.Stat(); err != nil {
		return e.fail(err)
	} else if !st.Mode().IsRegular() {
		return e.usageError("bundle import", "%s is not a regular file", path)
	} else if st.Size() > int64(districtsync.MaxBundleSize) {
		return e.usageError("bundle import", "%s is %d bytes, more than a bundle can be (%d): not a passgate bundle", path, st.Size(), districtsync.MaxBundleSize)
	}
	db, code := openBundleDB(ctx, e, "bundle import", *data)
	if db == nil {
		return code
	}
	defer db.Close()
	res, err := districtsync.ImportBundle(ctx, db, f)
	if err != nil {
		if bundleRefusal(err) {
			fmt.Fprintf(e.stderr, "passgate bundle import: %s refused, nothing changed: %v\n", path, err)
			var gap *store.GapError
			switch {
			case errors.Is(err, store.ErrBundleReplayed):
				// The one way a new bundle gets an old number.
				fmt.Fprintln(e.stderr, "passgate bundle import: if that bundle was written after the last one imported here, its writer was restored from an older backup: bring it a bundle from here first, then export again there")
			case errors.As(err, &gap):
				fmt.Fprintln(e.stderr, "passgate bundle import: this hub lacks records the appliance counts as delivered (the hub was restored from an older backup?): export a bundle for the appliance here and import it there; its next bundle carries them again")
			}
			return exitError
		}
		return e.fail(err)
	}
	h := res.Header
	if h.Direction == districtsync.DirectionUp {
		fmt.Fprintf(e.stdout, "imported bundle %d from %q: %d records stored, %d already held\n", h.Seq, h.Appliance, res.Stored, res.Skipped)
		if !res.WrittenAt.IsZero() {
			// Time in transit, not a clock fault: the appliance's clock is
			// measured by its online exchanges only.
			fmt.Fprintf(e.stdout, "written %s by %q's clock, %v before this import\n",
				res.WrittenAt.UTC().Format(time.RFC3339), h.Appliance, res.Transit.Round(time.Second))
		}
		return exitOK
	}
	fr := res.Feed
	fmt.Fprintf(e.stdout, "imported bundle %d from the hub: %d keys added, %d keys revoked, %d revocations, policy %s; hub holds scans to %d, events to %d\n",
		h.Seq, fr.KeysAdded, fr.KeysRevoked, fr.Revocations, map[bool]string{true: "changed", false: "unchanged"}[fr.PolicyChanged],
		res.ScansAcked, res.EventsAcked)
	if len(res.Resent) > 0 || len(res.Lost) > 0 {
		fmt.Fprintf(e.stdout, "warning: the hub's answer lacks records it had acknowledged (%v), restored from an older backup or older than the last online sync: they go again in the next bundle\n", append(res.Resent, res.Lost...))
	}
	if len(res.Lost) > 0 {
		fmt.Fprintf(e.stdout, "warning: some of them (%v) were purged here meanwhile and cannot go again\n", res.Lost)
	}
	if res.Ahead {
		fmt.Fprintln(e.stdout, "warning: the hub holds records of this appliance that are no longer here (restored from an older backup?); this appliance's own records are still sent")
	}
	return exitOK
}

// bundleRefusal tells a bundle refused for what it is from a failure of
// this machine (disk, database).
func bundleRefusal(err error) bool {
	for _, target := range []error{
		districtsync.ErrBundleMalformed, districtsync.ErrBundleTruncated, districtsync.ErrBundleVersion, districtsync.ErrBundleTooLarge,
		districtsync.ErrBundleSignature, districtsync.ErrBundleDirection, store.ErrBundleForeign, store.ErrBundleReplayed,
		store.ErrRetired, store.ErrInvalid,
	} {
		if errors.Is(err, target) {
			return true
		}
	}
	var gap *store.GapError
	return errors.As(err, &gap)
}

// openBundleDB opens an existing district's data directory: bundles
// belong to a hub or an enrolled appliance, so unlike most commands it
// never sets up a new standalone district. It returns nil and the exit
// code on failure.
func openBundleDB(ctx context.Context, e *env, cmd, dir string) (*store.DB, int) {
	if _, err := os.Stat(filepath.Join(dir, store.FileName)); errors.Is(err, os.ErrNotExist) {
		return nil, e.usageError(cmd, "no passgate data in %s (enrol this appliance first, or give the hub's --data)", dir)
	}
	db, err := e.openStore(ctx, dir)
	if err != nil {
		return nil, e.fail(err)
	}
	if _, err := db.District(ctx); err != nil {
		db.Close()
		if errors.Is(err, store.ErrNotInitialized) {
			return nil, e.usageError(cmd, "no district in %s (enrol this appliance first, or give the hub's --data)", dir)
		}
		return nil, e.fail(err)
	}
	return db, 0
}

// writeFileAtomic writes a file through fn so that it appears under its
// name complete and durable or not at all (appliance.WriteFileAtomic).
func writeFileAtomic(path string, fn func(io.Writer) error) error {
	return appliance.WriteFileAtomic(path, fn)
}
