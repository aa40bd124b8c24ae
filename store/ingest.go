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
)

// The hub's side of pushes: appliances' records stored exactly once.
//
// For every appliance, stream and epoch the hub keeps a mark, the last id
// it stored (sync_marks). A push is stored in one transaction that also
// moves the marks, so a push sent again after its answer was lost finds
// its records at or below the mark and stores nothing twice; a push that
// starts beyond mark+1 would leave a hole and is refused as a gap.

// MaxEventBody bounds one outbox record's body as the hub accepts it. The
// largest an appliance makes is an audit record with its detail object,
// a few kilobytes at most.
const MaxEventBody = 64 << 10

// Ingest is one push from an appliance, as the hub received it.
type Ingest struct {
	ApplianceNow time.Time // the appliance's clock when it sent the push
	Backlog      int64     // records it reported waiting after these
	Scans        *ScanRun  // nil: none; Records[i].ID is the appliance's scans.id
	Events       *EventRun // nil: none
}

// IngestResult is what a push changed at the hub.
type IngestResult struct {
	ScansMark  int64 // the hub's mark of the scans epoch pushed (0 when none was)
	EventsMark int64
	Stored     int // records stored by this push
	Skipped    int // records already held (a push sent again)
	Refused    int // records refused (authorizeEvent): audited, not stored
	// ClockSkew is the appliance's clock minus the hub's; SkewFlagged is
	// set when it exceeds the clock skew the district policy tolerates.
	ClockSkew   time.Duration
	SkewFlagged bool
}

// GapError refuses a push whose records do not follow on from what the
// hub holds: Expected is the id the hub needs next in that stream's
// epoch. Nothing of the push was stored.
type GapError struct {
	Stream   string
	Expected int64
}

func (e *GapError) Error() string {
	return fmt.Sprintf("%s: gap: the hub expects id %d next", e.Stream, e.Expected)
}

// CheckScanRun validates a run of scans received from outside: a 16-byte
// epoch, a positive start, consecutive ids from at or after the start,
// and scans the log would accept. It bounds nothing else: the caller has
// bounded the body.
func CheckScanRun(r *ScanRun) error {
	if r == nil {
		return nil
	}
	if err := checkRun(len(r.Epoch), r.From, len(r.Records)); err != nil {
		return fmt.Errorf("scans: %w", err)
	}
	for i, s := range r.Records {
		if s == nil {
			return fmt.Errorf("scans: %w: record %d missing", ErrInvalid, i)
		}
		if err := checkSeq(r.From, r.Records[0].ID, i, s.ID); err != nil {
			return fmt.Errorf("scans: %w", err)
		}
		if err := checkScan(s); err != nil {
			return fmt.Errorf("scans: record %d: %w", s.ID, err)
		}
	}
	return nil
}

// CheckEventRun validates a run of outbox records received from outside,
// as CheckScanRun does scans: known kinds, bodies that are JSON objects
// of at most MaxEventBody bytes.
func CheckEventRun(r *EventRun) error {
	if r == nil {
		return nil
	}
	if err := checkRun(len(r.Epoch), r.From, len(r.Records)); err != nil {
		return fmt.Errorf("events: %w", err)
	}
	for i, e := range r.Records {
		if e == nil {
			return fmt.Errorf("events: %w: record %d missing", ErrInvalid, i)
		}
		if err := checkSeq(r.From, r.Records[0].Seq, i, e.Seq); err != nil {
			return fmt.Errorf("events: %w", err)
		}
		switch e.Kind {
		case "pass", "status", "revocation", "audit":
		default:
			return fmt.Errorf("events: record %d: %w: kind %q", e.Seq, ErrInvalid, e.Kind)
		}
		if len(e.Body) > MaxEventBody {
			return fmt.Errorf("events: record %d: %w: body of %d bytes", e.Seq, ErrInvalid, len(e.Body))
		}
		var obj map[string]json.RawMessage
		if err := json.Unmarshal([]byte(e.Body), &obj); err != nil || obj == nil {
			return fmt.Errorf("events: record %d: %w: body is not a JSON object", e.Seq, ErrInvalid)
		}
	}
	return nil
}

