package store

import (
	"context"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"passgate/pass"
)

// ExportFilter selects the rows of an export. Fields that do not apply to
// a kind (Source and Decision for passes and status changes) must be
// empty; the export package checks that before it asks.
type ExportFilter struct {
	Since    time.Time // at or after; zero: no bound
	Until    time.Time // strictly before; zero: no bound
	Source   string    // scans: exact source; "" for any
	Decision string    // scans: "allow" or "deny"; "" for any
	Reason   string    // scans and status changes: exact reason; audit: exact action code; "" for any
}

// Snapshot is one read transaction on the read pool. Every count and
// iteration made through it sees the same committed state of the
// database, however much is written meanwhile: in WAL mode a reader keeps
// its snapshot and never blocks the writer (the scan path) nor waits for
// it. Exports use it to count rows for progress, then stream exactly those
// rows. Close it promptly: while it is open the WAL cannot be checkpointed
// past its snapshot.
type Snapshot struct {
	tx *sql.Tx
	// Read by district on first use.
	name *string
	hub  bool
}

// BeginSnapshot opens a snapshot. The snapshot is taken by the first
// query made through it.
func (db *DB) BeginSnapshot(ctx context.Context) (*Snapshot, error) {
	tx, err := db.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, fmt.Errorf("begin snapshot: %w", err)
	}
	// Start the read transaction now, so that the snapshot is the state at
	// BeginSnapshot rather than at whichever query comes first.
	var v int
	if err := tx.QueryRowContext(ctx, "SELECT count(*) FROM district").Scan(&v); err != nil {
		_ = tx.Rollback()
		return nil, fmt.Errorf("begin snapshot: %w", err)
	}
	return &Snapshot{tx: tx}, nil
}

// Close ends the snapshot. It is safe to call more than once.
func (s *Snapshot) Close() error {
	if err := s.tx.Rollback(); err != nil && err != sql.ErrTxDone {
		return fmt.Errorf("close snapshot: %w", err)
	}
	return nil
}

// where builds a WHERE clause for f over a table whose time column is
// atCol; sourceCol, decisionCol and reasonCol are "" when the table has
// no such column (a filter on it is then ErrInvalid).
func (f ExportFilter) where(atCol, sourceCol, decisionCol, reasonCol string) (string, []any, error) {
	var conds []string
	var args []any
	if !f.Since.IsZero() {
		conds = append(conds, atCol+" >= ?")
		args = append(args, f.Since.UnixMilli())
	}
	if !f.Until.IsZero() {
		conds = append(conds, atCol+" < ?")
		args = append(args, f.Until.UnixMilli())
	}
	for _, c := range []struct{ col, val, name string }{
		{sourceCol, f.Source, "source"},
		{decisionCol, f.Decision, "decision"},
		{reasonCol, f.Reason, "reason"},
	} {
		if c.val == "" {
			continue
		}
		if c.col == "" {
			return "", nil, fmt.Errorf("%w: no %s filter for this table", ErrInvalid, c.name)
		}
		conds = append(conds, c.col+" = ?")
		args = append(args, c.val)
	}
	if len(conds) == 0 {
		return "", nil, nil
	}
	return " WHERE " + strings.Join(conds, " AND "), args, nil
}

// count runs a COUNT(*) over table with the filter's clause.
func (s *Snapshot) count(ctx context.Context, op, table, where string, args []any) (int64, error) {
	var n int64
	if err := s.tx.QueryRowContext(ctx, "SELECT count(*) FROM "+table+where, args...).Scan(&n); err != nil {
		return 0, fmt.Errorf("%s: %w", op, err)
	}
	return n, nil
}

// district reads, once per snapshot, this appliance's name and whether
// it is a hub holding enrolled appliances' records: exports then cover
// those too, merged in time order, each row naming its appliance.
func (s *Snapshot) district(ctx context.Context) (name string, hub bool, err error) {
	if s.name == nil {
		var n string
		var h int
		if err := s.tx.QueryRowContext(ctx, `SELECT coalesce((SELECT appliance FROM district WHERE id = 1), ''),
				EXISTS (SELECT 1 FROM appliances)`).Scan(&n, &h); err != nil {
			return "", false, err
		}
		s.name, s.hub = &n, h == 1
	}
	return *s.name, s.hub, nil
}

