// Package export writes the appliance's records (the scan log, passes
// issued, status changes, the audit trail) as CSV, XLSX or JSON Lines for a district's
// offices.
//
// An export streams: it opens one read snapshot of the database, counts
// the matching rows for progress, then iterates them with constant memory
// and writes each row as it comes. Scans logged meanwhile are neither
// blocked nor included. Every cell of CSV and XLSX output is neutralised
// against formula injection (see Neutralise); times are RFC 3339 in the
// requested zone with an explicit offset.
package export

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"passgate/pass"
	"passgate/store"
)

// Kind is what is exported.
type Kind string

// Kinds.
const (
	KindScans  Kind = "scans"
	KindPasses Kind = "passes"
	KindStatus Kind = "status"
	KindAudit  Kind = "audit"
)

// Kinds lists the kinds in the order forms offer them.
var Kinds = []Kind{KindScans, KindPasses, KindStatus, KindAudit}

// Format is the file format.
type Format string

// Formats.
const (
	CSV   Format = "csv"
	XLSX  Format = "xlsx"
	JSONL Format = "jsonl"
)

// Formats lists the formats in the order forms offer them.
var Formats = []Format{CSV, XLSX, JSONL}

// ContentType is the media type of f.
func (f Format) ContentType() string {
	switch f {
	case CSV:
		return "text/csv; charset=utf-8"
	case XLSX:
		return "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
	case JSONL:
		return "application/jsonl; charset=utf-8"
	}
	return "application/octet-stream"
}

// MaxWindow is the longest time range one export may cover.
const MaxWindow = 400 * 24 * time.Hour

// ErrInvalid marks a request that is wrong as asked: an unknown kind or
// format, a bad or reversed time range, a filter that does not apply.
var ErrInvalid = errors.New("invalid export request")

// Request is one export.
type Request struct {
	Kind     Kind
	Format   Format
	From, To time.Time // [From, To); both required
	Source   string    // scans only
	Decision string    // scans only: allow or deny
	// Reason is the exact reason of scans and status changes, and the
	// exact action code (store.AuditActions) of audit records: the one
	// free-text filter of each kind, so forms and the CLI need no field
	// that only one kind uses.
	Reason string
	// Location is the zone times are written in; nil means the district's
	// default zone (store.DefaultTimeZone), never the server's.
	Location *time.Location
}

// ParseTime parses an RFC 3339 time or a date (2006-01-02, midnight in
// loc). name is used in the error, which wraps ErrInvalid.
func ParseTime(name, s string, loc *time.Location) (time.Time, error) {
	if loc == nil {
		loc = defaultZone()
	}
	s = strings.TrimSpace(s)
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if t, err := time.ParseInLocation(time.DateOnly, s, loc); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("%w: %s %q is neither a date (2026-11-01) nor an RFC 3339 time (2026-11-01T08:00:00+08:00)", ErrInvalid, name, s)
}

// Validate checks r; its error wraps ErrInvalid and reads as one line.
func (r *Request) Validate() error {
	if !known(Kinds, r.Kind) {
		return fmt.Errorf("%w: unknown kind %q (want scans, passes, status or audit)", ErrInvalid, r.Kind)
	}
	if !known(Formats, r.Format) {
		return fmt.Errorf("%w: unknown format %q (want csv, xlsx or jsonl)", ErrInvalid, r.Format)
	}
	switch {
	case r.From.IsZero() || r.To.IsZero():
		return fmt.Errorf("%w: both from and to are required", ErrInvalid)
	case !r.From.Before(r.To):
		return fmt.Errorf("%w: from %s is not before to %s", ErrInvalid, r.From.Format(time.RFC3339), r.To.Format(time.RFC3339))
	case r.To.Sub(r.From) > MaxWindow:
		return fmt.Errorf("%w: a range of %d days is longer than the %d allowed", ErrInvalid,
			int(r.To.Sub(r.From).Hours()/24), int(MaxWindow.Hours()/24))
	}
	if r.Kind != KindScans && (r.Source != "" || r.Decision != "") {
		return fmt.Errorf("%w: source and decision filters apply to scans only", ErrInvalid)
	}
	if r.Kind == KindPasses && r.Reason != "" {
		return fmt.Errorf("%w: the reason filter applies to scans and status changes only", ErrInvalid)
	}
	if r.Kind == KindAudit && r.Reason != "" && !known(store.AuditActions, r.Reason) {
		return fmt.Errorf("%w: unknown audit action %q (want one of %s)", ErrInvalid, r.Reason, strings.Join(store.AuditActions, ", "))
	}
	if r.Decision != "" && r.Decision != "allow" && r.Decision != "deny" {
		return fmt.Errorf("%w: unknown decision %q (want allow or deny)", ErrInvalid, r.Decision)
	}
	if len(r.Source) > 128 || len(r.Reason) > 128 {
		return fmt.Errorf("%w: filter too long", ErrInvalid)
	}
	return nil
}

