package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"passgate/pass"
)

// Retention at a hub. A hub holds every enrolled appliance's records
// beside its own, under the same policy periods as an appliance's own
// records (appliance.Purge runs both):
//
//   - appliances' scans (district_scans): the scan retention, by the time
//     each was logged;
//   - their pass records: the pass retention after the pass expired;
//   - their audit records and status changes: the audit retention;
//   - their revocation records: the audit retention, and beyond it as long
//     as a pass the revocation voids may still be valid. The hub's own
//     revocation list (revocations), which every appliance pulls, is never
//     purged: it is the district's authority and stays small;
//   - the exactly-once marks of epochs no appliance can still send
//     (CollectSyncMarks).
//
// Each purge runs in transactions sized by time (purgeBatches) and is
// audited. The newest row of district_scans and of district_events is
// kept: their ids have no AUTOINCREMENT, and a new row reusing a removed
// newest id would fall behind the cursors that exports and the audit
// check of appliances keep over them.

// PurgeDistrictScans deletes the appliances' scans a hub holds that were
// logged before before, in transactions of at most batch rows sized and
// spaced like PurgeScans, with the dashboard's counts of that time, and
// records the purge in the audit trail (subject "district_scans"), also
// when an error or ctx stops it part way. It returns the rows deleted.
func (db *DB) PurgeDistrictScans(ctx context.Context, before time.Time, batch int, actor Actor) (int64, error) {
	if actor == "" {
		return 0, fmt.Errorf("purge district scans: %w: no actor", ErrInvalid)
	}
	total, err := db.purgeBatches(ctx, batch, func(tx *sql.Tx, size int) (int64, error) {
		return execRows(ctx, tx, `DELETE FROM district_scans WHERE id IN (
			SELECT id FROM district_scans WHERE at_ms < ?1 AND id < (SELECT max(id) FROM district_scans)
			ORDER BY at_ms LIMIT ?2)`, before.UnixMilli(), size)
	})
	if err == nil {
		err = db.purgeScanCounts(ctx, before)
	}
	if aerr := db.auditPurged(ctx, actor, "district_scans", map[string]any{
		"kind": "district_scans", "before_ms": before.UnixMilli(), "rows": total}, total); aerr != nil {
		return total, fmt.Errorf("purge district scans: %w", errors.Join(err, aerr))
	}
	if err != nil {
		return total, fmt.Errorf("purge district scans before %s: %w", before.Format(time.RFC3339), err)
	}
	return total, nil
}

// EventRetention says which of the appliances' records a hub purges
// (PurgeDistrictEvents), as of Now.
type EventRetention struct {
	Now time.Time
	// PassesExpiredBefore: pass records of passes that expired before it.
	PassesExpiredBefore time.Time
	// RecordsBefore: audit records, status changes and revocation records
	// made before it (revocations only once they void no valid pass).
	RecordsBefore time.Time
}

// RetentionOf returns the boundaries of policy p as of now.
func RetentionOf(p *Policy, now time.Time) EventRetention {
	return EventRetention{Now: now, PassesExpiredBefore: now.Add(-p.PassRetention), RecordsBefore: now.Add(-p.AuditRetention)}
}

// PurgedEvents counts, by kind, the appliances' records a purge deleted.
type PurgedEvents struct {
	Passes, Status, Revocations, Audit int64
}

// Total is the number of records deleted.
func (n PurgedEvents) Total() int64 { return n.Passes + n.Status + n.Revocations + n.Audit }