// countBoth counts a local table's rows and, on a hub, the matching
// records its appliances sent.
func (s *Snapshot) countBoth(ctx context.Context, op, local, localWhere string, localArgs []any,
	remote, remoteWhere string, remoteArgs []any) (int64, error) {
	n, err := s.count(ctx, op, local, localWhere, localArgs)
	if err != nil {
		return 0, err
	}
	_, hub, err := s.district(ctx)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", op, err)
	}
	if !hub {
		return n, nil
	}
	m, err := s.count(ctx, op, remote, remoteWhere, remoteArgs)
	return n + m, err
}

// mergeByTime walks two row sets, each ordered by time, in time order,
// local rows first on a tie. scan loads the current row into its own
// buffer and returns its time; emit hands that buffer on. remote is nil
// when there is none. Memory does not grow with the rows: only the
// current row of each set is held.
func mergeByTime(local, remote *sql.Rows, scanLocal, scanRemote func(*sql.Rows) (int64, error), emitLocal, emitRemote func() error) error {
	next := func(r *sql.Rows, scan func(*sql.Rows) (int64, error)) (int64, bool, error) {
		if r == nil {
			return 0, false, nil
		}
		if !r.Next() {
			return 0, false, r.Err()
		}
		at, err := scan(r)
		return at, err == nil, err
	}
	atL, okL, err := next(local, scanLocal)
	if err != nil {
		return err
	}
	atR, okR, err := next(remote, scanRemote)
	if err != nil {
		return err
	}
	for okL || okR {
		if okL && (!okR || atL <= atR) {
			if err := emitLocal(); err != nil {
				return err
			}
			if atL, okL, err = next(local, scanLocal); err != nil {
				return err
			}
			continue
		}
		if err := emitRemote(); err != nil {
			return err
		}
		if atR, okR, err = next(remote, scanRemote); err != nil {
			return err
		}
	}
	return nil
}

// exportRows is what an export merges by time: the rows made here and,
// on a hub, those its appliances sent (nil elsewhere).
type exportRows struct {
	name          string // this appliance, the source of the local rows
	local, remote *sql.Rows
}

// openExport runs an export's two queries: local over this appliance's
// table, remote over the appliances' records when this is a hub.
func (s *Snapshot) openExport(ctx context.Context, local string, args []any, remote string, dargs []any) (*exportRows, error) {
	name, _, err := s.district(ctx)
	if err != nil {
		return nil, err
	}
	l, err := s.tx.QueryContext(ctx, local, args...)
	if err != nil {
		return nil, err
	}
	r, err := s.remoteRows(ctx, remote, dargs)
	if err != nil {
		l.Close()
		return nil, err
	}
	return &exportRows{name: name, local: l, remote: r}, nil
}

// Close closes both queries.
func (e *exportRows) Close() {
	e.local.Close()
	if e.remote != nil {
		e.remote.Close()
	}
}

// remoteRows runs the query over the enrolled appliances' records on a
// hub, and returns nil rows elsewhere.
func (s *Snapshot) remoteRows(ctx context.Context, query string, args []any) (*sql.Rows, error) {
	_, hub, err := s.district(ctx)
	if err != nil || !hub {
		return nil, err
	}
	return s.tx.QueryContext(ctx, query, args...)
}

// The WHERE clauses of the district tables: an event's reason and audit
// action are fields of its JSON body.
func (f ExportFilter) districtScansWhere() (string, []any, error) {
	return f.where("d.at_ms", "d.source", "d.decision", "d.reason")
}

func (f ExportFilter) districtEventsWhere(kind, reasonField string) (string, []any, error) {
	reasonCol := ""
	if reasonField != "" {
		reasonCol = "json_extract(d.body, '$." + reasonField + "')"
	}
	where, args, err := f.where("d.at_ms", "", "", reasonCol)
	if err != nil {
		return "", nil, err
	}
	if where == "" {
		return " WHERE d.kind = '" + kind + "'", nil, nil
	}
	return where + " AND d.kind = '" + kind + "'", args, nil
}

const districtScanColumns = `a.name, d.seq, d.at_ms, d.source, d.decision, d.reason, d.repeat, d.pass_id, d.subject, d.kid, d.epoch`

