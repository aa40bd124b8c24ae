package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"passgate/district"
	"passgate/export"
	"passgate/store"
	"passgate/web/i18n"
)

// cmdTrace writes the contact trace of one person: every check of theirs
// in a time range and everyone checked at the same source within ±window
// of each. The ID number is turned into the subject pseudonym at once and
// is neither stored nor printed; the query is recorded in the audit trail
// with the pseudonym only.
func cmdTrace(ctx context.Context, e *env, args []string) int {
	fs, data := e.newFlags("trace", "--id ID --from T --to T [--window 15m] [--format csv|xlsx|jsonl] [--out FILE]")
	id := fs.String("id", "", "ID number of the person (mainland ID, passport or other document number); - reads it from standard input, which keeps it out of shell history and the process list")
	tr := addRangeFlags(fs, "", "")
	window := fs.String("window", "15m", "contacts within ± this of each check: a duration (15m) or minutes (15), 1m to 24h")
	format := fs.String("format", "csv", "file format: csv (Excel, UTF-8 with BOM), xlsx or jsonl")
	out := fs.String("out", "-", "output file, - for standard output")
	allowBad := fs.Bool("allow-bad-check-digit", false, badCheckDigitUsage)
	if ok, code := e.parseNoArgs(fs, args); !ok {
		return code
	}
	if *format == string(export.XLSX) && *out == "-" && isTerminal(e.stdout) {
		return e.usageError("trace", "an XLSX workbook is binary: give --out FILE")
	}
	if *tr.from == "" || *tr.to == "" {
		return e.usageError("trace", "--from and --to are required")
	}
	// Dates are the district's, whatever zone this machine is set to.
	loc, err := districtLocation(ctx, e, *data)
	if err != nil {
		return e.fail(err)
	}
	r := &export.TraceRequest{Format: export.Format(*format), Location: loc}
	idNumber, code := e.traceArgs("trace", r, tr, *window, id, *allowBad)
	if code != exitOK {
		return code
	}

	db, err := e.openDB(ctx, *data, e.stderr)
	if err != nil {
		return e.fail(err)
	}
	defer db.Close()
	subjects, err := district.SubjectsOf(ctx, db, idNumber)
	if err != nil {
		return e.fail(fmt.Errorf("trace: %w", err))
	}
	r.Subject, r.Also = subjects[0], subjects[1:]
	res, err := db.Trace(ctx, r.Query())
	if err != nil {
		return e.fail(err)
	}
	if err := export.AuditTrace(ctx, db, cliActor(), r, res); err != nil {
		return e.fail(fmt.Errorf("trace: audit: %w", err))
	}

	if err := e.writeOutput(*out, func(w io.Writer) error { return export.WriteTrace(w, r, res) }); err != nil {
		return e.fail(fmt.Errorf("trace: %w", err))
	}
	note := ""
	if res.Truncated {
		note = fmt.Sprintf(" (truncated at %d rows: %d more checks and %d more contact rows not listed; narrow the range)",
			res.Limit, res.ChecksOmitted, res.RowsOmitted)
	}
	fmt.Fprintf(e.stderr, "passgate: %d checks, %d contacts in %d overlaps%s\n",
		len(res.Checks), len(res.Contacts), res.ContactRows, note)
	return exitOK
}

// trimField drops the "id_number: " prefix of a district field error.
func trimField(err error) string {
	var fe *store.FieldError
	if errors.As(err, &fe) {
		return i18n.Printer{Lang: i18n.EN}.T(fe.Code, fe.Args...)
	}
	return err.Error()
}

// readIDArg replaces an --id of "-" with the first line of standard
// input, which keeps the number out of shell history and the process
// list.
func (e *env) readIDArg(id *string) error {
	if *id != "-" {
		return nil
	}
	line, err := bufio.NewReader(io.LimitReader(e.stdin, 4096)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("read ID number: %w", err)
	}
	*id = strings.TrimRight(line, "\r\n")
	return nil
}

// traceArgs reads the range (in r.Location), window and ID number of a
// trace command into r, validated; it returns the normalised ID number,
// or the exit code of a usage error. The number is checked before any
// database is opened, and an error names the problem, never the number.
func (e *env) traceArgs(name string, r *export.TraceRequest, tr rangeFlags, window string, id *string, allowBad bool) (string, int) {
	var err error
	if r.From, r.To, err = tr.parse(r.Location, nil, nil); err != nil {
		return "", e.usageError(name, "%v", trimInvalid(err))
	}
	if r.Window, err = export.ParseWindow(window); err != nil {
		return "", e.usageError(name, "--%v", trimInvalid(err))
	}
	if err := r.Validate(); err != nil {
		return "", e.usageError(name, "--%v", trimInvalid(err))
	}
	if err := e.readIDArg(id); err != nil {
		return "", e.fail(fmt.Errorf("%s: %w", name, err))
	}
	idNumber, err := district.CheckIDNumber(*id, time.Now(), district.IDOptions(allowBad)...)
	if err != nil {
		if district.IsBadCheckDigit(err) {
			return "", e.usageError(name, "--id: %v; %s", trimField(err), badCheckDigitHint)
		}
		return "", e.usageError(name, "--id: %v", trimField(err))
	}
	return idNumber, exitOK
}