func checkRun(epochLen int, from int64, n int) error {
	switch {
	case epochLen != EpochSize:
		return fmt.Errorf("%w: epoch of %d bytes, want %d", ErrInvalid, epochLen, EpochSize)
	case from < 1:
		return fmt.Errorf("%w: epoch start %d", ErrInvalid, from)
	case n == 0:
		return fmt.Errorf("%w: no records", ErrInvalid)
	}
	return nil
}

func checkSeq(from, first int64, i int, seq int64) error {
	if first < from {
		return fmt.Errorf("%w: id %d before the epoch's start %d", ErrInvalid, first, from)
	}
	if seq != first+int64(i) {
		return fmt.Errorf("%w: ids not consecutive at %d", ErrInvalid, seq)
	}
	return nil
}

// scanRowsPerInsert is how many scans one INSERT statement stores: the
// per-statement cost (binding through database/sql, starting the VDBE)
// then weighs on 64 rows instead of one; 64 × 11 parameters stays far
// below SQLite's limit.
const scanRowsPerInsert = 64

// insertDistrictScansSQL inserts n scans.
func insertDistrictScansSQL(n int) string {
	const row = "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
	return `INSERT INTO district_scans
	(appliance_id, seq, at_ms, source, decision, reason, repeat, pass_id, subject, kid, received_ms, epoch)
	VALUES ` + row + strings.Repeat(", "+row, n-1)
}

var insertDistrictScansFull = insertDistrictScansSQL(scanRowsPerInsert)

// insertDistrictScans stores scans of one epoch, scanRowsPerInsert at a
// time.
func insertDistrictScans(ctx context.Context, tx *sql.Tx, applianceID int64, epoch []byte, scans []*Scan, now time.Time) error {
	// Boxed once: every row repeats them.
	var recv, aid, ep any = now.UnixMilli(), applianceID, epoch
	args := make([]any, 0, 12*scanRowsPerInsert)
	var full *sql.Stmt
	defer func() {
		if full != nil {
			full.Close()
		}
	}()
	for len(scans) > 0 {
		chunk := scans[:min(len(scans), scanRowsPerInsert)]
		scans = scans[len(chunk):]
		args = args[:0]
		for _, s := range chunk {
			args = append(args, aid, s.ID, s.At.UnixMilli(), s.Source, s.Decision, s.Reason, s.Repeat,
				blobOrNull(s.PassID[:]), blobOrNull(s.Subject[:]), blobOrNull(s.KID[:]), recv, ep)
		}
		var err error
		if len(chunk) == scanRowsPerInsert {
			if full == nil {
				if full, err = tx.PrepareContext(ctx, insertDistrictScansFull); err != nil {
					return err
				}
			}
			_, err = full.ExecContext(ctx, args...)
		} else {
			_, err = tx.ExecContext(ctx, insertDistrictScansSQL(len(chunk)), args...)
		}
		if err != nil {
			return mapErr(err)
		}
	}
	return nil
}

const insertDistrictEventSQL = `INSERT INTO district_events
	(appliance_id, seq, kind, at_ms, body, received_ms) VALUES (?, ?, ?, ?, ?, ?)`