// districtFrom joins each record to its appliance's name.
const districtScansFrom = ` FROM district_scans d JOIN appliances a ON a.id = d.appliance_id`
const districtEventsFrom = ` FROM district_events d JOIN appliances a ON a.id = d.appliance_id`

// CountScans counts the scans EachScan would visit.
func (s *Snapshot) CountScans(ctx context.Context, f ExportFilter) (int64, error) {
	where, args, err := f.where("at_ms", "source", "decision", "reason")
	if err != nil {
		return 0, fmt.Errorf("count scans: %w", err)
	}
	dwhere, dargs, err := f.districtScansWhere()
	if err != nil {
		return 0, fmt.Errorf("count scans: %w", err)
	}
	return s.countBoth(ctx, "count scans", "scans", where, args, "district_scans d", dwhere, dargs)
}

// EachScan calls fn for every scan matching f, oldest first (by time,
// then ID), streaming rows: memory does not grow with the number of rows.
// On a hub the scans its appliances sent are merged in by time. The *Scan
// passed to fn is reused between calls. An error from fn stops the
// iteration and is returned as is; so is a cancelled ctx.
func (s *Snapshot) EachScan(ctx context.Context, f ExportFilter, fn func(*Scan) error) error {
	where, args, err := f.where("at_ms", "source", "decision", "reason")
	if err != nil {
		return fmt.Errorf("export scans: %w", err)
	}
	dwhere, dargs, err := f.districtScansWhere()
	if err != nil {
		return fmt.Errorf("export scans: %w", err)
	}
	rows, err := s.openExport(ctx, "SELECT "+scanColumns+" FROM scans"+where+" ORDER BY at_ms, id", args,
		"SELECT "+districtScanColumns+districtScansFrom+dwhere+" ORDER BY d.at_ms, d.id", dargs)
	if err != nil {
		return fmt.Errorf("export scans: %w", err)
	}
	defer rows.Close()
	name, local, remote := rows.name, rows.local, rows.remote
	var (
		sl, sr            Scan
		repeat            int
		passID, subj, kid []byte
		epoch             []byte
		at                int64
	)
	fill := func(sc *Scan) {
		sc.At = time.UnixMilli(at)
		sc.Repeat = repeat != 0
		sc.PassID, sc.Subject, sc.KID = pass.ID{}, pass.Subject{}, pass.KeyID{}
		copy(sc.PassID[:], passID)
		copy(sc.Subject[:], subj)
		copy(sc.KID[:], kid)
	}
	sl.Appliance = name
	err = mergeByTime(local, remote,
		func(r *sql.Rows) (int64, error) {
			if err := r.Scan(&sl.ID, &at, &sl.Source, &sl.Decision, &sl.Reason, &repeat, &passID, &subj, &kid); err != nil {
				return 0, err
			}
			fill(&sl)
			return at, nil
		},
		func(r *sql.Rows) (int64, error) {
			if err := r.Scan(&sr.Appliance, &sr.ID, &at, &sr.Source, &sr.Decision, &sr.Reason, &repeat, &passID, &subj, &kid, &epoch); err != nil {
				return 0, err
			}
			fill(&sr)
			sr.Epoch = [EpochSize]byte{}
			copy(sr.Epoch[:], epoch)
			return at, nil
		},
		func() error { return fn(&sl) }, func() error { return fn(&sr) })
	if err != nil {
		return wrapEach("export scans", err)
	}
	return nil
}

// wrapEach adds the operation to an error of the database, and leaves
// the callback's own errors and a cancelled context as they are.
func wrapEach(op string, err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	var dbErr interface{ Code() int }
	if errors.As(err, &dbErr) || errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("%s: %w", op, err)
	}
	return err
}

// CountPasses counts the passes EachPass would visit.
func (s *Snapshot) CountPasses(ctx context.Context, f ExportFilter) (int64, error) {
	where, args, err := f.where("issued_ms", "", "", "")
	if err != nil {
		return 0, fmt.Errorf("count passes: %w", err)
	}
	dwhere, dargs, err := f.districtEventsWhere("pass", "")
	if err != nil {
		return 0, fmt.Errorf("count passes: %w", err)
	}
	return s.countBoth(ctx, "count passes", "passes", where, args, "district_events d", dwhere, dargs)
}