func known[T comparable](list []T, v T) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

// defaultZone is the zone of a request that names none: the district
// default, so a file never depends on the zone its server runs in.
func defaultZone() *time.Location { return (*store.Policy)(nil).Location() }

func (r *Request) loc() *time.Location {
	if r.Location != nil {
		return r.Location
	}
	return defaultZone()
}

// FileName is the export's file name: district, kind and time range
// (dates in the request's zone; the end date is the last day included),
// e.g. "雁塔区_scans_20261101-20261130.csv". Characters that file systems
// refuse are replaced with '_'.
func FileName(district string, r *Request) string {
	loc := r.loc()
	last := r.To.Add(-time.Millisecond)
	name := fmt.Sprintf("%s_%s_%s-%s.%s", safeName(district), r.Kind,
		r.From.In(loc).Format("20060102"), last.In(loc).Format("20060102"), r.Format)
	return name
}

func safeName(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || strings.ContainsRune(`/\:*?"<>|`, r) {
			return '_'
		}
		return r
	}, strings.TrimSpace(s))
	if s == "" {
		return "passgate"
	}
	return s
}

// ContentDisposition is an attachment header value for name that
// downloads correctly in every current browser: filename*= with the UTF-8
// name percent-encoded (RFC 6266, RFC 5987), which browsers prefer, and
// filename= with an ASCII fallback for older clients: the name without
// its non-ASCII characters ("雁塔区_scans_….csv" → "scans_….csv").
func ContentDisposition(name string) string {
	ascii := strings.Map(func(r rune) rune {
		switch {
		case r < 0x20 || r > 0x7e:
			return -1
		case r == '"' || r == '\\':
			return '_'
		}
		return r
	}, name)
	ascii = strings.TrimLeft(ascii, "_")
	if ascii == "" || ascii[0] == '.' {
		ascii = "export" + ascii
	}
	return fmt.Sprintf(`attachment; filename="%s"; filename*=UTF-8''%s`, ascii, rfc5987(name))
}

// rfc5987 percent-encodes every byte of s that is not an attr-char of
// RFC 5987.
func rfc5987(s string) string {
	const attrChar = "!#$&+-.^_`|~"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte(attrChar, c) >= 0 {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte("0123456789ABCDEF"[c>>4])
		b.WriteByte("0123456789ABCDEF"[c&0xf])
	}
	return b.String()
}

// Progress is told how many rows were written out of how many the
// snapshot holds. It is called at the start, every progressEvery rows and
// at the end.
type Progress func(done, total int64)

const progressEvery = 4096

