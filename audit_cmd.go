package main

import (
	"bufio"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"passgate/store"
)

// exitBroken is the exit code of `audit verify` when the chain is
// broken: the check ran and found tampering, which is not a usage or
// system error.
const exitBroken = 1

// cmdAudit verifies or lists the audit trail.
func cmdAudit(ctx context.Context, e *env, args []string) int {
	const usage = "usage: passgate audit verify|list [flags]"
	if len(args) == 0 {
		fmt.Fprintln(e.stderr, usage)
		return exitError
	}
	switch args[0] {
	case "verify":
		return cmdAuditVerify(ctx, e, args[1:])
	case "list":
		return cmdAuditList(ctx, e, args[1:])
	case "-h", "-help", "--help", "help":
		fmt.Fprintln(e.stdout, usage)
		return exitOK
	}
	return e.usageError("audit", "unknown subcommand %q (verify or list)", args[0])
}

// cmdAuditVerify recomputes the hash chain and reports the first broken
// link: exit 0 when intact, exitBroken when not, exitError when the
// check could not run. It never sets up a district: verifying must not
// write to the file it inspects.
func cmdAuditVerify(ctx context.Context, e *env, args []string) int {
	fs, data := e.newFlags("audit verify", "")
	if ok, code := e.parseNoArgs(fs, args); !ok {
		return code
	}
	db, err := openExisting(ctx, e, *data)
	if err != nil {
		return e.fail(err)
	}
	defer db.Close()
	start := time.Now()
	n, err := db.VerifyAudit(ctx)
	var broken *store.AuditError
	if errors.As(err, &broken) {
		fmt.Fprintf(e.stdout, "audit trail BROKEN at record %d: %s\n", broken.Seq, broken.Reason)
		return exitBroken
	}
	if err != nil {
		return e.fail(err)
	}
	fmt.Fprintf(e.stdout, "audit trail intact: %d records\n", n)
	// Shown so it can be noted outside the appliance: removing the last
	// records and forging the head is only caught against such a copy.
	// A record appended since the verify makes it newer, not wrong.
	if seq, sum, err := db.AuditHead(ctx); err == nil && seq > 0 {
		fmt.Fprintf(e.stdout, "newest record: %d, hash %x\n", seq, sum)
	}
	fmt.Fprintf(e.stderr, "passgate: verified in %v\n", time.Since(start).Round(time.Millisecond))
	return exitOK
}

// auditLine is one record of `audit list` as a JSON line.
type auditLine struct {
	Seq     int64           `json:"seq"`
	At      string          `json:"at"`
	Actor   string          `json:"actor"`
	Action  string          `json:"action"`
	Subject string          `json:"subject,omitempty"`
	Detail  json.RawMessage `json:"detail,omitempty"`
	Hash    string          `json:"hash"`
}

// cmdAuditList prints the newest records (all with -n 0), oldest first,
// as JSON lines.
func cmdAuditList(ctx context.Context, e *env, args []string) int {
	fs, data := e.newFlags("audit list", "[-n N]")
	n := fs.String("n", "50", "how many of the newest records to print; 0 for all")
	if ok, code := e.parseNoArgs(fs, args); !ok {
		return code
	}
	last, err := strconv.Atoi(*n)
	if err != nil || last < 0 {
		return e.usageError("audit list", "-n %q is not a number of records", *n)
	}
	db, err := openExisting(ctx, e, *data)
	if err != nil {
		return e.fail(err)
	}
	defer db.Close()
	out := bufio.NewWriter(e.stdout)
	enc := json.NewEncoder(out)
	enc.SetEscapeHTML(false)
	err = db.FindAudit(ctx, store.AuditFilter{Last: last}, func(r *store.AuditRecord) error {
		line := auditLine{
			Seq: r.Seq, At: r.At.Format(time.RFC3339Nano), Actor: r.Actor, Action: r.Action,
			Subject: r.Subject, Hash: hex.EncodeToString(r.Hash),
		}
		switch {
		case len(r.Detail) == 0:
		case json.Valid(r.Detail):
			line.Detail = r.Detail
		default: // only a damaged file has this; show it, do not fail
			line.Detail, _ = json.Marshal(string(r.Detail))
		}
		return enc.Encode(line)
	})
	if ferr := out.Flush(); err == nil {
		err = ferr
	}
	if err != nil {
		return e.fail(err)
	}
	return exitOK
}

// openExisting opens the database in dir without creating one: an audit
// of a mistyped directory must fail, not report an empty, intact trail.
func openExisting(ctx context.Context, e *env, dir string) (*store.DB, error) {
	if _, err := os.Stat(filepath.Join(dir, store.FileName)); err != nil {
		return nil, fmt.Errorf("no passgate database in %s: %w", dir, err)
	}
	return e.openStore(ctx, dir)
}
