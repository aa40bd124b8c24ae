package store

import (
	"database/sql"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"passgate/pass"
)

// The (subject, time) index behind the log, through the real writer,
// indexer, purge and migration on files in t.TempDir.

var ixT0 = time.Date(2026, 12, 4, 9, 0, 0, 0, time.UTC)

func ixSubject(n int) pass.Subject { return pass.Subject{0x7a, byte(n >> 8), byte(n)} }
func ixPass(n int) pass.ID         { return pass.ID{0x7b, byte(n >> 8), byte(n)} }

// openNoIndexer opens a store in dir whose indexer does not run on its
// own: the test decides when scans are indexed.
func openNoIndexer(t *testing.T, dir string) *DB {
	t.Helper()
	db, err := Open(t.Context(), dir)
	if err != nil {
		t.Fatal(err)
	}
	db.stopIndexer()
	t.Cleanup(func() { db.Close() })
	return db
}

// logIxScans logs one scan of person n at each time, at gate src,
// through the scan writer.
func logIxScans(t *testing.T, db *DB, n int, src string, at ...time.Time) {
	t.Helper()
	for _, a := range at {
		s := &Scan{At: a, Source: src, Decision: decisionAllow, Reason: "ok", Subject: ixSubject(n), PassID: ixPass(n), KID: [8]byte{1}}
		if err := db.LogScan(t.Context(), s); err != nil {
			t.Fatal(err)
		}
	}
}

