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
	"strings"
	"time"

	"passgate/appliance"
	"passgate/store"
)

// exitBroken is the exit code of `audit verify` when the chain is
// broken: the check ran and found tampering, which is not a usage or
// system error.
const exitBroken = 1

// cmdAudit verifies or lists the audit trail.
func cmdAudit(ctx context.Context, e *env, args []string) int {
	const usage = "usage: passgate audit verify|list|key|checkpoint [flags]"
	if len(args) == 0 {
		fmt.Fprintln(e.stderr, usage)
		return exitError
	}
	switch args[0] {
	case "verify":
		return cmdAuditVerify(ctx, e, args[1:])
	case "list":
		return cmdAuditList(ctx, e, args[1:])
	case "key":
		return cmdAuditKey(ctx, e, args[1:])
	case "checkpoint":
		return cmdAuditCheckpoint(ctx, e, args[1:])
	case "-h", "-help", "--help", "help":
		fmt.Fprintln(e.stdout, usage)
		return exitOK
	}
	return e.usageError("audit", "unknown subcommand %q (verify, list, key or checkpoint)", args[0])
}

// cmdAuditVerify recomputes the hash chain and the tree, cross-checks
// status changes, and with --checkpoint proves that the trail extends
// every checkpoint in FILE (a copy of the appliance's checkpoint file),
// whose signatures are checked against --key (the audit public key kept
// apart from the database, which may be the forger; without --key the
// key is read from the database itself, with a warning). Exit 0 when
// intact, exitBroken when not (a bad signature included), exitError when
// the check could not run. It never sets up a district nor makes a key:
// verifying must not write to the file it inspects.
func cmdAuditVerify(ctx context.Context, e *env, args []string) int {
	fs, data := e.newFlags("audit verify", "[--checkpoint FILE [--key FILE]]")
	cpFile := fs.String("checkpoint", "", "a copy of the appliance's audit-checkpoints file: prove the trail still extends every checkpoint in it")
	keyFile := fs.String("key", "", "file with the appliance's audit public key (passgate audit key), kept apart from the database")
	if ok, code := e.parseNoArgs(fs, args); !ok {
		return code
	}
	if *keyFile != "" && *cpFile == "" {
		return e.usageError("audit verify", "--key needs --checkpoint")
	}
	db, err := openExisting(ctx, e, *data)
	if err != nil {
		return e.fail(err)
	}
	defer db.Close()
	start := time.Now()
	var cps []*store.Checkpoint
	if *cpFile != "" {
		var code int
		if cps, code = e.readCheckpoints(ctx, db, *cpFile, *keyFile); code != exitOK {
			return code
		}
	}
	v, err := db.VerifyAuditTrail(ctx, cps)
	var broken *store.AuditError
	if errors.As(err, &broken) {
		fmt.Fprintf(e.stdout, "%s\n", strings.Replace(broken.Error(), "audit trail broken", "audit trail BROKEN", 1))
		return exitBroken
	}
	if err != nil {
		return e.fail(err)
	}
	fmt.Fprintf(e.stdout, "audit trail intact: %d records, %d status changes match\n", v.Records, v.StatusChanges)
	if len(cps) > 0 {
		newest := cps[len(cps)-1]
		fmt.Fprintf(e.stdout, "extends all %d checkpoints in %s (newest: %d records, %s)\n", len(cps), *cpFile, newest.Size, newest.Origin)
	}
	// Shown so it can be noted outside the appliance: removing the last
	// records and forging the head is only caught against such a copy.
	// A record appended since the verify makes it newer, not wrong.
	fmt.Fprintf(e.stdout, "tree: %d records, root %s\n", v.Size, v.Root)
	fmt.Fprintf(e.stderr, "passgate: verified in %v\n", time.Since(start).Round(time.Millisecond))
	return exitOK
}