// Run writes the export r to w and returns the number of data rows. It
// validates r first (errors wrap ErrInvalid). Cancelling ctx stops it
// with ctx's error; what was written to w until then is incomplete.
func Run(ctx context.Context, db *store.DB, w io.Writer, r *Request, progress Progress) (int64, error) {
	if err := r.Validate(); err != nil {
		return 0, err
	}
	snap, err := db.BeginSnapshot(ctx)
	if err != nil {
		return 0, err
	}
	defer snap.Close()

	k := kinds[r.Kind]
	f := store.ExportFilter{Since: r.From, Until: r.To, Source: r.Source, Decision: r.Decision, Reason: r.Reason}
	total, err := k.count(snap, ctx, f)
	if err != nil {
		return 0, err
	}
	if progress == nil {
		progress = func(int64, int64) {}
	}
	progress(0, total)

	var rw rowWriter
	switch r.Format {
	case CSV:
		rw = newCSVWriter(w)
	case JSONL:
		rw = newJSONLWriter(w)
	case XLSX:
		x := newXLSXWriter(w, string(r.Kind))
		defer x.abort()
		rw = x
	}
	if err := rw.begin(k.columns); err != nil {
		return 0, err
	}
	enc := &encoder{loc: r.loc(), cells: make([]string, len(k.columns))}
	var n int64
	err = k.each(ctx, snap, f, enc, func(cells []string) error {
		if err := rw.row(cells); err != nil {
			return err
		}
		n++
		if n%progressEvery == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
			progress(n, total)
		}
		return nil
	})
	if err == nil {
		err = ctx.Err()
	}
	if err != nil {
		return n, err
	}
	if err := rw.finish(); err != nil {
		return n, err
	}
	progress(n, total)
	return n, nil
}

// kindDef defines one export kind: its columns and how to count and
// iterate its rows. A new kind is one more entry in kinds with a
// snapshot query of its own.
type kindDef struct {
	columns []column
	count   func(*store.Snapshot, context.Context, store.ExportFilter) (int64, error)
	each    func(context.Context, *store.Snapshot, store.ExportFilter, *encoder, func([]string) error) error
}

// encoder turns stored values into cells; cells is reused for every row.
type encoder struct {
	loc   *time.Location
	cells []string
	buf   [64]byte
}

func (e *encoder) time(t time.Time) string {
	return string(t.In(e.loc).AppendFormat(e.buf[:0], "2006-01-02T15:04:05.000Z07:00"))
}

// hexOrEmpty writes an identifier as lower-case hex; an all-zero one
// (unknown) as "".
func hexOrEmpty(b []byte) string {
	for _, c := range b {
		if c != 0 {
			return hex.EncodeToString(b)
		}
	}
	return ""
}

func colorName(c pass.Color) string {
	if c == 0 {
		return ""
	}
	return c.String()
}

func boolText(b bool) string {
	if b {
		return "true"
	}
	return "false"
}

var kinds = map[Kind]kindDef{
	KindAudit: auditKind,
	KindScans: {
		columns: []column{{name: "time"}, {name: "source"}, {name: "decision"}, {name: "reason"},
			{name: "repeat", typ: cellBool}, {name: "pass_id"}, {name: "subject"}, {name: "issuer_key"}, {name: "appliance"},
			// The scan's id in its appliance's log and, at a hub, the
			// appliance's epoch it belongs to: together they find the row
			// in the appliance's own log.
			{name: "appliance_scan_id", typ: cellNumber}, {name: "epoch"}},
		count: (*store.Snapshot).CountScans,
		each: func(ctx context.Context, s *store.Snapshot, f store.ExportFilter, e *encoder, emit func([]string) error) error {
			return s.EachScan(ctx, f, func(sc *store.Scan) error {
				c := e.cells
				c[0], c[1], c[2], c[3] = e.time(sc.At), sc.Source, sc.Decision, sc.Reason
				c[4], c[5], c[6], c[7] = boolText(sc.Repeat), hexOrEmpty(sc.PassID[:]), hexOrEmpty(sc.Subject[:]), hexOrEmpty(sc.KID[:])
				c[8], c[9], c[10] = sc.Appliance, strconv.FormatInt(sc.ID, 10), hexOrEmpty(sc.Epoch[:])
				return emit(c)
			})
		},
	},
	KindPasses: {
		columns: []column{{name: "issued"}, {name: "pass_id"}, {name: "subject"}, {name: "kind"},
			{name: "color"}, {name: "expires"}, {name: "issuer_key"}, {name: "actor"}, {name: "appliance"}},
		count: (*store.Snapshot).CountPasses,
		each: func(ctx context.Context, s *store.Snapshot, f store.ExportFilter, e *encoder, emit func([]string) error) error {
			return s.EachPass(ctx, f, func(p *store.IssuedPass) error {
				c := e.cells
				c[0], c[1], c[2], c[3] = e.time(p.IssuedAt), hexOrEmpty(p.ID[:]), hexOrEmpty(p.Subject[:]), p.Kind.String()
				c[4], c[5], c[6], c[7] = colorName(p.Color), e.time(p.ExpiresAt), hexOrEmpty(p.KID[:]), string(p.Actor)
				c[8] = p.Appliance
				return emit(c)
			})
		},
	},
	KindStatus: {
		columns: []column{{name: "time"}, {name: "subject"}, {name: "from"}, {name: "to"},
			{name: "reason"}, {name: "actor"}, {name: "appliance"}},
		count: (*store.Snapshot).CountStatusChanges,
		each: func(ctx context.Context, s *store.Snapshot, f store.ExportFilter, e *encoder, emit func([]string) error) error {
			return s.EachStatusChange(ctx, f, func(sc *store.StatusChange) error {
				c := e.cells
				c[0], c[1], c[2], c[3] = e.time(sc.At), hexOrEmpty(sc.Subject[:]), colorName(sc.From), colorName(sc.To)
				c[4], c[5], c[6] = sc.Reason, string(sc.Actor), sc.Appliance
				return emit(c)
			})
		},
	},
}

