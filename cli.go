package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/user"
	"path/filepath"
	"runtime/debug"
	"strconv"

	"passgate/district"
	"passgate/store"
)

// version is the build's version: the VCS revision when built from a
// checkout.
var version = func() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "dev"
	}
	rev, dirty := "", false
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	switch {
	case rev == "":
		return "dev"
	case dirty:
		return rev + "-dirty"
	}
	return rev
}()

const defaultDataDir = "./passgate-data"

// newFlags returns a flag set with a --data
// flag with its PASSGATE_DATA fallback.
func (e *env) newFlags(name, usage string) (*flag.FlagSet, *string) {
	fs := e.flagSet(name, usage)
	data := fs.String("data", e.envOr("PASSGATE_DATA", defaultDataDir), "data directory (env PASSGATE_DATA)")
	e.keyFile = fs.String("key-file", e.getenv("PASSGATE_KEY_FILE"),
		"file (at least 32 random bytes) sealing the private keys at rest (env PASSGATE_KEY_FILE; default: the systemd credential passgate-key)")
	return fs, data
}

// credentialKey is the name of the systemd credential (LoadCredential=)
// that seals the keys when no key file is named.
const credentialKey = "passgate-key"

// sealKeyFile is the key file of this run: --key-file or
// PASSGATE_KEY_FILE, else the systemd credential if there is one, else
// none ("").
func (e *env) sealKeyFile() string {
	if e.keyFile != nil && *e.keyFile != "" {
		return *e.keyFile
	}
	if p := e.getenv("PASSGATE_KEY_FILE"); p != "" {
		return p // a command without the flag
	}
	if dir := e.getenv("CREDENTIALS_DIRECTORY"); dir != "" {
		p := filepath.Join(dir, credentialKey)
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return ""
}

// openStore opens the data directory with the key file of this run, and
// warns on stderr about files it had to make owner-only.
func (e *env) openStore(ctx context.Context, dir string) (*store.DB, error) {
	var opts []store.Option
	if path := e.sealKeyFile(); path != "" {
		secret, err := store.ReadKeyFile(path)
		if err != nil {
			return nil, err
		}
		opts = append(opts, store.WithSealKey(secret))
	}
	db, err := store.Open(ctx, dir, opts...)
	if err != nil {
		return nil, err
	}
	for _, f := range db.ModesFixed() {
		fmt.Fprintf(e.stderr, "passgate: warning: %s in %s was readable by other users; made owner-only\n", f, dir)
	}
	if n := db.KeysSealedOnOpen(); n > 0 {
		fmt.Fprintf(e.stderr, "passgate: sealed %d keys stored in clear with the key file\n", n)
	}
	return db, nil
}

// flagSet returns a flag set that reports errors on stderr.
func (e *env) flagSet(name, usage string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	fs.Usage = func() {
		fmt.Fprintf(e.stderr, "usage: passgate %s %s\n", name, usage)
		fs.PrintDefaults()
	}
	return fs
}

func (e *env) envOr(key, def string) string {
	if v := e.getenv(key); v != "" {
		return v
	}
	return def
}

// parse parses args; it returns false (after printing why) on a usage
// error or -h.
func parse(fs *flag.FlagSet, args []string) (ok bool, code int) {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return false, exitOK
		}
		return false, exitError
	}
	return true, 0
}

// parseNoArgs is parse for commands that take flags only.
func (e *env) parseNoArgs(fs *flag.FlagSet, args []string) (ok bool, code int) {
	if ok, code := parse(fs, args); !ok {
		return false, code
	}
	if fs.NArg() > 0 {
		return false, e.usageError(fs.Name(), "unexpected argument %q", fs.Arg(0))
	}
	return true, 0
}

// usageError prints a usage problem as one line.
func (e *env) usageError(cmd, format string, args ...any) int {
	fmt.Fprintf(e.stderr, "passgate %s: %s\n", cmd, fmt.Sprintf(format, args...))
	return exitError
}

// openDB opens the data directory, setting up a standalone district on
// first use. Generated admin credentials go to w once.
func (e *env) openDB(ctx context.Context, dir string, w io.Writer) (*store.DB, error) {
	db, err := e.openStore(ctx, dir)
	if err != nil {
		return nil, err
	}
	res, err := district.EnsureSetup(ctx, db, district.SetupOptions{
		Name:          e.getenv("PASSGATE_DISTRICT_NAME"),
		AdminPassword: e.getenv("PASSGATE_ADMIN_PASSWORD"),
	})
	if err != nil {
		db.Close()
		return nil, err
	}
	if res != nil {
		fmt.Fprintf(w, "passgate: new standalone district %q (%s) in %s\n", res.District.Name, res.District.ID, dir)
		if res.AdminPassword != "" {
			fmt.Fprintf(w, "passgate: first admin login: user %q, password %q (shown only once; change it after logging in)\n", res.AdminUser, res.AdminPassword)
		} else {
			fmt.Fprintf(w, "passgate: first admin login: user %q with the password from PASSGATE_ADMIN_PASSWORD\n", res.AdminUser)
		}
	}
	return db, nil
}

// badCheckDigitUsage explains the flag that accepts a legacy ID number.
const badCheckDigitUsage = "accept a legacy mainland ID number whose check digit is wrong (checked against the card); the same flag is needed wherever it is typed again"

// failID reports err like fail, and says how to accept a mainland ID
// number whose only fault is a wrong check digit.
func (e *env) failID(err error) int {
	if msg, ok := inputMessage(err); ok && district.IsBadCheckDigit(err) {
		fmt.Fprintf(e.stderr, "passgate: %s; %s\n", msg, badCheckDigitHint)
		return exitError
	}
	return e.fail(err)
}

// badCheckDigitHint ends the one-line error about a wrong check digit.
const badCheckDigitHint = "a legacy number known to carry a wrong check digit needs --allow-bad-check-digit"

// cliActor names the person behind a command in the audit trail: the OS
// user running it ("cli:root"), or its uid when it has no name.
func cliActor() store.Actor {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return store.Actor("cli:" + u.Username)
	}
	return store.Actor("cli:uid" + strconv.Itoa(os.Getuid()))
}
