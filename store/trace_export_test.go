package store

import (
	"context"
	"database/sql"
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

// HubTracePlans returns the contacts plan over a table shaped like a
// hub's log of other appliances' scans, where a place is (appliance,
// source): the same query function must keep using the indexes there.
func (db *DB) HubTracePlans(ctx context.Context) (string, error) {
	t := traceTable{name: "hub_scans_probe", place: []string{"appliance", "source"}}
	conn, err := db.w.Conn(ctx)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	for _, q := range []string{
		`CREATE TEMP TABLE hub_scans_probe (id INTEGER PRIMARY KEY, appliance TEXT NOT NULL, at_ms INTEGER NOT NULL,
			source TEXT NOT NULL, decision TEXT NOT NULL, reason TEXT NOT NULL, pass_id BLOB, subject BLOB)`,
		`CREATE INDEX temp.hub_probe_subject_at ON hub_scans_probe (subject, at_ms) WHERE subject IS NOT NULL`,
		`CREATE INDEX temp.hub_probe_place_at ON hub_scans_probe (appliance, source, at_ms)`,
	} {
		if _, err := conn.ExecContext(ctx, q); err != nil {
			return "", err
		}
	}
	defer conn.ExecContext(context.WithoutCancel(ctx), `DROP TABLE temp.hub_scans_probe`)
	rows, err := conn.QueryContext(ctx, "EXPLAIN QUERY PLAN "+traceContactsSQL(t), make([]byte, 16), 0, 1, 10, 60000, 10)
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
