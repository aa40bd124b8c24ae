package store

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"time"

	"passgate/pass"
)

// MaxTraceRows bounds each part of a trace result: the person's checks
// and the contact rows. A query that would return more (a window of
// years over a busy gate) is cut there and marked Truncated, so that no
// request can make the appliance hold an unbounded result in memory.
const MaxTraceRows = 10000

// TraceQuery asks for the checks of one person and everyone checked near
// them.
type TraceQuery struct {
	Subject  pass.Subject
	From, To time.Time     // the person's checks in [From, To)
	Window   time.Duration // contacts within ±Window of a check, edges included
	Limit    int           // 0 or more than MaxTraceRows: MaxTraceRows
}

// TraceCheck is one check of the traced person with the others checked at
// the same source within the window around it.
type TraceCheck struct {
	ScanID   int64
	At       time.Time
	Source   string
	Decision string
	Reason   string
	PassID   pass.ID // zero when unknown
	Contacts []TraceContact
}

// TraceContact is one check of someone else near a check of the person.
type TraceContact struct {
	ScanID   int64
	Subject  pass.Subject
	At       time.Time
	Offset   time.Duration // At minus the person's check time: negative before
	Decision string
}

// TraceSummary is one contact over the whole result.
type TraceSummary struct {
	Subject     pass.Subject
	Overlaps    int       // how many of the person's checks this contact was near
	First, Last time.Time // earliest and latest of the contact's nearby checks
	Places      []string  // distinct sources, sorted
}

// TraceResult is the answer to a TraceQuery, read from one snapshot.
type TraceResult struct {
	Checks      []TraceCheck // oldest first
	Contacts    []TraceSummary
	ContactRows int // total TraceContact entries over Checks
	// Truncated says a part hit the limit: there are more checks or more
	// contact rows than returned, and the summary covers only those returned.
	Truncated bool
}

// traceTable is a table the trace queries run over: any table with the
// scan columns (at_ms, subject, decision, reason, pass_id) and place
// columns that together name where a check happened. For the local log
// that is the source; a hub's table of other appliances' scans would be
// {"appliance", "source"} with an index on (appliance, source, at_ms).
type traceTable struct {
	name  string
	place []string
	// display, when set, is the place as shown (an expression over the
	// table's columns); otherwise the place columns joined with "/".
	display string
}

// scansTrace is the local scan log.
var scansTrace = traceTable{name: "scans", place: []string{"source"}}

// districtTrace is the scans a hub holds from its enrolled appliances: a
// place is an appliance's source, shown as "appliance/source".
var districtTrace = traceTable{
	name:    "district_scans",
	place:   []string{"appliance_id", "source"},
	display: "(SELECT name FROM appliances WHERE id = appliance_id) || '/' || source",
}

// placeExpr is the place as one text for display: the columns joined
// with "/".
func (t traceTable) placeExpr() string {
	if t.display != "" {
		return t.display
	}
	return strings.Join(t.place, " || '/' || ")
}

// traceChecksSQL lists one person's checks in a time range, from the
// (subject, at_ms) index. Parameters: ?1 subject, ?2 from, ?3 to, ?4
// limit.
func traceChecksSQL(t traceTable) string {
	return `SELECT id, at_ms, ` + t.placeExpr() + `, decision, reason, pass_id FROM ` + t.name + `
		WHERE subject = ?1 AND at_ms >= ?2 AND at_ms < ?3
		ORDER BY at_ms, id LIMIT ?4`
}

// traceContactsSQL lists, for each of the person's checks (the same rows
// as traceChecksSQL), the checks of others at the same place within
// ±window. CROSS JOIN fixes the loop order: the person's few checks
// outside, each probing the (place, at_ms) index for a short range.
// Parameters: ?1 subject, ?2 from, ?3 to, ?4 check limit, ?5 window in
// ms, ?6 row limit.
func traceContactsSQL(t traceTable) string {
	join := make([]string, len(t.place))
	for i, c := range t.place {
		join[i] = "c." + c + " = p." + c
	}
	return `WITH p AS (
			SELECT id, at_ms, ` + strings.Join(t.place, ", ") + ` FROM ` + t.name + `
			WHERE subject = ?1 AND at_ms >= ?2 AND at_ms < ?3
			ORDER BY at_ms, id LIMIT ?4)
		SELECT p.id, c.id, c.at_ms, c.subject, c.decision
		FROM p CROSS JOIN ` + t.name + ` AS c
		WHERE ` + strings.Join(join, " AND ") + ` AND c.at_ms BETWEEN p.at_ms - ?5 AND p.at_ms + ?5
			AND c.subject IS NOT NULL AND c.subject <> ?1
		ORDER BY p.at_ms, p.id, c.at_ms, c.id LIMIT ?6`
}

