package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"passgate/district"
	"passgate/pass"
	"passgate/store"
)

// cmdTrust hands the district's trust anchor out and takes other
// districts' in.
func cmdTrust(ctx context.Context, e *env, args []string) int {
	return e.dispatch(ctx, "trust", args, []command{
		{"export", "write this district's trust anchor file", cmdTrustExport},
		{"import", "trust another district's roots", cmdTrustImport},
		{"list", "list the trusted roots", cmdTrustList},
		{"city", "trust the city root (hub only)", cmdTrustCity},
		{"city-key", "import the city pseudonym key: one subject per person city-wide (hub only)", cmdTrustCityKey},
		{"import-certified", "apply a city root's certificate or retirement of a district root (hub only)", cmdTrustImportCertified},
	})
}

// dispatch runs the subcommand of cmd named by args[0].
func (e *env) dispatch(ctx context.Context, cmd string, args []string, subs []command) int {
	names := make([]string, len(subs))
	for i, c := range subs {
		names[i] = c.name
	}
	usage := fmt.Sprintf("usage: passgate %s %s [flags]", cmd, strings.Join(names, "|"))
	if len(args) == 0 {
		fmt.Fprintln(e.stderr, usage)
		return exitError
	}
	for _, c := range subs {
		if c.name == args[0] {
			return c.run(ctx, e, args[1:])
		}
	}
	if args[0] == "-h" || args[0] == "-help" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprintln(e.stdout, usage)
		width := 8
		for _, c := range subs {
			width = max(width, len(c.name))
		}
		for _, c := range subs {
			fmt.Fprintf(e.stdout, "  %-*s %s\n", width, c.name, c.summary)
		}
		return exitOK
	}
	return e.usageError(cmd, "unknown subcommand %q (%s)", args[0], strings.Join(names, ", "))
}

// cmdTrustExport writes the district's trust anchor file to --out or
// standard output, and the fingerprints to read out on standard error.
func cmdTrustExport(ctx context.Context, e *env, args []string) int {
	fs, data := e.newFlags("trust export", "[--out FILE]")
	out := fs.String("out", "", "file to write (default: standard output)")
	if ok, code := e.parseNoArgs(fs, args); !ok {
		return code
	}
	db, err := openExisting(ctx, e, *data)
	if err != nil {
		return e.fail(err)
	}
	defer db.Close()
	b, err := db.ExportTrustAnchor(ctx)
	if err != nil {
		return e.fail(err)
	}
	if *out == "" {
		_, err = e.stdout.Write(b)
	} else {
		err = writeFileAtomic(*out, func(w io.Writer) error { _, err := w.Write(b); return err })
	}
	if err != nil {
		return e.fail(fmt.Errorf("write trust anchor: %w", err))
	}
	a, err := pass.ParseAnchor(b)
	if err != nil {
		return e.fail(err)
	}
	for _, r := range a.Roots {
		fmt.Fprintf(e.stderr, "passgate: district %s root %s fingerprint: %s\n", a.District, r.KID, pass.FormatFingerprint(r.Fingerprint()))
	}
	fmt.Fprintln(e.stderr, "passgate: give the file to the other district and read the fingerprint to them by another channel (phone, in person)")
	return exitOK
}

// cmdTrustImport adds another district's roots once the fingerprint,
// compared out of band, matches.
func cmdTrustImport(ctx context.Context, e *env, args []string) int {
	fs, data := e.newFlags("trust import", "FILE --fingerprint HEX")
	fp := fs.String("fingerprint", "", "the root's SHA-256 fingerprint as the other district read it to you (required)")
	return e.onFile(ctx, fs, data, args, pass.MaxAnchorLen, func() int {
		return e.requireFingerprint(fs.Name(), *fp, "the other district")
	}, func(db *store.DB, b []byte) int {
		a, added, err := db.ImportTrustAnchor(ctx, b, *fp, cliActor())
		if err != nil {
			return e.fail(err)
		}
		if added == 0 {
			fmt.Fprintf(e.stdout, "district %s (%s): its roots were trusted already\n", a.District, a.Name)
			return exitOK
		}
		fmt.Fprintf(e.stdout, "district %s (%s): %d root(s) added to this district's trust\n", a.District, a.Name, added)
		return exitOK
	})
}

// requireFingerprint refuses a command run without the fingerprint
// that whose reads out: a file alone proves nothing about its sender.
func (e *env) requireFingerprint(cmd, fp, whose string) int {
	if fp == "" {
		return e.usageError(cmd, "--fingerprint is required: ask %s to read its root's fingerprint to you by phone or in person", whose)
	}
	return exitOK
}

