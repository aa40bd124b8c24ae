package main

import (
	"context"
	"fmt"

	"passgate/district"
	"passgate/pass"
)

// cmdStatus changes a resident's health status, voiding earlier passes.
func cmdStatus(ctx context.Context, e *env, args []string) int {
	fs, data := e.newFlags("status", "--id IDNUMBER --color COLOR --reason TEXT")
	id := fs.String("id", "", "ID or document number of the resident")
	color := fs.String("color", "", "new health colour: green, yellow or red")
	reason := fs.String("reason", "", "why the status changes (kept in the history)")
	allowBad := fs.Bool("allow-bad-check-digit", false, badCheckDigitUsage)
	if ok, code := e.parseNoArgs(fs, args); !ok {
		return code
	}
	if *color == "" {
		return e.usageError("status", "--color is required")
	}
	to, err := pass.ParseColor(*color)
	if err != nil {
		return e.usageError("status", "%v", err)
	}
	db, err := e.openDB(ctx, *data, e.stderr)
	if err != nil {
		return e.fail(err)
	}
	defer db.Close()
	opts := district.IDOptions(*allowBad)
	ch, err := district.SetStatus(ctx, db, *id, to, *reason, cliActor(), opts...)
	if err != nil {
		return e.failID(err)
	}
	from := "none"
	if ch.From.Valid() {
		from = ch.From.String()
	}
	if ch.From == ch.To { // a lost card: only the passes are voided
		fmt.Fprintf(e.stdout, "status stays %s; earlier passes are void\n", ch.To)
		return exitOK
	}
	fmt.Fprintf(e.stdout, "status changed from %s to %s; earlier passes are void\n", from, ch.To)
	return exitOK
}