// PurgeDistrictEvents deletes the appliances' records a hub holds past
// their retention (EventRetention), kind by kind, in transactions of at
// most batch rows sized and spaced like PurgeScans, with one audit record
// per kind purged (subject "district_events"). One kind failing stops the
// purge; what was deleted is counted and audited.
//
// A revocation record is kept while a pass it voids may still be valid:
// every such pass was issued before the revocation's cut-off (a subject
// revocation) or before the revocation itself (a pass revocation), so it
// has expired once that time lies further back than the longest validity
// of any pass the hub knows of (maxPassValidity).
func (db *DB) PurgeDistrictEvents(ctx context.Context, r EventRetention, batch int, actor Actor) (PurgedEvents, error) {
	var n PurgedEvents
	if actor == "" {
		return n, fmt.Errorf("purge district events: %w: no actor", ErrInvalid)
	}
	records := r.RecordsBefore.UnixMilli()
	longest, err := db.maxPassValidity(ctx, records)
	if err != nil {
		return n, fmt.Errorf("purge district events: %w", err)
	}
	revokedBefore := r.Now.Add(-longest).UnixMilli()
	kinds := []struct {
		kind   string
		before int64
		extra  string // a further condition on the row, with ?4 when arg is set
		arg    int64
		count  *int64
	}{
		{"pass", r.PassesExpiredBefore.UnixMilli(), `(body ->> 'expires_ms') < ?2`, 0, &n.Passes},
		{"status", records, `1`, 0, &n.Status},
		{"audit", records, `1`, 0, &n.Audit},
		{"revocation", records, `coalesce(body ->> 'before_ms', at_ms) < ?4`, revokedBefore, &n.Revocations},
	}
	for _, k := range kinds {
		q := `DELETE FROM district_events WHERE id IN (
			SELECT id FROM district_events WHERE kind = ?1 AND at_ms < ?2 AND ` + k.extra + `
				AND id < (SELECT max(id) FROM district_events)
			ORDER BY at_ms LIMIT ?3)`
		*k.count, err = db.purgeBatches(ctx, batch, func(tx *sql.Tx, size int) (int64, error) {
			args := []any{k.kind, k.before, size}
			if k.arg != 0 {
				args = append(args, k.arg)
			}
			return execRows(ctx, tx, q, args...)
		})
		boundary := "before_ms"
		if k.kind == "pass" {
			boundary = "expired_before_ms" // as PurgePasses says it
		}
		if aerr := db.auditPurged(ctx, actor, "district_events", map[string]any{
			"kind": "district_" + k.kind, boundary: k.before, "rows": *k.count}, *k.count); aerr != nil {
			return n, fmt.Errorf("purge district events: %w", errors.Join(err, aerr))
		}
		if err != nil {
			return n, fmt.Errorf("purge district %s records before %s: %w", k.kind, time.UnixMilli(k.before).UTC().Format(time.RFC3339), err)
		}
	}
	return n, nil
}

// maxPassValidity is the longest validity of a pass the hub knows of (its
// own and those its appliances sent), and at least pass.PaperValidity,
// the longest default: a pass not yet reported is covered too unless it
// was issued for longer than every other. It reads every pass record, so
// it does so only when a revocation record made before recordsBefore
// (ms) waits to be judged; else it returns the default.
func (db *DB) maxPassValidity(ctx context.Context, recordsBefore int64) (time.Duration, error) {
	var ms sql.NullInt64
	err := db.r.QueryRowContext(ctx, `SELECT iif(EXISTS (SELECT 1 FROM district_events WHERE kind = 'revocation' AND at_ms < ?),
		(SELECT max(v) FROM (
			SELECT max(expires_ms - issued_ms) AS v FROM passes
			UNION ALL
			SELECT max((body ->> 'expires_ms') - (body ->> 'issued_ms')) FROM district_events WHERE kind = 'pass')),
		NULL)`, recordsBefore).Scan(&ms)
	if err != nil {
		return 0, fmt.Errorf("longest pass validity: %w", err)
	}
	return max(pass.PaperValidity, time.Duration(ms.Int64)*time.Millisecond), nil
}

// Exactly-once marks of the past.
//
// A hub keeps a mark per appliance, stream and epoch (sync_marks); an
// appliance starts an epoch in every process that syncs, so marks would
// pile up for ever. A mark may go only when no appliance can still send a
// record it would de-duplicate. CollectSyncMarks removes the mark of an
// epoch of appliance A in stream S when
//
//  1. another epoch of A in S was stored into later (the epoch is
//     superseded: an appliance sends its records in id order, and a new
//     epoch's ids follow the old one's, so A had sent the whole old epoch
//     before any of the new one), and the mark last moved before the
//     stream's boundary (now minus the scan retention for scans, minus
//     the longer of the audit and pass retentions for events); or
//  2. A was retired before that boundary (a retired appliance sends only
//     a final bundle, of records logged before its retirement).
//
// Every record of such an epoch was logged before its mark last moved
// (or before the retirement). The only way one comes again is an
// appliance restored from an older backup sending it anew. So the hub
// keeps, per appliance and stream, the latest of those times plus the
// clock tolerance of the policy (sync_collected.before_ms), and a run is
// taken as held up to its last leading record logged before that time
// (startMark): a late copy is acknowledged, never stored twice, and its
// mark comes back (to be collected again in turn). Records of an epoch
// still sending are not caught by this unless they are older than the
// stream's retention, when retention would remove them anyway: the time
// kept is always before the collecting round's boundary plus the
// tolerance.

