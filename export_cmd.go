package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"passgate/export"
)

// cmdExport writes the scan log, passes issued, status changes or audit
// trail of a time range to a CSV, XLSX or JSON Lines file. The file is
// written under a temporary name and renamed when complete, so an
// interrupted export (Ctrl-C cancels it) leaves nothing that looks
// finished.
func cmdExport(ctx context.Context, e *env, args []string) int {
	r, data, out, code, ok := e.exportRequest(ctx, args)
	if !ok {
		return code
	}
	db, err := e.openDB(ctx, data, e.stderr)
	if err != nil {
		return e.fail(err)
	}
	defer db.Close()
	path := out
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
	var n int64
	err = e.writeOutput(path, func(w io.Writer) (err error) {
		n, err = export.Run(ctx, db, w, r, progress)
		return err
	})
	if errors.Is(err, context.Canceled) {
		err = errors.New("export cancelled")
	}
	if err != nil {
		return e.fail(fmt.Errorf("export: %w", err))
	}
	if err := export.Audit(ctx, db, cliActor(), r, n); err != nil {
		return e.fail(fmt.Errorf("export: audit: %w", err))
	}
	if path == "-" {
		fmt.Fprintf(e.stderr, "passgate: exported %d rows\n", n)
	} else {
		fmt.Fprintf(e.stderr, "passgate: exported %d rows to %s\n", n, path)
	}
	return exitOK
}

// exportRequest reads export's flags into a validated request; ok is
// false (with the exit code) on a usage error.
func (e *env) exportRequest(ctx context.Context, args []string) (r *export.Request, data, out string, code int, ok bool) {
	fs, dataFlag := e.newFlags("export", "--kind scans|passes|status|audit --format csv|xlsx|jsonl [--from T] [--to T] [flags]")
	kind := fs.String("kind", "scans", "what to export: scans, passes, status or audit (the audit trail)")
	format := fs.String("format", "csv", "file format: csv (Excel, UTF-8 with BOM), xlsx or jsonl")
	tr := addRangeFlags(fs, " (default: 30 days before --to)", " (default: the start of tomorrow)")
	source := fs.String("source", "", "scans only: only this source (gate device or input name)")
	decision := fs.String("decision", "", "scans only: allow or deny")
	reason := fs.String("reason", "", "scans and status changes: only this reason; audit: only this action (login, login_failed, user_created, user_disabled, user_enabled, user_role, user_password, status_changed, pass_issued, policy_changed, export, trace, purge)")
	outFlag := fs.String("out", "", "output file, - for standard output (default: <district>_<kind>_<from>-<to>.<format> in the current directory)")
	if ok, code := e.parseNoArgs(fs, args); !ok {
		return nil, "", "", code, false
	}
	// Dates are the district's, whatever zone this machine is set to.
	loc, err := districtLocation(ctx, e, *dataFlag)
	if err != nil {
		return nil, "", "", e.fail(err), false
	}
	r = &export.Request{
		Kind: export.Kind(*kind), Format: export.Format(*format),
		Source: *source, Decision: *decision, Reason: *reason,
		Location: loc,
	}
	tomorrow := func() time.Time {
		y, m, d := time.Now().In(loc).Date()
		return time.Date(y, m, d+1, 0, 0, 0, 0, loc)
	}
	if r.From, r.To, err = tr.parse(loc, tomorrow, func(to time.Time) time.Time { return to.AddDate(0, 0, -30) }); err == nil {
		err = r.Validate()
	}
	if err != nil {
		return nil, "", "", e.usageError("export", "%v", trimInvalid(err)), false
	}
	return r, *dataFlag, *outFlag, exitOK, true
}

// rangeFlags are the --from and --to flags of the commands that read a
// time range (export, trace).
type rangeFlags struct{ from, to *string }

// addRangeFlags declares --from and --to on fs; the notes follow their
// usage (what an empty flag means).
func addRangeFlags(fs *flag.FlagSet, fromNote, toNote string) rangeFlags {
	return rangeFlags{
		from: fs.String("from", "", "start of the range, included: a date (2026-11-01, midnight in the district's time zone: passgate policy --time-zone) or an RFC 3339 time"+fromNote),
		to:   fs.String("to", "", "end of the range, excluded: a date or an RFC 3339 time"+toNote),
	}
}

// parse reads the range, dates as midnight in loc (the district's zone);
// an empty --to is defaultTo(), an empty --from defaultFrom(to); without
// a default, empty is an error.
func (f rangeFlags) parse(loc *time.Location, defaultTo func() time.Time, defaultFrom func(to time.Time) time.Time) (from, to time.Time, err error) {
	if *f.to == "" && defaultTo != nil {
		to = defaultTo()
	} else if to, err = export.ParseTime("--to", *f.to, loc); err != nil {
		return from, to, err
	}
	if *f.from == "" && defaultFrom != nil {
		return defaultFrom(to), to, nil
	}
	from, err = export.ParseTime("--from", *f.from, loc)
	return from, to, err
}

// writeOutput writes through fn to standard output when path is "-",
// else to the file path, which appears complete or not at all.
func (e *env) writeOutput(path string, fn func(io.Writer) error) error {
	if path == "-" {
		return fn(e.stdout)
	}
	return writeFileAtomic(path, fn)
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
