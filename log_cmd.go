package main

import (
	"context"
	"encoding/json"
	"time"

	"passgate/store"
)

// cmdLog prints the latest logged checks as JSON lines.
func cmdLog(ctx context.Context, e *env, args []string) int {
	fs, data := e.newFlags("log", "[-n N]")
	n := fs.Int("n", 20, "how many of the latest checks")
	if ok, code := parse(fs, args); !ok {
		return code
	}
	if *n < 1 || *n > 100000 {
		return e.usageError("log", "-n must be between 1 and 100000")
	}
	db, err := e.openDB(ctx, *data, e.stderr)
	if err != nil {
		return e.fail(err)
	}
	defer db.Close()
	scans, err := db.FindScans(ctx, store.ScanFilter{Limit: *n})
	if err != nil {
		return e.fail(err)
	}
	enc := json.NewEncoder(e.stdout)
	for _, s := range scans {
		row := map[string]any{
			"scan_id": s.ID, "at": s.At.UTC().Format(time.RFC3339Nano), "source": s.Source,
			"decision": s.Decision, "reason": s.Reason, "repeat": s.Repeat,
		}
		if !s.PassID.IsZero() {
			row["pass_id"], row["subject"], row["issuer_key"] = s.PassID.String(), s.Subject.String(), s.KID.String()
		}
		if err := enc.Encode(row); err != nil {
			return e.fail(err)
		}
	}
	return exitOK
}
