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
// 50,000 holds two weeks at a gate with 1,000 scans an hour in full (a
// few tens of MB at most while a file is written); the page shows it a
// page at a time.
const MaxTraceRows = 50000

// TraceQuery asks for the checks of one person and everyone checked near
// them.
type TraceQuery struct {
	Subject pass.Subject
	// Also are the person's other subjects, traced with Subject as one
	// person: the district subject of passes issued before the district
	// took the city pseudonym key. At most MaxTraceSubjects-1.
	Also     []pass.Subject
	From, To time.Time     // the person's checks in [From, To)
	Window   time.Duration // contacts within ±Window of a check, edges included
	Limit    int           // 0 or more than MaxTraceRows: MaxTraceRows
}

// TraceCheck is one check of the traced person with the others checked at
// the same source within the window around it.
type TraceCheck struct {
	ScanID int64 // the row's id in the table it was read from
	// ApplianceScanID and Epoch find the check in the log of the
	// appliance that made it: at a hub, its id there and that
	// appliance's epoch (nil when not kept); for a check logged here, its
	// ScanID and nil.
	ApplianceScanID int64
	Epoch           []byte
	At              time.Time
	Source          string
	Decision        string
	Reason          string
	PassID          pass.ID // zero when unknown
	Contacts        []TraceContact
	// ContactsOmitted counts the contact rows of this check that are not
	// in Contacts because the result hit its row limit. An empty Contacts
	// means nobody was near only when this is zero.
	ContactsOmitted int
}

// TraceContact is one check of someone else near a check of the person.
type TraceContact struct {
	ScanID int64
	// ApplianceScanID and Epoch: as in TraceCheck.
	ApplianceScanID int64
	Epoch           []byte
	Subject         pass.Subject
	At              time.Time
	Offset          time.Duration // At minus the person's check time: negative before
	Decision        string
	// MaskedName and IDTail identify a contact registered in the
	// district's register held here (张*丰, last four of the ID number);
	// both "" for anyone else. The full name and number are never stored.
	MaskedName, IDTail string
}

// TraceSummary is one contact over the whole result.
type TraceSummary struct {
	Subject     pass.Subject
	Overlaps    int       // how many of the person's checks this contact was near
	First, Last time.Time // earliest and latest of the contact's nearby checks
	Places      []string  // distinct sources, sorted
	MaskedName  string    // as in TraceContact
	IDTail      string
}

// TraceResult is the answer to a TraceQuery, read from one snapshot.
type TraceResult struct {
	Checks      []TraceCheck // oldest first
	Contacts    []TraceSummary
	ContactRows int // total TraceContact entries over Checks
	// Truncated says a part hit the limit: there are more checks or more
	// contact rows than returned, and the summary covers only those returned.
	Truncated bool
	// Limit is the row limit the result was read with.
	Limit int
	// ChecksOmitted counts the person's checks in the range that are not
	// in Checks; their contacts are not counted anywhere.
	ChecksOmitted int
	// RowsOmitted counts the contact rows near the checks listed that are
	// not listed: the sum of the checks' ContactsOmitted.
	RowsOmitted int
}

// traceTable is a table the trace queries run over: any table with the
// scan columns (at_ms, subject, decision, reason, pass_id) and place
// columns that together name where a check happened. For the local log
// that is the source; a hub's table of other appliances' scans would be
// {"appliance", "source"} with an index on (appliance, source, at_ms).
type traceTable struct {
	name  string
	place []string
	// seq and epoch are the columns of a row's id in the log of the
	// appliance that made it and of that appliance's epoch; no epoch
	// column: "".
	seq, epoch string
	// display, when set, is the place as shown (an expression over the
	// table's columns); otherwise the place columns joined with "/".
	display string
	// person, when set, is a subquery of the table's rows of subject ?1
	// in [?2, ?3) for a table whose (subject, at_ms) index is not on the
	// table itself.
	person string
}

// scansTrace is the local scan log. Its (subject, time) index is
// scan_subjects up to the mark (see scanindex.go); the scans above it
// are read one by one (by id: "+at_ms" keeps the planner off the time
// index, which would read the whole range). The two parts never overlap: index rows and mark
// move in one transaction, and one statement reads one snapshot.
var scansTrace = traceTable{name: "scans", place: []string{"source"}, seq: "id", person: `(
		SELECT * FROM scans WHERE id IN (` + indexedScanIDsSQL("?2", "?3") + `)
		UNION ALL
		SELECT * FROM scans
		WHERE id > (SELECT mark FROM scan_index_mark WHERE id = 1) AND subject = ?1 AND +at_ms >= ?2 AND +at_ms < ?3)`}