// traceIDs is the ids of the checks of person n that a trace over the
// day finds, in its order, and the ids of the contacts of each.
func traceIDs(t *testing.T, db *DB, n int) (checks []int64, contacts [][]int64) {
	t.Helper()
	res, err := db.Trace(t.Context(), TraceQuery{Subject: ixSubject(n), From: ixT0.Add(-time.Hour), To: ixT0.Add(24 * time.Hour), Window: 15 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	return traceAnswer(res)
}

// indexAll runs the indexer until nothing is left above the mark.
func indexAll(t *testing.T, db *DB) {
	t.Helper()
	for {
		n, err := db.indexScans(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			return
		}
	}
}

// checkIndexExact fails unless scan_subjects holds exactly one row for
// every scan with a subject up to the mark, and the mark is the newest id
// when want says the log is indexed.
func checkIndexExact(t *testing.T, db *DB, indexed bool) {
	t.Helper()
	var mark, top, missing, extra int64
	err := db.r.QueryRowContext(t.Context(), `SELECT
		(SELECT mark FROM scan_index_mark),
		coalesce((SELECT max(id) FROM scans), 0),
		(SELECT count(*) FROM scans s WHERE s.subject IS NOT NULL AND s.id <= (SELECT mark FROM scan_index_mark)
			AND (SELECT count(*) FROM scan_subjects x WHERE x.scan_id = s.id AND x.subject = s.subject
				AND x.at_ms = s.at_ms AND x.day = s.at_ms / 86400000) <> 1),
		(SELECT count(*) FROM scan_subjects x WHERE x.scan_id > (SELECT mark FROM scan_index_mark)
			OR NOT EXISTS (SELECT 1 FROM scans s WHERE s.id = x.scan_id))`).Scan(&mark, &top, &missing, &extra)
	if err != nil {
		t.Fatal(err)
	}
	if missing != 0 || extra != 0 {
		t.Errorf("index: %d scans up to mark %d not indexed exactly once, %d rows of no scan or above the mark", missing, mark, extra)
	}
	if indexed && mark != top {
		t.Errorf("mark %d, newest scan %d: want the log indexed", mark, top)
	}
}

// TestScanIndex_TailAndIndexed: a scan just logged, not yet indexed, is
// found by the trace and by the repeat lookup; once indexed it is found
// exactly once (the tail and the index never both hold it).
func TestScanIndex_TailAndIndexed(t *testing.T) {
	db := openNoIndexer(t, t.TempDir())
	ctx := t.Context()
	// Earlier checks of others, indexed; then the traced person's.
	logIxScans(t, db, 2, "gate-a", ixT0.Add(-2*time.Minute))
	logIxScans(t, db, 3, "gate-a", ixT0.Add(time.Minute))
	indexAll(t, db)
	logIxScans(t, db, 1, "gate-a", ixT0)

	if lag, err := db.ScanIndexLag(ctx); err != nil || lag != 1 {
		t.Fatalf("lag %d (%v), want the person's scan not yet indexed", lag, err)
	}
	checks, contacts := traceIDs(t, db, 1)
	if len(checks) != 1 || !reflect.DeepEqual(contacts, [][]int64{{1, 2}}) {
		t.Fatalf("trace of a scan above the mark: checks %v contacts %v, want one check near scans 1 and 2", checks, contacts)
	}
	if at, err := db.LastSeen(ctx, ixSubject(1), ixPass(1), ixT0.Add(-time.Minute)); err != nil || !at.Equal(ixT0) {
		t.Fatalf("repeat lookup of a scan above the mark: %v, %v", at, err)
	}
	// A contact is traced the other way round from the index.
	if c, _ := traceIDs(t, db, 2); len(c) != 1 {
		t.Fatalf("trace of an indexed scan: %v", c)
	}

	indexAll(t, db)
	if lag, err := db.ScanIndexLag(ctx); err != nil || lag != 0 {
		t.Fatalf("lag %d (%v) after indexing", lag, err)
	}
	again, contacts2 := traceIDs(t, db, 1)
	if !reflect.DeepEqual(again, checks) || !reflect.DeepEqual(contacts2, contacts) {
		t.Fatalf("after indexing: checks %v contacts %v, want %v %v (once, the same)", again, contacts2, checks, contacts)
	}
	if at, err := db.LastSeen(ctx, ixSubject(1), ixPass(1), ixT0.Add(-time.Minute)); err != nil || !at.Equal(ixT0) {
		t.Fatalf("repeat lookup after indexing: %v, %v", at, err)
	}
	if _, err := db.LastSeen(ctx, ixSubject(1), ixPass(1), ixT0.Add(time.Millisecond)); !errors.Is(err, ErrNotFound) {
		t.Fatalf("repeat lookup after the scan: %v, want ErrNotFound", err)
	}
	// The person's checks are counted once too when a result is cut.
	logIxScans(t, db, 1, "gate-b", ixT0.Add(time.Hour), ixT0.Add(2*time.Hour))
	res, err := db.Trace(ctx, TraceQuery{Subject: ixSubject(1), From: ixT0, To: ixT0.Add(24 * time.Hour), Window: time.Minute, Limit: 1})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Checks) != 1 || res.ChecksOmitted != 2 {
		t.Fatalf("cut trace over index and tail: %d checks, %d omitted, want 1 and 2", len(res.Checks), res.ChecksOmitted)
	}
	checkIndexExact(t, db, false)
}

// TestScanIndex_ManyDays: a trace over several days and a repeat lookup
// find every check in the days they cover, indexed in large ranges
// sorted by subject, with checks of many others between them.
func TestScanIndex_ManyDays(t *testing.T) {
	db := openNoIndexer(t, t.TempDir())
	var want []time.Time
	for i := range 30 {
		at := ixT0.Add(time.Duration(i)*5*time.Hour + time.Duration(i)*time.Minute)
		want = append(want, at)
		for k := range 20 {
			logIxScans(t, db, 100+k, fmt.Sprintf("gate-%d", k), at.Add(time.Duration(k)*time.Second))
		}
		logIxScans(t, db, 1, "gate-0", at)
	}
	indexAll(t, db)
	res, err := db.Trace(t.Context(), TraceQuery{Subject: ixSubject(1), From: ixT0, To: want[len(want)-1].Add(time.Millisecond), Window: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	var got []time.Time
	for _, c := range res.Checks {
		got = append(got, c.At.UTC())
		if len(c.Contacts) != 1 {
			t.Fatalf("check at %v: %d contacts, want the one at its gate", c.At, len(c.Contacts))
		}
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("trace found %d checks, want %d:\n%v\n%v", len(got), len(want), got, want)
	}
	last := want[len(want)-1]
	if at, err := db.LastSeen(t.Context(), ixSubject(1), ixPass(1), last.Add(-5*time.Minute)); err != nil || !at.Equal(last) {
		t.Fatalf("repeat lookup: %v %v, want %v", at, err, last)
	}
	checkIndexExact(t, db, true)
}

// TestScanIndex_CrashAndRestart: an index round that fails part way
// leaves neither rows nor mark; a store closed with scans above the mark
// indexes them after the next Open; nothing is missed or doubled.
func TestScanIndex_CrashAndRestart(t *testing.T) {
	dir := t.TempDir()
	db := openNoIndexer(t, dir)
	ctx := t.Context()
	for i := range 50 {
		logIxScans(t, db, i%7, fmt.Sprintf("gate-%d", i%3), ixT0.Add(time.Duration(i)*time.Minute))
	}
	// A row the round will try to insert again makes it fail after it
	// has inserted others: the transaction must take them all back.
	var poison Scan
	row := db.r.QueryRowContext(ctx, `SELECT `+scanColumns+` FROM scans WHERE id = 40`)
	p, err := scanScan(row)
	if err != nil {
		t.Fatal(err)
	}
	poison = *p
	if err := db.update(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO scan_subjects VALUES (?, ?, ?, ?)`, poison.At.UnixMilli()/86400000, poison.Subject[:], poison.At.UnixMilli(), poison.ID)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.indexScans(ctx); err == nil {
		t.Fatal("a round over a row already indexed succeeded")
	}
	var mark, rows int
	if err := db.r.QueryRowContext(ctx, `SELECT (SELECT mark FROM scan_index_mark), (SELECT count(*) FROM scan_subjects)`).Scan(&mark, &rows); err != nil {
		t.Fatal(err)
	}
	if mark != 0 || rows != 1 {
		t.Fatalf("after a failed round: mark %d, %d rows; want 0 and the one put there", mark, rows)
	}
	if err := db.update(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM scan_subjects`)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	// Half indexed, then closed: the rest waits in the file.
	if _, err := db.indexRange(ctx, 25); err != nil {
		t.Fatal(err)
	}
	before, _ := traceIDs(t, db, 3)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	db2, err := Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer db2.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		lag, err := db2.ScanIndexLag(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if lag == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("lag %d ten seconds after Open: the indexer did not resume", lag)
		}
		time.Sleep(10 * time.Millisecond)
	}
	checkIndexExact(t, db2, true)
	after, _ := traceIDs(t, db2, 3)
	if len(before) != 7 || !reflect.DeepEqual(after, before) {
		t.Fatalf("checks of person 3: %v before restart, %v after; want the same 7", before, after)
	}
}

// TestScanIndex_Purge: retention removes the index rows of the scans it
// deletes in the same transaction; when it deletes the newest scans the
// mark comes down, so the next scans, which reuse their ids, are found.
func TestScanIndex_Purge(t *testing.T) {
	db := openNoIndexer(t, t.TempDir())
	ctx := t.Context()
	old := ixT0.Add(-40 * 24 * time.Hour)
	logIxScans(t, db, 1, "gate-a", old, old.Add(time.Minute))
	logIxScans(t, db, 2, "gate-a", ixT0)
	indexAll(t, db)
	if _, err := db.PurgeScans(ctx, ixT0.Add(-24*time.Hour), 100, ActorSystem); err != nil {
		t.Fatal(err)
	}
	var rows int
	one := ixSubject(1)
	if err := db.r.QueryRowContext(ctx, `SELECT count(*) FROM scan_subjects WHERE subject = ?`, one[:]).Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if rows != 0 {
		t.Fatalf("%d index rows of purged scans left", rows)
	}
	checkIndexExact(t, db, true)

	// A standalone appliance purges everything, the newest scan too.
	if _, err := db.PurgeScans(ctx, ixT0.Add(time.Hour), 100, ActorSystem); err != nil {
		t.Fatal(err)
	}
	logIxScans(t, db, 5, "gate-a", ixT0.Add(2*time.Hour))
	var id int64
	if err := db.r.QueryRowContext(ctx, `SELECT max(id) FROM scans`).Scan(&id); err != nil {
		t.Fatal(err)
	}
	if id > 3 {
		t.Fatalf("new scan got id %d: the test needs a reused id", id)
	}
	if at, err := db.LastSeen(ctx, ixSubject(5), ixPass(5), ixT0); err != nil || !at.Equal(ixT0.Add(2*time.Hour)) {
		t.Fatalf("repeat lookup of a scan with a reused id: %v %v", at, err)
	}
	if c, _ := traceIDs(t, db, 5); len(c) != 1 {
		t.Fatalf("trace of a scan with a reused id: %v", c)
	}
	indexAll(t, db)
	if c, _ := traceIDs(t, db, 5); len(c) != 1 {
		t.Fatalf("trace of a scan with a reused id, indexed: %v", c)
	}
	checkIndexExact(t, db, true)
}

// openBeforeMigration opens dir at the schema before the migration
// that marker begins (later steps come after it on an upgrade too): a
// database as the build before that step made it.
func openBeforeMigration(t *testing.T, dir, marker string) *DB {
	t.Helper()
	all := migrations
	defer func() { migrations = all }()
	for i, m := range all {
		if strings.HasPrefix(m, marker) {
			migrations = all[:i]
			break
		}
	}
	if len(migrations) == len(all) {
		t.Fatalf("no migration begins with %q", marker)
	}
	db, err := Open(t.Context(), dir)
	if err != nil {
		t.Fatal(err)
	}
	db.stopIndexer()
	return db
}

// traceAnswer is the ids of a trace's checks, in its order, and the ids
// of the contacts of each.
func traceAnswer(res *TraceResult) (checks []int64, contacts [][]int64) {
	for _, c := range res.Checks {
		checks = append(checks, c.ScanID)
		var ids []int64
		for _, k := range c.Contacts {
			ids = append(ids, k.ScanID)
		}
		contacts = append(contacts, ids)
	}
	return checks, contacts
}

// TestMigrate_ScanIndex: a database made by the schema before the index
// moved behind the log (the index on scans) is migrated: the index is
// built from its scans, the old one dropped, and traces and repeat
// lookups answer exactly as before.
func TestMigrate_ScanIndex(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	db := openBeforeMigration(t, dir, "-- perf16idx:")
	var scans []*Scan
	for i := range 400 {
		s := &Scan{At: ixT0.Add(time.Duration(i*97%600) * time.Minute), Source: fmt.Sprintf("gate-%d", i%5),
			Decision: decisionAllow, Reason: "ok", Subject: ixSubject(i % 40), PassID: ixPass(i % 40)}
		if i%50 == 0 {
			s.Subject, s.PassID = pass.Subject{}, pass.ID{} // undecodable input
		}
		scans = append(scans, s)
	}
	if err := db.InsertScansBulk(ctx, scans); err != nil {
		t.Fatal(err)
	}
	const people = 40
	// The old schema's answers: the same trace code over the scans table
	// and its own index, and the old repeat lookup.
	old := traceTable{name: "scans", place: []string{"source"}, seq: "id"}
	trace := func(db *DB, table traceTable, n int) ([]int64, [][]int64) {
		q := TraceQuery{Subject: ixSubject(n), From: ixT0, To: ixT0.Add(11 * time.Hour), Window: 10 * time.Minute}
		var res *TraceResult
		if err := db.view(ctx, func(tx *sql.Tx) error {
			var err error
			res, err = traceIn(ctx, tx, table, q, MaxTraceRows)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		return traceAnswer(res)
	}
	var wantChecks [][]int64
	var wantContacts [][][]int64
	var wantSeen []time.Time
	total := 0
	for n := range people {
		ch, co := trace(db, old, n)
		wantChecks, wantContacts, total = append(wantChecks, ch), append(wantContacts, co), total+len(ch)
		var ms sql.NullInt64
		s, p := ixSubject(n), ixPass(n)
		if err := db.r.QueryRowContext(ctx, `SELECT max(at_ms) FROM scans WHERE subject = ? AND at_ms >= ? AND pass_id = ?`,
			s[:], ixT0.UnixMilli(), p[:]).Scan(&ms); err != nil {
			t.Fatal(err)
		}
		var seen time.Time
		if ms.Valid {
			seen = time.UnixMilli(ms.Int64)
		}
		wantSeen = append(wantSeen, seen)
	}
	if total < 300 {
		t.Fatalf("the old schema traced %d checks: the test traced too little", total)
	}
	db.Close()

	db = openNoIndexer(t, dir)
	var oldIndex int
	if err := db.r.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_schema WHERE name = 'scans_subject_at'`).Scan(&oldIndex); err != nil || oldIndex != 0 {
		t.Fatalf("old index still there (%d, %v)", oldIndex, err)
	}
	checkIndexExact(t, db, true)
	for n := range people {
		ch, co := trace(db, scansTrace, n)
		if !reflect.DeepEqual(ch, wantChecks[n]) || !reflect.DeepEqual(co, wantContacts[n]) {
			t.Fatalf("person %d after migration: checks %v contacts %v; before %v %v", n, ch, co, wantChecks[n], wantContacts[n])
		}
		at, err := db.LastSeen(ctx, ixSubject(n), ixPass(n), ixT0)
		if (err == nil) == wantSeen[n].IsZero() || (err == nil && !at.Equal(wantSeen[n])) {
			t.Fatalf("person %d repeat lookup after migration: %v %v, before %v", n, at, err, wantSeen[n])
		}
	}
}