// readCheckpoints reads a checkpoint file and checks every signature
// against the keys in keyFile ("" for the database's own key). A bad
// signature or a malformed checkpoint is a broken trail: someone forged
// or damaged the anchor.
func (e *env) readCheckpoints(ctx context.Context, db *store.DB, path, keyFile string) ([]*store.Checkpoint, int) {
	notes, err := appliance.ReadCheckpointFile(path)
	if err != nil {
		return nil, e.fail(err)
	}
	if len(notes) == 0 {
		fmt.Fprintf(e.stdout, "audit trail NOT VERIFIED: no checkpoint in %s\n", path)
		return nil, exitBroken
	}
	var keys string
	if keyFile != "" {
		b, err := os.ReadFile(keyFile)
		if err != nil {
			return nil, e.fail(fmt.Errorf("read audit key: %w", err))
		}
		keys = string(b)
	} else {
		if keys, err = db.AuditVerifierKey(ctx); err != nil {
			return nil, e.fail(err)
		}
		fmt.Fprintln(e.stderr, "passgate: warning: checking signatures with the key stored in the database itself; pass --key with a copy kept elsewhere")
	}
	vs, err := store.VerifierKeys(keys)
	if err != nil {
		return nil, e.fail(err)
	}
	var cps []*store.Checkpoint
	for i, n := range notes {
		cp, err := store.OpenCheckpoint(n, vs)
		if err != nil {
			fmt.Fprintf(e.stdout, "audit trail BROKEN: checkpoint %d of %s: %v\n", i+1, path, err)
			return nil, exitBroken
		}
		cps = append(cps, cp)
	}
	return cps, exitOK
}

// cmdAuditKey prints the appliance's audit public key, the one its
// checkpoints are signed with (made now if there is none yet), to keep
// beside the copies of its checkpoint file.
func cmdAuditKey(ctx context.Context, e *env, args []string) int {
	fs, data := e.newFlags("audit key", "")
	if ok, code := e.parseNoArgs(fs, args); !ok {
		return code
	}
	db, err := openExisting(ctx, e, *data)
	if err != nil {
		return e.fail(err)
	}
	defer db.Close()
	vkey, err := db.AuditPublicKey(ctx)
	if err != nil {
		return e.fail(err)
	}
	fmt.Fprintln(e.stdout, vkey)
	return exitOK
}

// cmdAuditCheckpoint appends a checkpoint of the trail as it is now to
// the checkpoint file (what serve does every few minutes), for a copy
// taken right now.
func cmdAuditCheckpoint(ctx context.Context, e *env, args []string) int {
	fs, data := e.newFlags("audit checkpoint", "[--file FILE]")
	file := fs.String("file", e.envOr("PASSGATE_AUDIT_CHECKPOINTS", ""), "the checkpoint file (default DATA/audit-checkpoints; env PASSGATE_AUDIT_CHECKPOINTS)")
	if ok, code := e.parseNoArgs(fs, args); !ok {
		return code
	}
	db, err := openExisting(ctx, e, *data)
	if err != nil {
		return e.fail(err)
	}
	defer db.Close()
	path := appliance.CheckpointPath(*file, *data)
	cp, changed, err := appliance.WriteCheckpoint(ctx, db, path)
	var broken *store.AuditError
	if errors.As(err, &broken) {
		fmt.Fprintf(e.stdout, "no checkpoint written: %s\n", strings.Replace(broken.Error(), "audit trail broken", "audit trail BROKEN", 1))
		return exitBroken
	}
	if err != nil {
		return e.fail(err)
	}
	if changed {
		fmt.Fprintf(e.stdout, "checkpoint of %d records written to %s\n", cp.Size, path)
	} else {
		fmt.Fprintf(e.stdout, "trail unchanged since the newest checkpoint in %s (%d records)\n", path, cp.Size)
	}
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
			Seq: r.Seq, At: r.At.Format(time.RFC3339Nano), Actor: string(r.Actor), Action: r.Action,
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
