package store

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"time"
)

// MaxAuditPage bounds the records one page of the audit trail holds.
const MaxAuditPage = 200

// AuditPage selects one page of the audit trail, newest first, for a
// person reading it. Pages are keyed by seq, never by an offset: the next
// page starts below the last seq shown, so records appended meanwhile
// neither shift a page nor repeat on the next one.
type AuditPage struct {
	From, To time.Time // from included, to excluded; zero: unbounded
	Actor    Actor     // exact; "" for every actor
	Action   string    // exact code (AuditActions); "" for every action
	// Before, if positive, keeps records with a seq below it: the Next of
	// the page before.
	Before int64
	Limit  int // 1 to MaxAuditPage; others mean MaxAuditPage
}

// FindAuditPage returns one page of records selected by q, newest
// first, and the Before of the next page (0 when this page is the last).
// Each filter has its index (seq, at_ms, action, actor), so a page costs a
// range scan of about its own size.
func (db *DB) FindAuditPage(ctx context.Context, q AuditPage) ([]AuditRecord, int64, error) {
	limit := q.Limit
	if limit <= 0 || limit > MaxAuditPage {
		limit = MaxAuditPage
	}
	before := q.Before
	if before <= 0 {
		before = math.MaxInt64
	}
	from, to := int64(math.MinInt64), int64(math.MaxInt64)
	if !q.From.IsZero() {
		from = q.From.UnixMilli()
	}
	if !q.To.IsZero() {
		to = q.To.UnixMilli()
	}
	var recs []AuditRecord
	err := db.view(ctx, func(tx *sql.Tx) error {
		// One more than the page: whether a next page exists without a
		// count over the trail.
		rows, err := tx.QueryContext(ctx, auditPageSQL(q), auditPageArgs(q, before, from, to, limit+1)...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var r AuditRecord
			var at int64
			var detail []byte
			if err := rows.Scan(&r.Seq, &at, &r.Actor, &r.Action, &r.Subject, &detail, &r.PrevHash, &r.Hash); err != nil {
				return err
			}
			r.At, r.Detail = time.UnixMilli(at), detail
			recs = append(recs, r)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, 0, fmt.Errorf("find audit page: %w", err)
	}
	var next int64
	if len(recs) > limit {
		recs = recs[:limit]
		next = recs[limit-1].Seq
	}
	return recs, next, nil
}

// auditPageSQL is the page's query with only the filters q sets, so
// that SQLite picks the index of the filter given (a catch-all OR term
// would hide it).
func auditPageSQL(q AuditPage) string {
	query := `
		SELECT seq, at_ms, actor, action, subject, detail, prev_hash, hash
		FROM audit WHERE seq < ?`
	// Unset time bounds are left out rather than made infinite: a bound
	// would steer the query to the time index and a sort of every record.
	if !q.From.IsZero() {
		query += ` AND at_ms >= ?`
	}
	if !q.To.IsZero() {
		query += ` AND at_ms < ?`
	}
	if q.Actor != "" {
		query += ` AND actor = ?`
	}
	if q.Action != "" {
		query += ` AND action = ?`
	}
	return query + ` ORDER BY seq DESC LIMIT ?`
}

// auditPageArgs are auditPageSQL's arguments, in its order.
func auditPageArgs(q AuditPage, before, from, to int64, limit int) []any {
	args := []any{before}
	if !q.From.IsZero() {
		args = append(args, from)
	}
	if !q.To.IsZero() {
		args = append(args, to)
	}
	if q.Actor != "" {
		args = append(args, q.Actor)
	}
	if q.Action != "" {
		args = append(args, q.Action)
	}
	return append(args, limit)
}