// passEvent is the outbox body of a pass issued (see the outbox_pass
// trigger): identifiers in hex.
type passEvent struct {
	ID        hexBytes `json:"id"`
	Subject   hexBytes `json:"subject"`
	KID       hexBytes `json:"kid"`
	Kind      int      `json:"kind"`
	Color     int      `json:"color"`
	IssuedMS  int64    `json:"issued_ms"`
	ExpiresMS int64    `json:"expires_ms"`
	Actor     Actor    `json:"actor"`
}

// hexBytes is a byte string written as hex by SQLite's hex(). A value
// that does not decode is left empty: a district export shows what an
// appliance sent rather than failing on one record.
type hexBytes []byte

func (h *hexBytes) UnmarshalJSON(b []byte) error {
	var s string
	if json.Unmarshal(b, &s) != nil {
		*h = nil
		return nil
	}
	v, err := hex.DecodeString(s)
	if err != nil {
		v = nil
	}
	*h = v
	return nil
}

// EachPass calls fn for every pass issued in f's time range, oldest
// first, streaming; on a hub with the passes its appliances issued. The
// *IssuedPass passed to fn is reused.
func (s *Snapshot) EachPass(ctx context.Context, f ExportFilter, fn func(*IssuedPass) error) error {
	where, args, err := f.where("issued_ms", "", "", "")
	if err != nil {
		return fmt.Errorf("export passes: %w", err)
	}
	dwhere, dargs, err := f.districtEventsWhere("pass", "")
	if err != nil {
		return fmt.Errorf("export passes: %w", err)
	}
	rows, err := s.openExport(ctx, `SELECT id, subject, kid, kind, color, issued_ms, expires_ms, actor
		FROM passes`+where+` ORDER BY issued_ms, id`, args,
		"SELECT a.name, d.at_ms, d.body"+districtEventsFrom+dwhere+" ORDER BY d.at_ms, d.id", dargs)
	if err != nil {
		return fmt.Errorf("export passes: %w", err)
	}
	defer rows.Close()
	name, local, remote := rows.name, rows.local, rows.remote
	var (
		pl, pr          IssuedPass
		id, subj, kid   []byte
		issued, expires int64
		body            []byte
	)
	pl.Appliance = name
	err = mergeByTime(local, remote,
		func(r *sql.Rows) (int64, error) {
			if err := r.Scan(&id, &subj, &kid, &pl.Kind, &pl.Color, &issued, &expires, &pl.Actor); err != nil {
				return 0, err
			}
			pl.ID, pl.Subject, pl.KID = pass.ID{}, pass.Subject{}, pass.KeyID{}
			copy(pl.ID[:], id)
			copy(pl.Subject[:], subj)
			copy(pl.KID[:], kid)
			pl.IssuedAt, pl.ExpiresAt = time.UnixMilli(issued), time.UnixMilli(expires)
			return issued, nil
		},
		func(r *sql.Rows) (int64, error) {
			var at int64
			if err := r.Scan(&pr.Appliance, &at, &body); err != nil {
				return 0, err
			}
			var e passEvent
			_ = json.Unmarshal(body, &e) // what does not decode stays empty
			pr.ID, pr.Subject, pr.KID = pass.ID{}, pass.Subject{}, pass.KeyID{}
			copy(pr.ID[:], e.ID)
			copy(pr.Subject[:], e.Subject)
			copy(pr.KID[:], e.KID)
			pr.Kind, pr.Color, pr.Actor = pass.Kind(e.Kind), pass.Color(e.Color), e.Actor
			pr.IssuedAt, pr.ExpiresAt = time.UnixMilli(e.IssuedMS), time.UnixMilli(e.ExpiresMS)
			return at, nil
		},
		func() error { return fn(&pl) }, func() error { return fn(&pr) })
	if err != nil {
		return wrapEach("export passes", err)
	}
	return nil
}