// districtTrace is the scans a hub holds from its enrolled appliances: a
// place is an appliance's source, shown as "appliance/source".
var districtTrace = traceTable{
	name:    "district_scans",
	place:   []string{"appliance_id", "source"},
	seq:     "seq",
	epoch:   "epoch",
	display: "(SELECT name FROM appliances WHERE id = appliance_id) || '/' || source",
}

// epochOf is the epoch column of the row alias prefix names, or NULL.
func (t traceTable) epochOf(prefix string) string {
	if t.epoch == "" {
		return "NULL"
	}
	return prefix + t.epoch
}

// personFrom is the FROM source of the rows of subject ?1 in [?2, ?3).
func (t traceTable) personFrom() string {
	if t.person != "" {
		return t.person
	}
	return `(SELECT * FROM ` + t.name + ` WHERE subject = ?1 AND at_ms >= ?2 AND at_ms < ?3)`
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
// (subject, at_ms) index (personFrom). Parameters: ?1 subject, ?2 from, ?3 to, ?4
// limit.
func traceChecksSQL(t traceTable) string {
	return `SELECT id, ` + t.seq + `, ` + t.epochOf("") + `, at_ms, ` + t.placeExpr() + `, decision, reason, pass_id FROM ` + t.personFrom() + `
		ORDER BY at_ms, id LIMIT ?4`
}

// traceContactsSQL lists, for each of the person's checks (the same rows
// as traceChecksSQL), the checks of others at the same place within
// ±window. CROSS JOIN fixes the loop order: the person's few checks
// outside, each probing the (place, at_ms) index for a short range.
// Parameters: ?1 subject, ?2 from, ?3 to, ?4 check limit, ?5 window in
// ms, ?6 row limit.
func traceContactsSQL(t traceTable) string {
	return traceNearSQL(t, "p.id, c.id, c."+t.seq+", "+t.epochOf("c.")+", c.at_ms, c.subject, c.decision") + `
		ORDER BY p.at_ms, p.id, c.at_ms, c.id LIMIT ?6`
}

// traceContactCountsSQL counts the contact rows of each check that
// traceContactsSQL would return without its row limit: how many a cut
// result leaves out. Parameters ?1 to ?5 as there.
func traceContactCountsSQL(t traceTable) string {
	return traceNearSQL(t, "p.id, count(*)") + ` GROUP BY p.id`
}

// traceNearSQL is the join of both contact queries, selecting sel.
func traceNearSQL(t traceTable, sel string) string {
	join := make([]string, len(t.place))
	for i, c := range t.place {
		join[i] = "c." + c + " = p." + c
	}
	return `WITH p AS (
			SELECT id, at_ms, ` + strings.Join(t.place, ", ") + ` FROM ` + t.personFrom() + `
			ORDER BY at_ms, id LIMIT ?4)
		SELECT ` + sel + `
		FROM p CROSS JOIN ` + t.name + ` AS c
		WHERE ` + strings.Join(join, " AND ") + ` AND c.at_ms BETWEEN p.at_ms - ?5 AND p.at_ms + ?5
			AND c.subject IS NOT NULL AND c.subject <> ?1`
}

// traceCountChecksSQL counts one person's checks in a time range, for a
// result cut at the limit. Parameters ?1 to ?3 as traceChecksSQL.
func traceCountChecksSQL(t traceTable) string {
	return `SELECT count(*) FROM ` + t.personFrom()
}

// Trace finds every check of q.Subject in [q.From, q.To) and, for each,
// everyone else checked at the same source within ±q.Window (contacts may
// lie just outside [From, To) when a check is near its edge). Checks
// without a known subject are not contacts. Both parts are read in one
// read transaction, so they describe the same state of the log while
// scans keep being written. A result cut at the limit counts what it
// leaves out (ChecksOmitted, each check's ContactsOmitted); contacts in
// the district's register carry their masked name and ID tail. ErrInvalid
// for an empty range or a window that is not positive.
func (db *DB) Trace(ctx context.Context, q TraceQuery) (*TraceResult, error) {
	if !q.From.Before(q.To) || q.Window <= 0 {
		return nil, fmt.Errorf("trace: %w: empty range or window", ErrInvalid)
	}
	limit := q.Limit
	if limit <= 0 || limit > MaxTraceRows {
		limit = MaxTraceRows
	}
	if len(q.Also) >= MaxTraceSubjects {
		return nil, fmt.Errorf("trace: %w: %d subjects, at most %d", ErrInvalid, len(q.Also)+1, MaxTraceSubjects)
	}
	var res *TraceResult
	err := db.view(ctx, func(tx *sql.Tx) error {
		var err error
		if res, err = traceAll(ctx, tx, q, limit); err != nil {
			return err
		}
		for _, s := range q.Also {
			other := q
			other.Subject = s
			more, err := traceAll(ctx, tx, other, limit)
			if err != nil {
				return err
			}
			res = mergeTraces(res, more, limit)
		}
		if len(q.Also) > 0 {
			res = res.without(append([]pass.Subject{q.Subject}, q.Also...))
		}
		res.Limit = limit
		res.Contacts = summarise(res.Checks)
		return namePeople(ctx, tx, res)
	})
	if err != nil {
		return nil, fmt.Errorf("trace: %w", err)
	}
	return res, nil
}

// MaxTraceSubjects bounds the subjects one trace follows as one person:
// the city subject and the district's own, with room to spare.
const MaxTraceSubjects = 4

// without drops the contact rows that are the person's own checks under
// another of their subjects (an old pass and a new one shown together).
func (res *TraceResult) without(own []pass.Subject) *TraceResult {
	res.ContactRows = 0
	for i := range res.Checks {
		c := &res.Checks[i]
		c.Contacts = slices.DeleteFunc(c.Contacts, func(ct TraceContact) bool { return slices.Contains(own, ct.Subject) })
		res.ContactRows += len(c.Contacts)
	}
	return res
}

// traceAll traces through the local log and, on a hub, through its
// appliances' scans too. A place is one appliance's source, so every
// contact is in the same table as the check it is near, and the two
// results only interleave.
func traceAll(ctx context.Context, tx *sql.Tx, q TraceQuery, limit int) (*TraceResult, error) {
	res, err := traceIn(ctx, tx, scansTrace, q, limit)
	if err != nil {
		return nil, err
	}
	var hub bool
	if err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM appliances)`).Scan(&hub); err != nil {
		return nil, err
	}
	if !hub {
		return res, nil
	}
	remote, err := traceIn(ctx, tx, districtTrace, q, limit)
	if err != nil {
		return nil, err
	}
	return mergeTraces(res, remote, limit), nil
}

// peopleBatch is how many subjects one register look-up asks for, well
// under SQLite's limit on parameters.
const peopleBatch = 500

// namePeople fills in the masked name and ID tail of every contact
// registered in the district's register, one indexed look-up per
// distinct contact in batches.
func namePeople(ctx context.Context, tx *sql.Tx, res *TraceResult) error {
	type who struct{ name, tail string }
	found := make(map[pass.Subject]who)
	for start := 0; start < len(res.Contacts); start += peopleBatch {
		batch := res.Contacts[start:min(start+peopleBatch, len(res.Contacts))]
		args := make([]any, len(batch))
		for i := range batch {
			args[i] = batch[i].Subject[:]
		}
		q := `SELECT subject, masked_name, id_tail FROM people WHERE subject IN (?` + strings.Repeat(", ?", len(batch)-1) + `)`
		rows, err := tx.QueryContext(ctx, q, args...)
		if err != nil {
			return fmt.Errorf("name contacts: %w", err)
		}
		for rows.Next() {
			var subj []byte
			var w who
			if err := rows.Scan(&subj, &w.name, &w.tail); err != nil {
				rows.Close()
				return fmt.Errorf("name contacts: %w", err)
			}
			var s pass.Subject
			if err := copyID(s[:], subj); err != nil {
				rows.Close()
				return fmt.Errorf("name contacts: %w", err)
			}
			found[s] = w
		}
		if err := rows.Close(); err != nil {
			return fmt.Errorf("name contacts: %w", err)
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("name contacts: %w", err)
		}
	}
	if len(found) == 0 {
		return nil
	}
	for i := range res.Contacts {
		w := found[res.Contacts[i].Subject]
		res.Contacts[i].MaskedName, res.Contacts[i].IDTail = w.name, w.tail
	}
	for i := range res.Checks {
		for j := range res.Checks[i].Contacts {
			c := &res.Checks[i].Contacts[j]
			w := found[c.Subject]
			c.MaskedName, c.IDTail = w.name, w.tail
		}
	}
	return nil
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
		if err := rows.Scan(&c.ScanID, &c.ApplianceScanID, &c.Epoch, &at, &c.Source, &c.Decision, &c.Reason, &pid); err != nil {
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
	if res.Truncated {
		var n int
		if err := tx.QueryRowContext(ctx, traceCountChecksSQL(table), subject, from, to).Scan(&n); err != nil {
			return nil, err
		}
		res.ChecksOmitted = n - len(res.Checks)
	}
	if len(res.Checks) == 0 {
		return res, nil
	}

	rows, err = tx.QueryContext(ctx, traceContactsSQL(table), subject, from, to, limit, q.Window.Milliseconds(), limit+1)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	cut := false
	for rows.Next() {
		var pid int64
		var c TraceContact
		var at int64
		var subj []byte
		if err := rows.Scan(&pid, &c.ScanID, &c.ApplianceScanID, &c.Epoch, &at, &subj, &c.Decision); err != nil {
			return nil, err
		}
		if res.ContactRows == limit {
			res.Truncated, cut = true, true
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
	if cut {
		if err := rows.Close(); err != nil {
			return nil, err
		}
		if err := countOmitted(ctx, tx, table, q, limit, res, byID); err != nil {
			return nil, err
		}
	}
	return res, nil
}

// countOmitted sets, for a result cut at its row limit, how many contact
// rows of each check were left out, so that a check whose list was cut
// (or never read) does not pass for one nobody was near.
func countOmitted(ctx context.Context, tx *sql.Tx, table traceTable, q TraceQuery, limit int, res *TraceResult, byID map[int64]int) error {
	rows, err := tx.QueryContext(ctx, traceContactCountsSQL(table), q.Subject[:], q.From.UnixMilli(), q.To.UnixMilli(), limit, q.Window.Milliseconds())
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var pid int64
		var n int
		if err := rows.Scan(&pid, &n); err != nil {
			return err
		}
		i, ok := byID[pid]
		if !ok {
			return fmt.Errorf("contact count of unknown check %d", pid)
		}
		ch := &res.Checks[i]
		ch.ContactsOmitted = n - len(ch.Contacts)
		res.RowsOmitted += ch.ContactsOmitted
	}
	return rows.Err()
}

// mergeTraces joins the local and district results: checks in time
// order (local first on a tie), cut at limit. Trace summarises what is
// kept.
func mergeTraces(a, b *TraceResult, limit int) *TraceResult {
	if len(b.Checks) == 0 {
		a.Truncated = a.Truncated || b.Truncated
		a.ChecksOmitted += b.ChecksOmitted
		return a
	}
	out := &TraceResult{Truncated: a.Truncated || b.Truncated, ChecksOmitted: a.ChecksOmitted + b.ChecksOmitted}
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
			out.ChecksOmitted += 1 + len(a.Checks) - i + len(b.Checks) - j
			break
		}
		if out.ContactRows+len(c.Contacts) > limit {
			keep := limit - out.ContactRows
			c.ContactsOmitted += len(c.Contacts) - keep
			c.Contacts = c.Contacts[:keep]
			out.Truncated = true
		}
		out.ContactRows += len(c.Contacts)
		out.RowsOmitted += c.ContactsOmitted
		out.Checks = append(out.Checks, c)
	}
	return out
}

// summarise folds the contact rows into one entry per contact: most
// overlaps first, then earliest first, then by subject, so the order is
// stable.
func summarise(checks []TraceCheck) []TraceSummary {
	// Sized for every row a new contact: growing a slice of summaries
	// by copying cost as much as the query at 20,000 rows.
	rows := 0
	for _, ch := range checks {
		rows += len(ch.Contacts)
	}
	idx := make(map[pass.Subject]int, rows)
	out := make([]TraceSummary, 0, rows)
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