// IngestPush stores a push from the appliance with the given id in one
// transaction: records above the hub's marks are stored, those at or
// below are skipped, the marks move, revocations made at the appliance
// join the hub's list (to reach every other appliance), and the
// appliance's last contact, clock skew and backlog are updated.
// ErrNotFound for an unknown appliance, ErrRetired for a retired one,
// ErrInvalid for malformed runs, *GapError when a run starts beyond what
// the hub holds; in all these cases nothing is stored.
func (db *DB) IngestPush(ctx context.Context, applianceID int64, in *Ingest) (*IngestResult, error) {
	if in == nil {
		return nil, fmt.Errorf("ingest push: %w: nothing to ingest", ErrInvalid)
	}
	if err := CheckScanRun(in.Scans); err != nil {
		return nil, fmt.Errorf("ingest push: %w", err)
	}
	if err := CheckEventRun(in.Events); err != nil {
		return nil, fmt.Errorf("ingest push: %w", err)
	}
	now := db.now()
	res := &IngestResult{}
	err := db.update(ctx, func(tx *sql.Tx) error {
		// Settings of the writer connection for large ingests (it is one
		// connection kept open for ever, so they stay with the only
		// connection that ingests; setting an unchanged value is free).
		// A hub's district tables grow by millions of rows and every
		// scan stored touches three index leaves at scattered places
		// (subject, time, place): with SQLite's default 2 MiB page cache
		// most of them are reads from the OS. A multi-row INSERT into
		// indexed tables keeps a statement journal, which spills to a
		// temporary file past 64 KiB unless temp_store is memory. Each
		// cost ingest about half its speed.
		for _, p := range []string{`PRAGMA cache_size = -65536`, `PRAGMA temp_store = MEMORY`} {
			if _, err := tx.ExecContext(ctx, p); err != nil {
				return err
			}
		}
		a, err := scanAppliance(tx.QueryRowContext(ctx, `SELECT `+applianceColumns+` FROM appliances WHERE id = ?`, applianceID))
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		if a.Retired() {
			return ErrRetired
		}
		if in.Scans != nil {
			if res.ScansMark, err = ingestScans(ctx, tx, applianceID, in.Scans, now, res); err != nil {
				return err
			}
		}
		skew := int64(0)
		if !in.ApplianceNow.IsZero() {
			skew = in.ApplianceNow.UnixMilli() - now.UnixMilli()
		}
		if in.Events != nil {
			if res.EventsMark, err = ingestEvents(ctx, tx, a, in.Events, now, skew, res); err != nil {
				return err
			}
		}
		var tolerance int64
		if err := tx.QueryRowContext(ctx, `SELECT coalesce((SELECT clock_skew_ms FROM policy WHERE id = 1), 0)`).Scan(&tolerance); err != nil {
			return err
		}
		res.ClockSkew = time.Duration(skew) * time.Millisecond
		res.SkewFlagged = tolerance > 0 && (skew > tolerance || -skew > tolerance)
		_, err = tx.ExecContext(ctx, `UPDATE appliances SET last_contact_ms = ?, clock_skew_ms = ?, backlog = ? WHERE id = ?`,
			now.UnixMilli(), skew, max(in.Backlog, 0), applianceID)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("ingest push from appliance %d: %w", applianceID, err)
	}
	return res, nil
}

func writeMark(ctx context.Context, tx *sql.Tx, applianceID int64, stream string, epoch []byte, mark int64, now time.Time) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO sync_marks (appliance_id, stream, epoch, mark, updated_ms) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (appliance_id, stream, epoch) DO UPDATE SET mark = excluded.mark, updated_ms = excluded.updated_ms`,
		applianceID, stream, epoch, mark, now.UnixMilli())
	return err
}

func ingestScans(ctx context.Context, tx *sql.Tx, applianceID int64, run *ScanRun, now time.Time, res *IngestResult) (int64, error) {
	mark, held, err := startMark(ctx, tx, applianceID, StreamScans, run.Epoch, run.From, len(run.Records),
		func(i int) (int64, time.Time) { return run.Records[i].ID, run.Records[i].At })
	if err != nil {
		return 0, err
	}
	first := run.Records[0].ID
	if first > mark+1 {
		return 0, &GapError{Stream: StreamScans, Expected: mark + 1}
	}
	skip := int(min(mark-first+1, int64(len(run.Records))))
	res.Skipped += skip
	if skip == len(run.Records) {
		return mark, writeHeldMark(ctx, tx, applianceID, StreamScans, run.Epoch, mark, held, now)
	}
	if err := insertDistrictScans(ctx, tx, applianceID, run.Epoch, run.Records[skip:], now); err != nil {
		return 0, err
	}
	res.Stored += len(run.Records) - skip
	last := run.Records[len(run.Records)-1].ID
	return last, writeMark(ctx, tx, applianceID, StreamScans, run.Epoch, last, now)
}

// ingestEvents stores and applies the records of run that a may send
// (authorizeEvent); the others are refused, audited and skipped, and the
// mark moves past them all. skew is how far ahead of the hub's clock the
// appliance's was when it sent the run (pushes; 0 when unknown: a bundle
// travels for an unknown time).
func ingestEvents(ctx context.Context, tx *sql.Tx, a *Appliance, run *EventRun, now time.Time, skew int64, res *IngestResult) (int64, error) {
	applianceID := a.ID
	mark, held, err := startMark(ctx, tx, applianceID, StreamEvents, run.Epoch, run.From, len(run.Records),
		func(i int) (int64, time.Time) { return run.Records[i].Seq, run.Records[i].At })
	if err != nil {
		return 0, err
	}
	first := run.Records[0].Seq
	if first > mark+1 {
		return 0, &GapError{Stream: StreamEvents, Expected: mark + 1}
	}
	skip := int(min(mark-first+1, int64(len(run.Records))))
	res.Skipped += skip
	if skip == len(run.Records) {
		return mark, writeHeldMark(ctx, tx, applianceID, StreamEvents, run.Epoch, mark, held, now)
	}
	stmt, err := tx.PrepareContext(ctx, insertDistrictEventSQL)
	if err != nil {
		return 0, err
	}
	defer stmt.Close()
	recv := now.UnixMilli()
	for _, e := range run.Records[skip:] {
		why, err := authorizeEvent(ctx, tx, a, e)
		if err == nil && why == "" {
			why, err = applyEvent(ctx, tx, a, e, now, skew)
		}
		if err != nil {
			return 0, fmt.Errorf("%s %d: %w", e.Kind, e.Seq, err)
		}
		if why != "" {
			if err := auditRefusal(ctx, tx, a, e, why, now); err != nil {
				return 0, err
			}
			res.Refused++
			continue
		}
		if _, err := stmt.ExecContext(ctx, applianceID, e.Seq, e.Kind, e.At.UnixMilli(), e.Body, recv); err != nil {
			return 0, mapErr(err)
		}
		res.Stored++
	}
	last := run.Records[len(run.Records)-1].Seq
	return last, writeMark(ctx, tx, applianceID, StreamEvents, run.Epoch, last, now)
}

// applyEvent applies an accepted record to the hub's own state: a status
// change to the register, a revocation to the hub's list. A record it
// cannot apply (malformed) is refused, not failed: nothing of it is
// applied, and the appliance's later records still get through.
//
// Times an appliance writes are its clock's (or a tampered appliance's
// choice): the hub holds each to its own clock now, so no record dated
// ahead voids a person's future passes (a subject revocation's cut-off)
// or makes the hub ignore the person's later changes (a status change's
// time). A cut-off is also moved to the hub's clock by the push's skew:
// the checkers add one clock tolerance, which covers the issuing
// appliance's clock, not the revoking one's too.
func applyEvent(ctx context.Context, tx *sql.Tx, a *Appliance, e *OutboxRecord, now time.Time, skew int64) (refusal, error) {
	var err error
	switch e.Kind {
	case "revocation":
		err = applyApplianceRevocation(ctx, tx, a.Name, e, now.UnixMilli(), skew)
	case "status":
		err = applyApplianceStatus(ctx, tx, a.ID, e, now.UnixMilli())
	case "audit":
		err = applyApplianceLink(ctx, tx, a, e, now) // the record is kept whatever becomes of a link in it
	}
	if errors.Is(err, ErrInvalid) {
		return refuseMalformed + refusal(": "+err.Error()), nil
	}
	return "", err
}

// outboxStatus is the body the outbox_status trigger writes.
type outboxStatus struct {
	Subject    string `json:"subject"` // hex
	To         int    `json:"to_color"`
	At         int64  `json:"at_ms"`
	MaskedName string `json:"masked_name"`
	IDTail     string `json:"id_tail"`
	IDType     string `json:"id_type"`
	Tested     *int64 `json:"tested_ms"`
	Doses      int    `json:"doses"`
}

// applyApplianceStatus keeps the hub's register of the district's people
// current: a person registered at an appliance is added (masked name, ID
// tail, document type, never the ID number), and a status change moves
// their colour unless the hub already knows a later one. The hub's own
// admins can then change the status of anyone in the district; the
// change reaches every appliance as a revocation of earlier passes. The
// appliance that brings a person to the hub is the person's registrar
// (authorizeEvent).
func applyApplianceStatus(ctx context.Context, tx *sql.Tx, registrar int64, e *OutboxRecord, now int64) error {
	var st outboxStatus
	if err := json.Unmarshal([]byte(e.Body), &st); err != nil {
		return fmt.Errorf("%w: body: %v", ErrInvalid, err)
	}
	subject, err := hex.DecodeString(st.Subject)
	switch {
	case err != nil || len(subject) != 16:
		return fmt.Errorf("%w: subject", ErrInvalid)
	case st.To < 1 || st.To > 3:
		return fmt.Errorf("%w: colour %d", ErrInvalid, st.To)
	case st.Doses < 0 || st.Doses > 255:
		return fmt.Errorf("%w: doses %d", ErrInvalid, st.Doses)
	case len(st.MaskedName) > 256 || len(st.IDTail) > 16:
		return fmt.Errorf("%w: masked name or ID tail too long", ErrInvalid)
	}
	if st.IDType != "mainland" && st.IDType != "passport" {
		st.IDType = "other"
	}
	st.At = min(st.At, now)
	var tested any
	if st.Tested != nil {
		tested = min(*st.Tested, now)
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO people (subject, masked_name, id_tail, color, tested_ms, doses, created_ms, updated_ms, id_type, registrar)
		VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7, ?8, ?9)
		ON CONFLICT (subject) DO UPDATE SET color = excluded.color, updated_ms = excluded.updated_ms,
			tested_ms = max(coalesce(people.tested_ms, excluded.tested_ms), coalesce(excluded.tested_ms, people.tested_ms)),
			doses = max(people.doses, excluded.doses)
		WHERE excluded.updated_ms >= people.updated_ms`,
		subject, st.MaskedName, st.IDTail, st.To, tested, st.Doses, st.At, st.IDType, registrar)
	return mapErr(err)
}