// CollectSyncMarks removes the marks of epochs no appliance can still
// send, as of now, under policy p (see above), records for each
// appliance and stream the time before which a run of an unknown epoch is
// taken as held, and audits the collection (subject "sync_marks"). It
// returns the number of marks removed.
func (db *DB) CollectSyncMarks(ctx context.Context, p *Policy, now time.Time, batch int, actor Actor) (int64, error) {
	if actor == "" {
		return 0, fmt.Errorf("collect sync marks: %w: no actor", ErrInvalid)
	}
	scans := now.Add(-p.ScanRetention).UnixMilli()
	events := now.Add(-max(p.AuditRetention, p.PassRetention)).UnixMilli()
	tolerance := p.ClockSkew.Milliseconds()
	total, err := db.purgeBatches(ctx, batch, func(tx *sql.Tx, size int) (int64, error) {
		// The collectable marks, with the time before which each
		// epoch's records were logged.
		const pick = `SELECT m.appliance_id, m.stream, m.epoch, max(m.updated_ms, coalesce(a.retired_ms, 0))
			FROM sync_marks m JOIN appliances a ON a.id = m.appliance_id
			WHERE (a.retired_ms IS NOT NULL AND a.retired_ms < iif(m.stream = 'scans', ?1, ?2))
				OR (m.updated_ms < iif(m.stream = 'scans', ?1, ?2) AND EXISTS (SELECT 1 FROM sync_marks n
					WHERE n.appliance_id = m.appliance_id AND n.stream = m.stream AND n.updated_ms > m.updated_ms))
			LIMIT ?3`
		rows, err := tx.QueryContext(ctx, pick, scans, events, size)
		if err != nil {
			return 0, err
		}
		type mark struct {
			appliance int64
			stream    string
			epoch     []byte
			logged    int64
		}
		var marks []mark
		for rows.Next() {
			var m mark
			if err := rows.Scan(&m.appliance, &m.stream, &m.epoch, &m.logged); err != nil {
				rows.Close()
				return 0, err
			}
			marks = append(marks, m)
		}
		if err := errors.Join(rows.Err(), rows.Close()); err != nil {
			return 0, err
		}
		for _, m := range marks {
			if _, err := tx.ExecContext(ctx, `INSERT INTO sync_collected (appliance_id, stream, before_ms) VALUES (?1, ?2, ?3)
				ON CONFLICT (appliance_id, stream) DO UPDATE SET before_ms = max(before_ms, excluded.before_ms)`,
				m.appliance, m.stream, m.logged+tolerance); err != nil {
				return 0, err
			}
			if _, err := tx.ExecContext(ctx, `DELETE FROM sync_marks WHERE appliance_id = ? AND stream = ? AND epoch = ?`,
				m.appliance, m.stream, m.epoch); err != nil {
				return 0, err
			}
		}
		return int64(len(marks)), nil
	})
	if aerr := db.auditPurged(ctx, actor, "sync_marks", map[string]any{
		"kind": "sync_marks", "scans_before_ms": scans, "events_before_ms": events, "rows": total}, total); aerr != nil {
		return total, fmt.Errorf("collect sync marks: %w", errors.Join(err, aerr))
	}
	if err != nil {
		return total, fmt.Errorf("collect sync marks: %w", err)
	}
	return total, nil
}

// startMark returns the mark a run of n records of an appliance's stream
// is compared with, and the mark the hub holds of the run's epoch (from-1
// when none). The first is the second moved past the run's leading
// records logged before the time CollectSyncMarks keeps for the
// appliance and stream: those are taken as held, being of a collected
// epoch or past retention. This holds whether or not the epoch has a
// mark, because a late copy of a collected epoch brings its mark back
// (writeHeldMark), with the id of the copy's last record only. rec
// returns the id and time of the i-th record.
func startMark(ctx context.Context, tx *sql.Tx, applianceID int64, stream string, epoch []byte, from int64,
	n int, rec func(i int) (int64, time.Time)) (mark, held int64, err error) {
	err = tx.QueryRowContext(ctx, `SELECT mark FROM sync_marks WHERE appliance_id = ? AND stream = ? AND epoch = ?`,
		applianceID, stream, epoch).Scan(&held)
	if errors.Is(err, sql.ErrNoRows) {
		held, err = from-1, nil
	}
	if err != nil {
		return 0, 0, err
	}
	mark = held
	var before int64
	err = tx.QueryRowContext(ctx, `SELECT before_ms FROM sync_collected WHERE appliance_id = ? AND stream = ?`,
		applianceID, stream).Scan(&before)
	if errors.Is(err, sql.ErrNoRows) {
		return mark, held, nil
	}
	if err != nil {
		return 0, 0, err
	}
	for i := range n {
		id, at := rec(i)
		if at.UnixMilli() >= before {
			break
		}
		mark = max(mark, id)
	}
	return mark, held, nil
}

// writeHeldMark stores mark as the hub's mark of a run's epoch when the
// run was all held (nothing of it stored) but mark is beyond what the hub
// held: a late copy of a collected epoch. The mark then travels in the
// hub's bundles like any other, so an appliance that syncs by bundle
// only learns that the hub holds the copy and stops sending it.
func writeHeldMark(ctx context.Context, tx *sql.Tx, applianceID int64, stream string, epoch []byte, mark, held int64, now time.Time) error {
	if mark <= held {
		return nil
	}
	return writeMark(ctx, tx, applianceID, stream, epoch, mark, now)
}
