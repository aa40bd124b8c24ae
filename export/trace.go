package export

import (
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"passgate/pass"
	"passgate/store"
)

// Bounds of a tracing query.
const (
	// MaxTraceRange is the longest range of a person's checks one query
	// may cover.
	MaxTraceRange = 366 * 24 * time.Hour
	// MinTraceWindow and MaxTraceWindow bound the ±window around each
	// check: under a minute is below what gate clocks agree on, over a
	// day is no longer "at the same time".
	MinTraceWindow = time.Minute
	MaxTraceWindow = 24 * time.Hour
)

// TraceRequest is one contact-tracing query and the format of its
// download. It holds the subject pseudonym, never the ID number.
type TraceRequest struct {
	Subject  pass.Subject
	From, To time.Time     // the person's checks in [From, To)
	Window   time.Duration // ±window around each check
	Format   Format        // "" when only the page is wanted
	Location *time.Location
}

// TraceError is a validation error of one field of a TraceRequest
// ("from", "to", "window", "format"); it wraps ErrInvalid.
type TraceError struct {
	Field string
	Msg   string
}

func (e *TraceError) Error() string { return ErrInvalid.Error() + ": " + e.Field + ": " + e.Msg }

// Unwrap makes errors.Is(err, ErrInvalid) hold.
func (e *TraceError) Unwrap() error { return ErrInvalid }

// ParseWindow parses a contact window: a Go duration ("15m", "1h30m") or
// a whole number of minutes ("15"). Bounds are checked by Validate.
func ParseWindow(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if len(s) > 32 {
		return 0, &TraceError{"window", "too long"}
	}
	if n, err := strconv.Atoi(s); err == nil {
		if n < 0 || n > int(MaxTraceWindow/time.Minute)+1 {
			return 0, &TraceError{"window", fmt.Sprintf("must be from %v to %v", MinTraceWindow, MaxTraceWindow)}
		}
		return time.Duration(n) * time.Minute, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, &TraceError{"window", fmt.Sprintf("%q is not a duration such as 15m or a number of minutes", s)}
	}
	return d, nil
}

// Validate checks r; every error is a *TraceError.
func (r *TraceRequest) Validate() error {
	switch {
	case r.From.IsZero():
		return &TraceError{"from", "is required"}
	case r.To.IsZero():
		return &TraceError{"to", "is required"}
	case !r.From.Before(r.To):
		return &TraceError{"to", fmt.Sprintf("%s is not after from %s", r.To.Format(time.RFC3339), r.From.Format(time.RFC3339))}
	case r.To.Sub(r.From) > MaxTraceRange:
		return &TraceError{"to", fmt.Sprintf("a range of %d days is longer than the %d allowed",
			int(r.To.Sub(r.From).Hours()/24), int(MaxTraceRange.Hours()/24))}
	case r.Window < MinTraceWindow || r.Window > MaxTraceWindow:
		return &TraceError{"window", fmt.Sprintf("%v is outside %v to %v", r.Window, MinTraceWindow, MaxTraceWindow)}
	case r.Format != "" && !known(Formats, r.Format):
		return &TraceError{"format", fmt.Sprintf("unknown format %q (want csv, xlsx or jsonl)", r.Format)}
	}
	return nil
}

// Query is the store query of r.
func (r *TraceRequest) Query() store.TraceQuery {
	return store.TraceQuery{Subject: r.Subject, From: r.From, To: r.To, Window: r.Window}
}

func (r *TraceRequest) loc() *time.Location {
	if r.Location != nil {
		return r.Location
	}
	return time.Local
}

// TraceFileName is the download's name: district, "trace", the range and
// the window, e.g. "雁塔区_trace_20261101-20261114_15m.csv". It carries
// no identifier of the person: file names end up in mail and chat.
func TraceFileName(district string, r *TraceRequest) string {
	loc := r.loc()
	last := r.To.Add(-time.Millisecond)
	return fmt.Sprintf("%s_trace_%s-%s_%dm.%s", safeName(district),
		r.From.In(loc).Format("20060102"), last.In(loc).Format("20060102"), int(r.Window/time.Minute), r.Format)
}

// traceColumns are the columns of a trace download: one row per contact
// of a check, and one row with empty contact columns for a check nobody
// was near, so every check of the person appears. The offset is written
// as its size with a separate earlier flag rather than signed: every CSV
// and XLSX cell starting with "-" is neutralised as a possible formula,
// and "'-600" would read badly in Excel.
var traceColumns = []column{
	{name: "check_time"}, {name: "source"}, {name: "check_decision"}, {name: "check_reason"}, {name: "pass_id"},
	{name: "contact_subject"}, {name: "contact_time"}, {name: "contact_earlier", typ: cellBool},
	{name: "offset_seconds"}, {name: "contact_decision"},
}

// WriteTrace writes res as r.Format with the export writers: CSV with
// BOM and CRLF, XLSX with string cells, JSON Lines with the schema
// version; CSV and XLSX cells neutralised against formulas.
func WriteTrace(w io.Writer, r *TraceRequest, res *store.TraceResult) error {
	var rw rowWriter
	switch r.Format {
	case CSV:
		rw = newCSVWriter(w)
	case JSONL:
		rw = newJSONLWriter(w)
	case XLSX:
		x := newXLSXWriter(w, "trace")
		defer x.abort()
		rw = x
	default:
		return &TraceError{"format", fmt.Sprintf("unknown format %q", r.Format)}
	}
	if err := rw.begin(traceColumns); err != nil {
		return err
	}
	enc := &encoder{loc: r.loc(), cells: make([]string, len(traceColumns))}
	for _, ch := range res.Checks {
		c := enc.cells
		c[0], c[1], c[2], c[3], c[4] = enc.time(ch.At), ch.Source, ch.Decision, ch.Reason, hexOrEmpty(ch.PassID[:])
		if len(ch.Contacts) == 0 {
			c[5], c[6], c[7], c[8], c[9] = "", "", "", "", ""
			if err := rw.row(c); err != nil {
				return err
			}
			continue
		}
		for _, ct := range ch.Contacts {
			c[5], c[6] = hex.EncodeToString(ct.Subject[:]), enc.time(ct.At)
			off := ct.Offset
			if off < 0 {
				off = -off
			}
			c[7], c[8], c[9] = boolText(ct.Offset < 0), strconv.FormatFloat(off.Seconds(), 'f', -1, 64), ct.Decision
			if err := rw.row(c); err != nil {
				return err
			}
		}
	}
	return rw.finish()
}

// AuditTrace records a tracing query in the audit trail: who traced which
// pseudonym (never the ID number) over which range and window, how much
// came back, and the download format if any.
func AuditTrace(ctx context.Context, db *store.DB, actor string, r *TraceRequest, res *store.TraceResult) error {
	return db.Audit(ctx, &store.AuditRecord{
		Actor: actor, Action: store.AuditTrace, Subject: hex.EncodeToString(r.Subject[:]),
		Detail: store.AuditDetail(map[string]any{
			"from": r.From.UTC().Format(time.RFC3339), "to": r.To.UTC().Format(time.RFC3339),
			"window_minutes": int(r.Window / time.Minute), "format": r.Format,
			"checks": len(res.Checks), "contacts": len(res.Contacts), "contact_rows": res.ContactRows,
			"truncated": res.Truncated,
		}),
	})
}