// CountStatusChanges counts the status changes EachStatusChange would
// visit.
func (s *Snapshot) CountStatusChanges(ctx context.Context, f ExportFilter) (int64, error) {
	where, args, err := f.where("at_ms", "", "", "reason")
	if err != nil {
		return 0, fmt.Errorf("count status changes: %w", err)
	}
	dwhere, dargs, err := f.districtEventsWhere("status", "reason")
	if err != nil {
		return 0, fmt.Errorf("count status changes: %w", err)
	}
	return s.countBoth(ctx, "count status changes", "status_changes", where, args, "district_events d", dwhere, dargs)
}

// statusEvent is the outbox body of a status change (see the
// outbox_status trigger).
type statusEvent struct {
	Subject   hexBytes `json:"subject"`
	FromColor *int     `json:"from_color"`
	ToColor   int      `json:"to_color"`
	Reason    string   `json:"reason"`
	Actor     Actor    `json:"actor"`
	AtMS      int64    `json:"at_ms"`
}

// EachStatusChange calls fn for every status change matching f, oldest
// first, streaming; on a hub with those made at its appliances. The
// *StatusChange passed to fn is reused.
func (s *Snapshot) EachStatusChange(ctx context.Context, f ExportFilter, fn func(*StatusChange) error) error {
	where, args, err := f.where("at_ms", "", "", "reason")
	if err != nil {
		return fmt.Errorf("export status changes: %w", err)
	}
	dwhere, dargs, err := f.districtEventsWhere("status", "reason")
	if err != nil {
		return fmt.Errorf("export status changes: %w", err)
	}
	rows, err := s.openExport(ctx, `SELECT id, subject, from_color, to_color, reason, actor, at_ms
		FROM status_changes`+where+` ORDER BY at_ms, id`, args,
		"SELECT a.name, d.seq, d.at_ms, d.body"+districtEventsFrom+dwhere+" ORDER BY d.at_ms, d.id", dargs)
	if err != nil {
		return fmt.Errorf("export status changes: %w", err)
	}
	defer rows.Close()
	name, local, remote := rows.name, rows.local, rows.remote
	var (
		cl, cr StatusChange
		subj   []byte
		from   sql.NullInt64
		at     int64
		body   []byte
	)
	cl.Appliance = name
	err = mergeByTime(local, remote,
		func(r *sql.Rows) (int64, error) {
			if err := r.Scan(&cl.ID, &subj, &from, &cl.To, &cl.Reason, &cl.Actor, &at); err != nil {
				return 0, err
			}
			cl.Subject = pass.Subject{}
			copy(cl.Subject[:], subj)
			cl.From = pass.Color(from.Int64) // zero when NULL: the first status
			cl.At = time.UnixMilli(at)
			return at, nil
		},
		func(r *sql.Rows) (int64, error) {
			if err := r.Scan(&cr.Appliance, &cr.ID, &at, &body); err != nil {
				return 0, err
			}
			var e statusEvent
			_ = json.Unmarshal(body, &e) // what does not decode stays empty
			cr.Subject = pass.Subject{}
			copy(cr.Subject[:], e.Subject)
			cr.From = 0
			if e.FromColor != nil {
				cr.From = pass.Color(*e.FromColor)
			}
			cr.To, cr.Reason, cr.Actor, cr.At = pass.Color(e.ToColor), e.Reason, e.Actor, time.UnixMilli(at)
			return at, nil
		},
		func() error { return fn(&cl) }, func() error { return fn(&cr) })
	if err != nil {
		return wrapEach("export status changes", err)
	}
	return nil
}

// AuditActions lists every audit action code, in the order forms offer
// them; an export's action filter must be one of them.
var AuditActions = []string{
	AuditLogin, AuditLoginFailed, AuditUserCreated, AuditUserDisabled, AuditUserEnabled,
	AuditUserRole, AuditUserPassword, AuditStatusChanged, AuditPassIssued, AuditPolicyChanged,
	AuditExport, AuditTrace, AuditPurge,
	AuditApplianceAdded, AuditApplianceEnrolled, AuditApplianceRetired, AuditApplianceDraining,
	AuditRootRevocationRefused, AuditRootRestored, AuditRootTrusted, AuditRootImportRefused,
	AuditBackup, AuditRestoreDetected, AuditDeviceAdded, AuditDeviceRevoked, AuditFirstAdmin,
	AuditPersonLookup, AuditPhoneShown, AuditExportStarted, AuditCheckpointAlarm,
	AuditEntrance, AuditGateHold, AuditScreenRefused,
	AuditCityRootTrusted, AuditCityRootRefused, AuditCityRecordApplied, AuditCityRecordRefused,
	AuditCityMessageRefused,
}