// Trace finds every check of q.Subject in [q.From, q.To) and, for each,
// everyone else checked at the same source within ±q.Window (contacts may
// lie just outside [From, To) when a check is near its edge). Checks
// without a known subject are not contacts. Both parts are read in one
// read transaction, so they describe the same state of the log while
// scans keep being written. ErrInvalid for an empty range or a window
// that is not positive.
func (db *DB) Trace(ctx context.Context, q TraceQuery) (*TraceResult, error) {
	if !q.From.Before(q.To) || q.Window <= 0 {
		return nil, fmt.Errorf("trace: %w: empty range or window", ErrInvalid)
	}
	limit := q.Limit
	if limit <= 0 || limit > MaxTraceRows {
		limit = MaxTraceRows
	}
	var res *TraceResult
	err := db.view(ctx, func(tx *sql.Tx) error {
		var err error
		if res, err = traceIn(ctx, tx, scansTrace, q, limit); err != nil {
			return err
		}
		// A hub also traces through its appliances' scans. A place is
		// one appliance's source, so every contact is in the same table
		// as the check it is near, and the two results only interleave.
		var hub bool
		if err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM appliances)`).Scan(&hub); err != nil {
			return err
		}
		if !hub {
			return nil
		}
		remote, err := traceIn(ctx, tx, districtTrace, q, limit)
		if err != nil {
			return err
		}
		res = mergeTraces(res, remote, limit)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("trace: %w", err)
	}
	res.Contacts = summarise(res.Checks)
	return res, nil
}

// traceIn runs both trace queries over table in tx. A check's Source is
// the table's place text.
func traceIn(ctx context.Context, tx *sql.Tx, table traceTable, q TraceQuery, limit int) (*TraceResult, error) {
	subject, from, to := q.Subject[:], q.From.UnixMilli(), q.To.UnixMilli()
	res := &TraceResult{}
	// One row more than the limit tells a full result from a cut one.
	rows, err := tx.QueryContext(ctx, traceChecksSQL(table), subject, from, to, limit+1)
	if err != nil {
		return nil, err
	}
	byID := make(map[int64]int)
	for rows.Next() {
		var c TraceCheck
		var at int64
		var pid []byte
		if err := rows.Scan(&c.ScanID, &at, &c.Source, &c.Decision, &c.Reason, &pid); err != nil {
			rows.Close()
			return nil, err
		}
		if len(res.Checks) == limit {
			res.Truncated = true
			break
		}
		c.At = time.UnixMilli(at)
		if err := copyID(c.PassID[:], pid); err != nil {
			rows.Close()
			return nil, err
		}
		byID[c.ScanID] = len(res.Checks)
		res.Checks = append(res.Checks, c)
	}
	if err := rows.Close(); err != nil {
		return nil, err
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(res.Checks) == 0 {
		return res, nil
	}

	rows, err = tx.QueryContext(ctx, traceContactsSQL(table), subject, from, to, limit, q.Window.Milliseconds(), limit+1)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var pid int64
		var c TraceContact
		var at int64
		var subj []byte
		if err := rows.Scan(&pid, &c.ScanID, &at, &subj, &c.Decision); err != nil {
			return nil, err
		}
		if res.ContactRows == limit {
			res.Truncated = true
			break
		}
		i, ok := byID[pid]
		if !ok {
			// Both queries read the same snapshot with the same order and
			// limit, so this cannot happen unless they drift apart.
			return nil, fmt.Errorf("contact of unknown check %d", pid)
		}
		if err := copyID(c.Subject[:], subj); err != nil {
			return nil, err
		}
		c.At = time.UnixMilli(at)
		c.Offset = c.At.Sub(res.Checks[i].At)
		res.Checks[i].Contacts = append(res.Checks[i].Contacts, c)
		res.ContactRows++
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return res, nil
}

// mergeTraces joins the local and district results: checks in time
// order (local first on a tie), cut at limit. Trace summarises what is
// kept.
func mergeTraces(a, b *TraceResult, limit int) *TraceResult {
	if len(b.Checks) == 0 {
		a.Truncated = a.Truncated || b.Truncated
		return a
	}
	out := &TraceResult{Truncated: a.Truncated || b.Truncated}
	out.Checks = make([]TraceCheck, 0, min(limit, len(a.Checks)+len(b.Checks)))
	i, j := 0, 0
	for i < len(a.Checks) || j < len(b.Checks) {
		var c TraceCheck
		if j == len(b.Checks) || (i < len(a.Checks) && !b.Checks[j].At.Before(a.Checks[i].At)) {
			c, i = a.Checks[i], i+1
		} else {
			c, j = b.Checks[j], j+1
		}
		if len(out.Checks) == limit {
			out.Truncated = true
			break
		}
		if out.ContactRows+len(c.Contacts) > limit {
			c.Contacts = c.Contacts[:limit-out.ContactRows]
			out.Truncated = true
		}
		out.ContactRows += len(c.Contacts)
		out.Checks = append(out.Checks, c)
	}
	return out
}

// summarise folds the contact rows into one entry per contact: most
// overlaps first, then earliest first, then by subject, so the order is
// stable.
func summarise(checks []TraceCheck) []TraceSummary {
	idx := make(map[pass.Subject]int)
	var out []TraceSummary
	for _, ch := range checks {
		var seen map[pass.Subject]bool
		for _, c := range ch.Contacts {
			i, ok := idx[c.Subject]
			if !ok {
				i = len(out)
				idx[c.Subject] = i
				out = append(out, TraceSummary{Subject: c.Subject, First: c.At, Last: c.At})
			}
			s := &out[i]
			if seen == nil {
				seen = make(map[pass.Subject]bool)
			}
			if !seen[c.Subject] {
				seen[c.Subject] = true
				s.Overlaps++
			}
			if c.At.Before(s.First) {
				s.First = c.At
			}
			if c.At.After(s.Last) {
				s.Last = c.At
			}
			if !slices.Contains(s.Places, ch.Source) {
				s.Places = append(s.Places, ch.Source)
			}
		}
	}
	for i := range out {
		slices.Sort(out[i].Places)
	}
	slices.SortFunc(out, func(a, b TraceSummary) int {
		if a.Overlaps != b.Overlaps {
			return b.Overlaps - a.Overlaps
		}
		if c := a.First.Compare(b.First); c != 0 {
			return c
		}
		return bytes.Compare(a.Subject[:], b.Subject[:])
	})
	return out
}
