package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"

	"passgate/check"
	"passgate/web/i18n"
)

// refusalText says in Chinese and English that a gate under this
// appliance's policy refuses a pass, and why, with what to do when a test
// result is what is missing.
func refusalText(r check.Reason) string {
	zh, en := i18n.Printer{Lang: i18n.ZH}, i18n.Printer{Lang: i18n.EN}
	msg := fmt.Sprintf("%s / %s (%s)", zh.T("verdict.deny", zh.T("reason."+string(r))), en.T("verdict.deny", en.T("reason."+string(r))), r)
	if r == check.ReasonTestMissing || r == check.ReasonTestTooOld {
		msg += "; " + zh.T("verdict.record_test") + " / " + en.T("verdict.record_test") + ": --tested-at"
	}
	return msg
}

// cmdCheck checks a pass as a gate would and logs the check.
func cmdCheck(ctx context.Context, e *env, args []string) int {
	fs, data := e.newFlags("check", "[PAYLOAD | -]")
	if ok, code := parse(fs, args); !ok {
		return code
	}
	var payload string
	switch {
	case fs.NArg() > 1:
		return e.usageError("check", "give one payload (or - to read it from standard input)")
	case fs.NArg() == 1 && fs.Arg(0) != "-":
		payload = fs.Arg(0)
	default:
		// Read one bounded payload: more than a pass can hold is refused
		// by the check itself as too long.
		b, err := io.ReadAll(io.LimitReader(e.stdin, check.MaxInput+2))
		if err != nil {
			return e.fail(fmt.Errorf("read payload: %w", err))
		}
		payload = string(b)
	}
	db, err := e.openDB(ctx, *data, e.stderr)
	if err != nil {
		return e.fail(err)
	}
	defer db.Close()
	c, err := check.New(ctx, check.Config{DB: db})
	if err != nil {
		return e.fail(err)
	}
	defer c.Close()
	d, err := c.Check(ctx, "cli", payload)
	if err != nil {
		return e.fail(err)
	}
	out, err := json.Marshal(d)
	if err != nil {
		return e.fail(err)
	}
	fmt.Fprintln(e.stdout, string(out))
	if !d.Allowed() {
		return exitDeny
	}
	return exitOK
}
