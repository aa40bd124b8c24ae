package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"passgate/export"
)

// cmdExport writes the scan log, passes issued, status changes or audit
// trail of a
// time range to a CSV, XLSX or JSON Lines file. The file is written under
// a temporary name and renamed when complete, so an interrupted export
// (Ctrl-C cancels it) leaves nothing that looks finished.
func cmdExport(ctx context.Context, e *env, args []string) int {
	fs, data := e.newFlags("export", "--kind scans|passes|status|audit --format csv|xlsx|jsonl [--from T] [--to T] [flags]")
	kind := fs.String("kind", "scans", "what to export: scans, passes, status or audit (the audit trail)")
	format := fs.String("format", "csv", "file format: csv (Excel, UTF-8 with BOM), xlsx or jsonl")
	from := fs.String("from", "", "start of the range, included: a date (2026-11-01, midnight in the district's time zone: passgate policy --time-zone) or an RFC 3339 time (default: 30 days before --to)")
	to := fs.String("to", "", "end of the range, excluded: a date or an RFC 3339 time (default: the start of tomorrow)")
	source := fs.String("source", "", "scans only: only this source (gate device or input name)")
	decision := fs.String("decision", "", "scans only: allow or deny")
	reason := fs.String("reason", "", "scans and status changes: only this reason; audit: only this action (login, login_failed, user_created, user_disabled, user_enabled, user_role, user_password, status_changed, pass_issued, policy_changed, export, trace, purge)")
	out := fs.String("out", "", "output file, - for standard output (default: <district>_<kind>_<from>-<to>.<format> in the current directory)")
	if ok, code := e.parseNoArgs(fs, args); !ok {
		return code
	}
	// Dates are the district's, whatever zone this machine is set to.
	loc, err := districtLocation(ctx, e, *data)
	if err != nil {
		return e.fail(err)
	}
	r := &export.Request{
		Kind: export.Kind(*kind), Format: export.Format(*format),
		Source: *source, Decision: *decision, Reason: *reason,
		Location: loc,
	}
	if *to == "" {
		y, m, d := time.Now().In(loc).Date()
		r.To = time.Date(y, m, d+1, 0, 0, 0, 0, loc)
	} else if r.To, err = export.ParseTime("--to", *to, loc); err != nil {
		return e.usageError("export", "%v", trimInvalid(err))
	}
	if *from == "" {
		r.From = r.To.AddDate(0, 0, -30)
	} else if r.From, err = export.ParseTime("--from", *from, loc); err != nil {
		return e.usageError("export", "%v", trimInvalid(err))
	}
	if err := r.Validate(); err != nil {
		return e.usageError("export", "%v", trimInvalid(err))
	}

	db, err := e.openDB(ctx, *data, e.stderr)
	if err != nil {
		return e.fail(err)
	}
	defer db.Close()

	path := *out
	if path == "" {
		d, err := db.District(ctx)
		if err != nil {
			return e.fail(err)
		}
		path = export.FileName(d.Name, r)
	}

	var progress export.Progress
	if isTerminal(e.stderr) {
		bar := &progressBar{w: e.stderr, start: time.Now()}
		progress = bar.update
		defer bar.done()
	}

	if err := export.AuditStart(ctx, db, cliActor(), r, path); err != nil {
		return e.fail(fmt.Errorf("export: audit: %w", err))
	}
	if path == "-" {
		n, err := export.Run(ctx, db, e.stdout, r, progress)
		if err != nil {
			return e.fail(fmt.Errorf("export: %w", err))
		}
		if err := export.Audit(ctx, db, cliActor(), r, n); err != nil {
			return e.fail(fmt.Errorf("export: audit: %w", err))
		}
		fmt.Fprintf(e.stderr, "passgate: exported %d rows\n", n)
		return exitOK
	}

	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.part")
	if err != nil {
		return e.fail(fmt.Errorf("export: %w", err))
	}
	committed := false
	defer func() {
		if !committed {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	n, err := export.Run(ctx, db, tmp, r, progress)
	if err == nil {
		err = tmp.Sync()
	}
	if err == nil {
		err = tmp.Close()
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		if errors.Is(err, context.Canceled) {
			err = errors.New("export cancelled")
		}
		return e.fail(fmt.Errorf("export: %w", err))
	}
	committed = true
	if err := export.Audit(ctx, db, cliActor(), r, n); err != nil {
		return e.fail(fmt.Errorf("export: audit: %w", err))
	}
	fmt.Fprintf(e.stderr, "passgate: exported %d rows to %s\n", n, path)
	return exitOK
}

// trimInvalid drops the "invalid export request: " prefix from a
// validation error: the usage line already names the command.
func trimInvalid(err error) string {
	return strings.TrimPrefix(err.Error(), export.ErrInvalid.Error()+": ")
}

// isTerminal reports whether w is a terminal (a character device).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// progressBar draws a one-line bar, redrawn in place at most ten times a
// second.
type progressBar struct {
	w     io.Writer
	start time.Time
	last  time.Time
	drawn bool
}

func (b *progressBar) update(done, total int64) {
	now := time.Now()
	if b.drawn && now.Sub(b.last) < 100*time.Millisecond && done != total {
		return
	}
	b.last, b.drawn = now, true
	const width = 30
	frac := 1.0
	if total > 0 {
		frac = float64(done) / float64(total)
	}
	fill := int(frac * width)
	fmt.Fprintf(b.w, "\r[%s%s] %3.0f%% %d/%d rows %s ", strings.Repeat("#", fill), strings.Repeat(".", width-fill),
		frac*100, done, total, now.Sub(b.start).Truncate(100*time.Millisecond))
}

func (b *progressBar) done() {
	if b.drawn {
		fmt.Fprintln(b.w)
	}
}