// The audit trail: every column a person needs to check a record, and
// hash, the chain hash, so that a copy can later be compared with the
// appliance's trail (passgate audit verify proves the chain itself).
// The detail JSON and the subject are user-controlled text like any
// other and neutralised in CSV and XLSX, where the detail is its stored
// text (the bytes the chain hash covers). JSON Lines types the record:
// seq a number, detail the JSON value itself (the same value, not the
// same bytes).
var auditKind = kindDef{
	columns: []column{{name: "seq", typ: cellNumber}, {name: "time"}, {name: "actor"}, {name: "action"},
		{name: "subject"}, {name: "detail", typ: cellJSON}, {name: "hash"}, {name: "appliance"}},
	count: (*store.Snapshot).CountAudit,
	each: func(ctx context.Context, s *store.Snapshot, f store.ExportFilter, e *encoder, emit func([]string) error) error {
		return s.EachAudit(ctx, f, func(a *store.AuditRecord) error {
			c := e.cells
			c[0], c[1], c[2], c[3] = strconv.FormatInt(a.Seq, 10), e.time(a.At), string(a.Actor), a.Action
			c[4], c[5], c[6], c[7] = a.Subject, string(a.Detail), hex.EncodeToString(a.Hash), a.Appliance
			return emit(c)
		})
	},
}

// Audit records a finished export in the audit trail: who exported what,
// with which filter, and how many rows left the appliance.
func Audit(ctx context.Context, db *store.DB, actor store.Actor, r *Request, rows int64) error {
	d := auditFilter(r)
	d["rows"] = rows
	return db.Audit(ctx, &store.AuditRecord{
		Actor: actor, Action: store.AuditExport, Subject: string(r.Kind), Detail: store.AuditDetail(d),
	})
}

// AuditStart records that an export is about to begin, before the first
// byte leaves: an export cut short (standard output closed, the process
// killed) leaves no completion record, and must still be on record.
// dest says where it goes ("-" for standard output, a file, "web").
func AuditStart(ctx context.Context, db *store.DB, actor store.Actor, r *Request, dest string) error {
	d := auditFilter(r)
	d["dest"] = dest
	return db.Audit(ctx, &store.AuditRecord{
		Actor: actor, Action: store.AuditExportStarted, Subject: string(r.Kind), Detail: store.AuditDetail(d),
	})
}

// auditFilter is an export's request as its audit records state it.
func auditFilter(r *Request) map[string]any {
	return map[string]any{
		"format": r.Format, "from": r.From.UTC().Format(time.RFC3339), "to": r.To.UTC().Format(time.RFC3339),
		"source": r.Source, "decision": r.Decision, "reason": r.Reason,
	}
}
