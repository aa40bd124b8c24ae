package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"passgate/check"
	"passgate/district"
	"passgate/pass"
)

// cmdIssue registers a resident if needed and issues a pass.
func cmdIssue(ctx context.Context, e *env, args []string) int {
	fs, data := e.newFlags("issue", "--name NAME --id IDNUMBER [flags]")
	name := fs.String("name", "", "full name of the resident (only the masked form is kept)")
	id := fs.String("id", "", "ID or document number (only a pseudonym and the last four characters are kept)")
	color := fs.String("color", "", "health colour: green, yellow or red (default: as registered, green for a new resident)")
	tested := fs.String("tested-at", "", "sample time of the latest negative test, RFC 3339 (e.g. 2026-11-25T08:00:00+08:00)")
	doses := fs.Int("doses", -1, "vaccine doses (default: as registered)")
	kind := fs.String("kind", "phone", "pass kind: phone (24 h) or paper (180 days)")
	qr := fs.String("qr", "", "also write the pass as a QR code PNG to this file")
	allowBad := fs.Bool("allow-bad-check-digit", false, badCheckDigitUsage)
	if ok, code := e.parseNoArgs(fs, args); !ok {
		return code
	}
	req := district.IssueRequest{Name: *name, IDNumber: *id, Doses: *doses, Actor: cliActor(), AllowBadCheckDigit: *allowBad}
	var err error
	if *color != "" {
		if req.Color, err = pass.ParseColor(*color); err != nil {
			return e.usageError("issue", "%v", err)
		}
	}
	if req.Kind, err = pass.ParseKind(*kind); err != nil {
		return e.usageError("issue", "%v", err)
	}
	if *tested != "" {
		if req.TestedAt, err = time.Parse(time.RFC3339, *tested); err != nil {
			return e.usageError("issue", "--tested-at %q is not an RFC 3339 time such as 2026-11-25T08:00:00+08:00", *tested)
		}
	}
	db, err := e.openDB(ctx, *data, e.stderr)
	if err != nil {
		return e.fail(err)
	}
	defer db.Close()
	iss, err := district.Issue(ctx, db, req)
	if err != nil {
		return e.failID(err)
	}
	if *qr != "" {
		png, _, err := pass.QRPNG(iss.Text, 8)
		if err != nil {
			return e.fail(fmt.Errorf("render QR code: %w", err))
		}
		if err := os.WriteFile(*qr, png, 0o600); err != nil {
			return e.fail(fmt.Errorf("write QR code: %w", err))
		}
	}
	fmt.Fprintln(e.stdout, iss.Text)
	pol, err := db.Policy(ctx)
	if err != nil {
		return e.fail(err)
	}
	// The pass is issued either way; the one who asked for it learns now,
	// not at the gate, that this appliance's gates will refuse it.
	if r := check.Judge(pol, &iss.Claims, db.Now()); r != check.ReasonOK {
		fmt.Fprintf(e.stderr, "passgate issue: %s\n", refusalText(r))
	}
	return exitOK
}