// The audit trail's filter: time range on at_ms, and Reason as the
// action code (an audit record has no reason; its action is what an
// office filters by, and one more ExportFilter field would only ever be
// used by this table).
func (f ExportFilter) auditWhere() (string, []any, error) {
	return f.where("at_ms", "", "", "action")
}

// CountAudit counts the audit records EachAudit would visit.
func (s *Snapshot) CountAudit(ctx context.Context, f ExportFilter) (int64, error) {
	where, args, err := f.auditWhere()
	if err != nil {
		return 0, fmt.Errorf("count audit records: %w", err)
	}
	dwhere, dargs, err := f.districtEventsWhere("audit", "action")
	if err != nil {
		return 0, fmt.Errorf("count audit records: %w", err)
	}
	return s.countBoth(ctx, "count audit records", "audit", where, args, "district_events d", dwhere, dargs)
}

// auditEvent is the outbox body of an audit record (see the outbox_audit
// trigger).
type auditEvent struct {
	Seq     int64    `json:"seq"`
	Actor   Actor    `json:"actor"`
	Action  string   `json:"action"`
	Subject string   `json:"subject"`
	Detail  string   `json:"detail"`
	Hash    hexBytes `json:"hash"`
}

// EachAudit calls fn for every audit record matching f (Since and Until
// on the record's time, Reason as its action code), oldest first (by
// time, then seq), streaming; on a hub with its appliances' records,
// each with its own appliance's seq and hash. Time order is the chain's
// order unless the clock was set back between two records; seq is in
// every row for whoever needs the chain's order exactly. Ordering by seq
// instead would make SQLite sort the whole range in a temporary B-tree
// (the time range is found through the audit_at index, which holds at_ms
// and seq in this order): 4.4 s instead of 2.7-3.1 s to read 300,000
// records on a busy two-core machine. The *AuditRecord passed to fn is
// reused, Detail, PrevHash and Hash included.
func (s *Snapshot) EachAudit(ctx context.Context, f ExportFilter, fn func(*AuditRecord) error) error {
	where, args, err := f.auditWhere()
	if err != nil {
		return fmt.Errorf("export audit records: %w", err)
	}
	dwhere, dargs, err := f.districtEventsWhere("audit", "action")
	if err != nil {
		return fmt.Errorf("export audit records: %w", err)
	}
	rows, err := s.openExport(ctx, `SELECT seq, at_ms, actor, action, subject, detail, prev_hash, hash
		FROM audit`+where+` ORDER BY at_ms, seq`, args,
		"SELECT a.name, d.at_ms, d.body"+districtEventsFrom+dwhere+" ORDER BY d.at_ms, d.id", dargs)
	if err != nil {
		return fmt.Errorf("export audit records: %w", err)
	}
	defer rows.Close()
	name, local, remote := rows.name, rows.local, rows.remote
	var (
		rl, rr AuditRecord
		at     int64
		detail []byte
		body   []byte
	)
	rl.Appliance = name
	err = mergeByTime(local, remote,
		func(r *sql.Rows) (int64, error) {
			if err := r.Scan(&rl.Seq, &at, &rl.Actor, &rl.Action, &rl.Subject, &detail, &rl.PrevHash, &rl.Hash); err != nil {
				return 0, err
			}
			rl.At, rl.Detail = time.UnixMilli(at), detail
			return at, nil
		},
		func(r *sql.Rows) (int64, error) {
			if err := r.Scan(&rr.Appliance, &at, &body); err != nil {
				return 0, err
			}
			var e auditEvent
			_ = json.Unmarshal(body, &e) // what does not decode stays empty
			rr.Seq, rr.At, rr.Actor, rr.Action, rr.Subject = e.Seq, time.UnixMilli(at), e.Actor, e.Action, e.Subject
			rr.Detail, rr.PrevHash, rr.Hash = json.RawMessage(e.Detail), nil, e.Hash
			return at, nil
		},
		func() error { return fn(&rl) }, func() error { return fn(&rr) })
	if err != nil {
		return wrapEach("export audit records", err)
	}
	return nil
}
