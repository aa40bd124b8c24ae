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
	Subject pass.Subject
	// Also are the person's other subjects (store.TraceQuery.Also).
	Also     []pass.Subject
	From, To time.Time     // the person's checks in [From, To)
	Window   time.Duration // ±window around each check
	Format   Format        // "" when only the page is wanted
	Location *time.Location
	// Limit caps each part of the result below store.MaxTraceRows; 0 is
	// that maximum. Tests use it to cut small traces.
	Limit int
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
	return store.TraceQuery{Subject: r.Subject, Also: r.Also, From: r.From, To: r.To, Window: r.Window, Limit: r.Limit}
}

func (r *TraceRequest) loc() *time.Location {
	if r.Location != nil {
		return r.Location
	}
	return defaultZone()
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

// A trace download holds three tables, in this order: the checks with
// their contacts, one row per contact (the per-contact summary), and one
// row saying whether the result is complete. CSV separates them with a
// blank line and a header of their own, XLSX puts each on a sheet
// ("trace", "contacts", "result"), JSON Lines tells them apart by "type"
// ("check", "contact", "result").
//
// traceColumns: one row per contact of a check, and one row with empty
// contact columns for a check without contacts listed, so every check of
// the person appears. contacts_truncated says the check's contacts were
// cut at the row limit and contacts_not_listed how many are missing: an
// empty contact with contacts_truncated false is a check nobody was
// near. The offset is written as its size with a separate earlier flag
// rather than signed: every CSV and XLSX cell starting with "-" is
// neutralised as a possible formula, and "'-600" would read badly in
// Excel. contact_name and contact_id_tail are the masked name and last
// four characters of the ID number of a contact in the district's
// register, empty for anyone else.
var traceColumns = []column{
	{name: "check_time"}, {name: "source"}, {name: "check_decision"}, {name: "check_reason"}, {name: "pass_id"},
	{name: "contacts_truncated", typ: cellBool}, {name: "contacts_not_listed", typ: cellNumber},
	{name: "contact_subject"}, {name: "contact_name"}, {name: "contact_id_tail"},
	{name: "contact_time"}, {name: "contact_earlier", typ: cellBool},
	{name: "offset_seconds", typ: cellNumber}, {name: "contact_decision"},
	// Where each check is in the log of the appliance that made it (at a
	// hub: the appliance's scan id and epoch).
	{name: "appliance_scan_id", typ: cellNumber}, {name: "epoch"},
	{name: "contact_appliance_scan_id", typ: cellNumber}, {name: "contact_epoch"},
}

// traceContactColumns: one row per contact over the listed rows, most
// co-locations first: how many of the person's checks they were near,
// their first and last check near one, and the places.
var traceContactColumns = []column{
	{name: "contact_subject"}, {name: "contact_name"}, {name: "contact_id_tail"},
	{name: "overlaps", typ: cellNumber}, {name: "first_time"}, {name: "last_time"}, {name: "places"},
}

// traceResultColumns: the one row that says whether the result is
// complete and, when it was cut at row_limit, how much is not listed.
var traceResultColumns = []column{
	{name: "truncated", typ: cellBool}, {name: "row_limit", typ: cellNumber},
	{name: "checks", typ: cellNumber}, {name: "checks_not_listed", typ: cellNumber},
	{name: "contact_rows", typ: cellNumber}, {name: "contact_rows_not_listed", typ: cellNumber},
	{name: "contacts", typ: cellNumber}, {name: "note"},
}

// Section names of a trace download.
const (
	traceSheet, traceContactsSheet, traceResultSheet  = "trace", "contacts", "result"
	traceCheckType, traceContactType, traceResultType = "check", "contact", "result"
)

// WriteTrace writes res as r.Format with the export writers: CSV with
// BOM and CRLF, XLSX with string cells, JSON Lines with the schema
// version; CSV and XLSX cells neutralised against formulas.
func WriteTrace(w io.Writer, r *TraceRequest, res *store.TraceResult) error {
	var rw rowWriter
	contacts, result := traceContactType, traceResultType
	switch r.Format {
	case CSV:
		rw = newCSVWriter(w)
	case JSONL:
		j := newJSONLWriter(w)
		j.typed(traceCheckType)
		rw = j
	case XLSX:
		x := newXLSXWriter(w, traceSheet)
		defer x.abort()
		rw = x
		contacts, result = traceContactsSheet, traceResultSheet
	default:
		return &TraceError{"format", fmt.Sprintf("unknown format %q", r.Format)}
	}
	enc := &encoder{loc: r.loc()}
	if err := writeTraceChecks(rw, enc, res); err != nil {
		return err
	}
	if err := writeTraceContacts(rw, contacts, enc, res); err != nil {
		return err
	}
	if err := rw.section(result, traceResultColumns); err != nil {
		return err
	}
	if err := rw.row(traceResultRow(res)); err != nil {
		return err
	}
	return rw.finish()
}

// writeTraceChecks writes the first table: every check with its
// contacts, each check's truncation on each of its rows.
func writeTraceChecks(rw rowWriter, enc *encoder, res *store.TraceResult) error {
	if err := rw.begin(traceColumns); err != nil {
		return err
	}
	c := make([]string, len(traceColumns))
	for _, ch := range res.Checks {
		c[0], c[1], c[2], c[3], c[4] = enc.time(ch.At), ch.Source, ch.Decision, ch.Reason, hexOrEmpty(ch.PassID[:])
		c[5], c[6] = boolText(ch.ContactsOmitted > 0), strconv.Itoa(ch.ContactsOmitted)
		if len(ch.Contacts) == 0 {
			clear(c[7:])
			c[14], c[15] = strconv.FormatInt(ch.ApplianceScanID, 10), hex.EncodeToString(ch.Epoch)
			if err := rw.row(c); err != nil {
				return err
			}
			continue
		}
		for _, ct := range ch.Contacts {
			c[7], c[8], c[9], c[10] = hex.EncodeToString(ct.Subject[:]), ct.MaskedName, ct.IDTail, enc.time(ct.At)
			off := ct.Offset
			if off < 0 {
				off = -off
			}
			c[11], c[12], c[13] = boolText(ct.Offset < 0), strconv.FormatFloat(off.Seconds(), 'f', -1, 64), ct.Decision
			c[14], c[15] = strconv.FormatInt(ch.ApplianceScanID, 10), hex.EncodeToString(ch.Epoch)
			c[16], c[17] = strconv.FormatInt(ct.ApplianceScanID, 10), hex.EncodeToString(ct.Epoch)
			if err := rw.row(c); err != nil {
				return err
			}
		}
	}
	return nil
}

// writeTraceContacts writes the per-contact summary as the section name.
func writeTraceContacts(rw rowWriter, name string, enc *encoder, res *store.TraceResult) error {
	if err := rw.section(name, traceContactColumns); err != nil {
		return err
	}
	c := make([]string, len(traceContactColumns))
	for _, s := range res.Contacts {
		c[0], c[1], c[2], c[3] = hex.EncodeToString(s.Subject[:]), s.MaskedName, s.IDTail, strconv.Itoa(s.Overlaps)
		c[4], c[5], c[6] = enc.time(s.First), enc.time(s.Last), strings.Join(s.Places, ", ")
		if err := rw.row(c); err != nil {
			return err
		}
	}
	return nil
}

// traceResultRow is the row saying whether res is complete, with a note
// for people (Chinese first, English second, as on the pages).
func traceResultRow(res *store.TraceResult) []string {
	note := "完整：所有核验与接触记录均已列出。 Complete: every check and contact row is listed."
	if res.Truncated {
		note = fmt.Sprintf("结果已截断（每部分上限 %d 行）：另有 %d 次核验、%d 条接触记录未列出，接触者汇总只含已列出的记录；请缩小时间范围或窗口。"+
			" Truncated at %d rows per part: %d more checks and %d more contact rows are not listed, and the contact summary covers only the rows listed; narrow the range or the window.",
			res.Limit, res.ChecksOmitted, res.RowsOmitted, res.Limit, res.ChecksOmitted, res.RowsOmitted)
	}
	return []string{boolText(res.Truncated), strconv.Itoa(res.Limit),
		strconv.Itoa(len(res.Checks)), strconv.Itoa(res.ChecksOmitted),
		strconv.Itoa(res.ContactRows), strconv.Itoa(res.RowsOmitted),
		strconv.Itoa(len(res.Contacts)), note}
}

// AuditTrace records a tracing query in the audit trail: who traced which
// pseudonym (never the ID number) over which range and window, how much
// came back, and the download format if any.
func AuditTrace(ctx context.Context, db *store.DB, actor store.Actor, r *TraceRequest, res *store.TraceResult) error {
	_, err := AuditTraceRecord(ctx, db, actor, r, res, nil)
	return err
}

// AuditTraceRecord is AuditTrace with more detail (a second-degree
// trace names the first), returning the record's seq so that what is
// done with the result can name the trace that led to it.
func AuditTraceRecord(ctx context.Context, db *store.DB, actor store.Actor, r *TraceRequest, res *store.TraceResult, extra map[string]any) (int64, error) {
	d := map[string]any{
		"from": r.From.UTC().Format(time.RFC3339), "to": r.To.UTC().Format(time.RFC3339),
		"window_minutes": int(r.Window / time.Minute), "format": r.Format,
		"checks": len(res.Checks), "contacts": len(res.Contacts), "contact_rows": res.ContactRows,
		"truncated": res.Truncated, "checks_not_listed": res.ChecksOmitted, "contact_rows_not_listed": res.RowsOmitted,
	}
	if len(r.Also) > 0 {
		also := make([]string, len(r.Also))
		for i, s := range r.Also {
			also[i] = hex.EncodeToString(s[:])
		}
		d["also_subjects"] = also
	}
	for k, v := range extra {
		d[k] = v
	}
	rec := &store.AuditRecord{
		Actor: actor, Action: store.AuditTrace, Subject: hex.EncodeToString(r.Subject[:]), Detail: store.AuditDetail(d),
	}
	if err := db.Audit(ctx, rec); err != nil {
		return 0, err
	}
	return rec.Seq, nil
}