// outboxRevocation is the body the outbox_revocation trigger writes.
type outboxRevocation struct {
	Kind   RevocationKind `json:"kind"`
	Target string         `json:"target"` // hex
	Before *int64         `json:"before_ms"`
	Reason string         `json:"reason"`
	At     int64          `json:"at_ms"`
}

// applyApplianceRevocation adds a revocation made at an appliance to the
// hub's own list, with the appliance as its origin, so the feed carries it
// to every appliance. An identical revocation already on the list (the
// same one arriving by bundle and by network) is not added twice.
func applyApplianceRevocation(ctx context.Context, tx *sql.Tx, appliance string, e *OutboxRecord, now, skew int64) error {
	var r outboxRevocation
	if err := json.Unmarshal([]byte(e.Body), &r); err != nil {
		return fmt.Errorf("%w: body: %v", ErrInvalid, err)
	}
	target, err := hex.DecodeString(r.Target)
	if err != nil {
		return fmt.Errorf("%w: target is not hex", ErrInvalid)
	}
	want := r.Kind.targetLen()
	switch {
	case want == 0:
		return fmt.Errorf("%w: kind %d", ErrInvalid, r.Kind)
	case len(target) != want:
		return fmt.Errorf("%w: target of %d bytes, want %d", ErrInvalid, len(target), want)
	case (r.Kind == RevokeSubject) != (r.Before != nil):
		return fmt.Errorf("%w: before_ms goes with subject revocations only", ErrInvalid)
	case len(r.Reason) > maxReasonLen:
		return fmt.Errorf("%w: reason longer than %d bytes", ErrInvalid, maxReasonLen)
	}
	r.At = min(r.At, now)
	var before any
	if r.Before != nil {
		before = min(*r.Before-skew, now)
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO revocations (kind, target, before_ms, reason, at_ms, origin)
		SELECT ?1, ?2, ?3, ?4, ?5, ?6
		WHERE NOT EXISTS (SELECT 1 FROM revocations
			WHERE target = ?2 AND kind = ?1 AND before_ms IS ?3 AND reason = ?4 AND at_ms = ?5)`,
		r.Kind, target, before, r.Reason, r.At, appliance)
	return mapErr(err)
}

// DistrictScans returns the scans of one appliance held at the hub, in
// the order they were stored, after the hub's row id after (0: from the
// start), at most limit (MaxScanLimit at most). Scan.ID is the
// appliance's own id.
func (db *DB) DistrictScans(ctx context.Context, appliance string, after int64, limit int) (list []*Scan, lastRow int64, err error) {
	if limit <= 0 || limit > MaxScanLimit {
		limit = MaxScanLimit
	}
	err = db.view(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT d.id, d.seq, d.at_ms, d.source, d.decision, d.reason, d.repeat, d.pass_id, d.subject, d.kid
			FROM district_scans d JOIN appliances a ON a.id = d.appliance_id
			WHERE a.name = ? AND d.id > ? ORDER BY d.id LIMIT ?`, appliance, after, limit)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var row int64
			var s Scan
			var at int64
			var passID, subject, kid []byte
			if err := rows.Scan(&row, &s.ID, &at, &s.Source, &s.Decision, &s.Reason, &s.Repeat, &passID, &subject, &kid); err != nil {
				return err
			}
			s.At = time.UnixMilli(at)
			for _, c := range []struct{ dst, src []byte }{{s.PassID[:], passID}, {s.Subject[:], subject}, {s.KID[:], kid}} {
				if err := copyID(c.dst, c.src); err != nil {
					return err
				}
			}
			list = append(list, &s)
			lastRow = row
		}
		return rows.Err()
	})
	if err != nil {
		return nil, 0, fmt.Errorf("district scans of %q: %w", appliance, err)
	}
	return list, lastRow, nil
}

// DistrictEvent is an outbox record of an appliance, as the hub holds it.
type DistrictEvent struct {
	OutboxRecord
	Appliance string
}

// DistrictEvents returns the events of one appliance held at the hub, in
// the order they were stored (as DistrictScans does scans).
func (db *DB) DistrictEvents(ctx context.Context, appliance string, after int64, limit int) (list []*DistrictEvent, lastRow int64, err error) {
	if limit <= 0 || limit > MaxScanLimit {
		limit = MaxScanLimit
	}
	err = db.view(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT d.id, d.seq, d.kind, d.at_ms, d.body
			FROM district_events d JOIN appliances a ON a.id = d.appliance_id
			WHERE a.name = ? AND d.id > ? ORDER BY d.id LIMIT ?`, appliance, after, limit)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			e := &DistrictEvent{Appliance: appliance}
			var at int64
			if err := rows.Scan(&lastRow, &e.Seq, &e.Kind, &at, &e.Body); err != nil {
				return err
			}
			e.At = time.UnixMilli(at)
			list = append(list, e)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, 0, fmt.Errorf("district events of %q: %w", appliance, err)
	}
	return list, lastRow, nil
}
