package store

import (
	"context"
	"database/sql"
	"math"
	"strings"
)

// InsertScansBulk inserts scans as they are (At, Source, Decision, Reason,
// PassID, Subject) in one transaction with a prepared insert: a week of
// generated scans without a group commit per scan.
func (db *DB) InsertScansBulk(ctx context.Context, scans []*Scan) error {
	return db.update(ctx, func(tx *sql.Tx) error {
		stmt, err := tx.PrepareContext(ctx, insertScanSQL)
		if err != nil {
			return err
		}
		defer stmt.Close()
		for _, s := range scans {
			res, err := stmt.ExecContext(ctx, s.At.UnixMilli(), s.Source, s.Decision, s.Reason, s.Repeat,
				blobOrNull(s.PassID[:]), blobOrNull(s.Subject[:]), blobOrNull(s.KID[:]))
			if err != nil {
				return err
			}
			if s.ID, err = res.LastInsertId(); err != nil {
				return err
			}
		}
		return nil
	})
}

// IndexAllScans brings the (subject, time) index up to the newest scan
// in one transaction, as the indexer would in steps.
func (db *DB) IndexAllScans(ctx context.Context) error {
	_, err := db.indexRange(ctx, math.MaxInt64)
	return err
}

// ExecWrite runs one statement on the writer connection (bulk fills and
// index drops in benchmarks).
func (db *DB) ExecWrite(ctx context.Context, q string, args ...any) error {
	return db.update(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, q, args...)
		return err
	})
}

// TracePlans returns the EXPLAIN QUERY PLAN details of the two trace
// queries over the scans table, one line per plan step.
func (db *DB) TracePlans(ctx context.Context) (checks, contacts string, err error) {
	plan := func(q string, args ...any) (string, error) {
		rows, err := db.r.QueryContext(ctx, "EXPLAIN QUERY PLAN "+q, args...)
		if err != nil {
			return "", err
		}
		defer rows.Close()
		var lines []string
		for rows.Next() {
			var id, parent, notused int
			var detail string
			if err := rows.Scan(&id, &parent, &notused, &detail); err != nil {
				return "", err
			}
			lines = append(lines, detail)
		}
		return strings.Join(lines, "\n"), rows.Err()
	}
	subj := make([]byte, 16)
	if checks, err = plan(traceChecksSQL(scansTrace), subj, 0, 1, 10); err != nil {
		return "", "", err
	}
	contacts, err = plan(traceContactsSQL(scansTrace), subj, 0, 1, 10, 60000, 10)
	return checks, contacts, err
}

// HubTracePlans returns the plans of both trace queries over a hub's log
// of its appliances' scans, where a place is (appliance, source): the
// same query functions must use that table's indexes too.
func (db *DB) HubTracePlans(ctx context.Context) (string, error) {
	var lines []string
	for _, q := range []string{traceChecksSQL(districtTrace), traceContactsSQL(districtTrace)} {
		rows, err := db.r.QueryContext(ctx, "EXPLAIN QUERY PLAN "+q, make([]byte, 16), 0, 1, 10, 60000, 10)
		if err != nil {
			return "", err
		}
		for rows.Next() {
			var id, parent, notused int
			var detail string
			if err := rows.Scan(&id, &parent, &notused, &detail); err != nil {
				rows.Close()
				return "", err
			}
			lines = append(lines, detail)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return "", err
		}
	}
	return strings.Join(lines, "\n"), nil
}

// InsertDistrictScansBulk stores scans as a hub holds them from the
// enrolled appliance named appliance (added if new), with ids from
// firstID up, in one transaction; each scan's ID is set to its row's.
func (db *DB) InsertDistrictScansBulk(ctx context.Context, appliance string, firstID int64, scans []*Scan) error {
	return db.update(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO appliances (name, may_issue, created_ms) VALUES (?, 0, 0)
			ON CONFLICT (name) DO NOTHING`, appliance); err != nil {
			return err
		}
		stmt, err := tx.PrepareContext(ctx, `INSERT INTO district_scans (id, appliance_id, seq, at_ms, source, decision, reason,
			repeat, pass_id, subject, kid, received_ms)
			VALUES (?, (SELECT id FROM appliances WHERE name = ?), ?, ?, ?, ?, ?, ?, ?, ?, ?, 0)`)
		if err != nil {
			return err
		}
		defer stmt.Close()
		for i, s := range scans {
			s.ID = firstID + int64(i)
			if _, err := stmt.ExecContext(ctx, s.ID, appliance, i+1, s.At.UnixMilli(), s.Source, s.Decision, s.Reason, s.Repeat,
				blobOrNull(s.PassID[:]), blobOrNull(s.Subject[:]), blobOrNull(s.KID[:])); err != nil {
				return err
			}
		}
		return nil
	})
}
