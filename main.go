// Command passgate is an offline health-pass appliance: it issues signed
// passes, checks them at the gate without any network, logs every check
// durably and serves the staff pages and the scan API.
//
//	passgate [serve] --data DIR --addr HOST:PORT
//	passgate issue|check|status|policy|device|log|bench ...
//
// Run `passgate help` for every command.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	// The district's time zone is policy: an appliance without a zone
	// database (a minimal image) must still know Asia/Shanghai.
	_ "time/tzdata"

	"passgate/district"
	"passgate/store"
	"passgate/web/i18n"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// Exit codes.
const (
	exitOK    = 0
	exitDeny  = 1 // `check` denied the pass
	exitError = 2 // usage or system error
)

// env is what every command gets from the outside world.
type env struct {
	getenv func(string) string
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer

	// keyFile is the --key-file flag of the running command (see
	// newFlags): the file whose content seals the keys at rest.
	keyFile *string
}

type command struct {
	name    string
	summary string
	run     func(ctx context.Context, e *env, args []string) int
}

// aliases are other names commands answer to, not listed: the American
// spelling of enrol.
var aliases = map[string]string{"enroll": "enrol"}

func commands() []command {
	return []command{
		{"serve", "run the appliance (the default)", cmdServe},
		{"issue", "register a resident if needed and issue a pass", cmdIssue},
		{"check", "check a pass and log the check", cmdCheck},
		{"status", "change a resident's health status (voids earlier passes)", cmdStatus},
		{"policy", "show or set the check policy", cmdPolicy},
		{"device", "manage scanner devices (add, list, revoke)", cmdDevice},
		{"log", "print the latest logged checks as JSON lines", cmdLog},
		{"export", "export scans, passes, status changes or the audit trail as CSV, XLSX or JSON Lines", cmdExport},
		{"trace", "list a person's checks and who was checked near them", cmdTrace},
		{"backup", "write a consistent copy of the database while running", cmdBackup},
		{"audit", "verify or list the audit trail", cmdAudit},
		{"bundle", "sync with the hub by file: export or import a signed bundle", cmdBundle},
		{"bench", "measure checks per second (in process or over HTTP)", cmdBench},
		{"enrol", "enrol this new appliance with a district hub (online or by files)", cmdEnrol},
		{"hub", "district hub: add, enrol, set-role, retire or list appliances", cmdHub},
		{"trust", "hand out this district's root keys, trust another district's, list them", cmdTrust},
		{"root", "replace the district root on purpose (hub only)", cmdRoot},
		{"city", "city root, offline: create it, certify or retire district roots", cmdCity},
		{"version", "print the version", cmdVersion},
	}
}

// run is the whole program: main only wires the process to it, so tests
// can drive it end to end.
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) int {
	e := &env{getenv: getenv, stdin: stdin, stdout: stdout, stderr: stderr}
	name := "serve"
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		name, args = args[0], args[1:]
	}
	if name == "help" || name == "-h" || name == "--help" {
		usage(stdout)
		return exitOK
	}
	for _, c := range commands() {
		if c.name == name || c.name == aliases[name] {
			return c.run(ctx, e, args)
		}
	}
	fmt.Fprintf(stderr, "passgate: unknown command %q (run `passgate help`)\n", name)
	return exitError
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: passgate [command] [flags]   (run `passgate COMMAND -h` for its flags)")
	fmt.Fprintln(w)
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-8s %s\n", c.name, c.summary)
	}
}

// fail prints err as one line and returns the exit code for it. Errors a
// person caused (bad input) print their message alone.
func (e *env) fail(err error) int {
	if errors.Is(err, store.ErrGate) {
		// Whatever the operation, one line that says why and where to go.
		fmt.Fprintf(e.stderr, "passgate: %v\n", store.ErrGate)
		return exitError
	}
	if msg, ok := inputMessage(err); ok {
		fmt.Fprintf(e.stderr, "passgate: %s\n", msg)
		return exitError
	}
	fmt.Fprintf(e.stderr, "passgate: %v\n", err)
	return exitError
}

// inputMessage is the English sentence for input a person got wrong
// (a *district.InputError, or field errors in the message catalogue's
// words, as the web shows them); ok is false for any other error.
func inputMessage(err error) (msg string, ok bool) {
	en := i18n.Printer{Lang: i18n.EN}
	field := func(fe *store.FieldError) string {
		return strings.ReplaceAll(fe.Field, "_", " ") + ": " + en.T(fe.Code, fe.Args...)
	}
	var in *district.InputError
	var many store.FieldErrors
	var one *store.FieldError
	switch {
	case errors.As(err, &in):
		if errors.As(in, &one) {
			return in.Msg + ": " + en.T(one.Code, one.Args...), true
		}
		return in.Msg, true
	case errors.As(err, &many):
		s := make([]string, len(many))
		for i, fe := range many {
			s[i] = field(fe)
		}
		return strings.Join(s, "; "), true
	case errors.As(err, &one):
		return field(one), true
	}
	return "", false
}