// onFile parses the flags of a command that takes one file, runs
// precheck (if any; anything but exitOK stops), reads the file (at most
// limit bytes) and runs fn on it and the existing data directory.
func (e *env) onFile(ctx context.Context, fs *flag.FlagSet, data *string, args []string, limit int, precheck func() int,
	fn func(db *store.DB, b []byte) int) int {
	path, ok, code := e.parseFileArg(fs, fs.Name(), args)
	if !ok {
		return code
	}
	if precheck != nil {
		if code := precheck(); code != exitOK {
			return code
		}
	}
	b, err := readBounded(path, limit)
	if err != nil {
		return e.fail(err)
	}
	db, err := openExisting(ctx, e, *data)
	if err != nil {
		return e.fail(err)
	}
	defer db.Close()
	return fn(db, b)
}

// parseFileArg parses the flags of a command that takes one file, which
// may come before the flags (`trust import FILE --fingerprint X`).
func (e *env) parseFileArg(fs *flag.FlagSet, name string, args []string) (string, bool, int) {
	if ok, code := parse(fs, args); !ok {
		return "", false, code
	}
	rest := fs.Args()
	if len(rest) > 0 {
		if ok, code := parse(fs, rest[1:]); !ok {
			return "", false, code
		}
		rest = append(rest[:1], fs.Args()...)
	}
	if len(rest) != 1 {
		return "", false, e.usageError(name, "give exactly one file")
	}
	return rest[0], true, exitOK
}

// readBounded reads at most limit bytes of path; a longer file is
// refused rather than cut.
func readBounded(path string, limit int) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, int64(limit)+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if len(b) > limit {
		return nil, fmt.Errorf("read %s: %w", path, errors.New("file larger than a trust anchor can be"))
	}
	return b, nil
}

// cmdTrustList prints the trusted roots, one per line.
func cmdTrustList(ctx context.Context, e *env, args []string) int {
	return e.onExisting(ctx, "trust list", args, func(db *store.DB) int { return trustList(ctx, e, db) })
}

// onExisting runs fn on the existing data directory of a command that
// takes no flags but --data.
func (e *env) onExisting(ctx context.Context, name string, args []string, fn func(*store.DB) int) int {
	fs, data := e.newFlags(name, "")
	if ok, code := e.parseNoArgs(fs, args); !ok {
		return code
	}
	db, err := openExisting(ctx, e, *data)
	if err != nil {
		return e.fail(err)
	}
	defer db.Close()
	return fn(db)
}

func trustList(ctx context.Context, e *env, db *store.DB) int {
	roots, err := db.TrustedRoots(ctx)
	if err != nil {
		return e.fail(err)
	}
	var buf bytes.Buffer
	switch c, err := db.CityRoot(ctx); {
	case err == nil:
		fmt.Fprintf(&buf, "city %s root %s\n  fingerprint %s\n", c.City, c.Key.KID, pass.FormatFingerprint(c.Key.Fingerprint()))
	case !errors.Is(err, store.ErrNoCityRoot):
		return e.fail(err)
	}
	for _, r := range roots {
		whose := "other"
		if r.Own {
			whose = "own"
		}
		if len(r.Cert) > 0 {
			whose += "+city" // carries a city record (certified or retired)
		}
		fmt.Fprintf(&buf, "%-8s %-5s %-5s %s %s added %s\n  fingerprint %s\n", r.District, whose, r.Alg, r.KID,
			keyState(r.Key), r.CreatedAt.UTC().Format(time.RFC3339), pass.FormatFingerprint(r.Fingerprint))
	}
	_, err = e.stdout.Write(buf.Bytes())
	if err != nil {
		return e.fail(err)
	}
	return exitOK
}

// keyState is how trust list shows whether a root is in force.
func keyState(k *store.Key) string {
	if !k.NotAfter.IsZero() {
		return "until " + k.NotAfter.UTC().Format(time.RFC3339)
	}
	return "in force"
}

// cmdRoot replaces the district root on purpose.
func cmdRoot(ctx context.Context, e *env, args []string) int {
	return e.dispatch(ctx, "root", args, []command{
		{"rotate", "replace the district root (old root signs the new one over)", cmdRootRotate},
	})
}

// cmdRootRotate runs district.RotateRoot at the hub.
func cmdRootRotate(ctx context.Context, e *env, args []string) int {
	return e.onExisting(ctx, "root rotate", args, func(db *store.DB) int { return rootRotate(ctx, e, db) })
}

func rootRotate(ctx context.Context, e *env, db *store.DB) int {
	r, err := district.RotateRoot(ctx, db, cliActor())
	if err != nil {
		return e.fail(err)
	}
	fmt.Fprintf(e.stdout, "district %s: root %s replaced by %s; %d issuer certificate(s) issued again\n", r.District, r.Old.KID, r.New.KID, r.Certs)
	fmt.Fprintf(e.stdout, "new root fingerprint: %s\n", pass.FormatFingerprint(r.New.Fingerprint()))
	fmt.Fprintf(e.stdout, "the old root stays trusted for %d days after each appliance receives the new one (next sync or bundle);\n", int(store.RootGrace.Hours()/24))
	fmt.Fprintln(e.stdout, "other districts that trust this one need the new trust anchor: run `passgate trust export`")
	return exitOK
}
