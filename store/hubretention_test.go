package store_test

import (
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"passgate/store"
)

const day = 24 * time.Hour

// rawDB opens a second connection to db's file, for setting up rows no
// push could bring and for reading tables the store has no query for.
func rawDB(t *testing.T, db *store.DB) *sql.DB {
	t.Helper()
	conn, err := sql.Open("sqlite", "file:"+db.Path()+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

func count(t *testing.T, conn *sql.DB, q string, args ...any) int {
	t.Helper()
	var n int
	if err := conn.QueryRowContext(t.Context(), q, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

func newEpoch(t *testing.T) []byte {
	e := make([]byte, store.EpochSize)
	if _, err := rand.Read(e); err != nil {
		t.Fatal(err)
	}
	return e
}

// scanRun is a run of scans of epoch from id first, logged at the times
// given.
func scanRun(epoch []byte, from, first int64, at ...time.Time) *store.ScanRun {
	r := &store.ScanRun{Epoch: epoch, From: from}
	for i, a := range at {
		r.Records = append(r.Records, &store.Scan{ID: first + int64(i), At: a, Source: "gate", Decision: "allow", Reason: "ok",
			PassID: passID(uint16(i)), Subject: subj(byte(i)), KID: kid(2)})
	}
	return r
}

func times(at time.Time, n int) []time.Time {
	out := make([]time.Time, n)
	for i := range out {
		out[i] = at.Add(time.Duration(i) * time.Second)
	}
	return out
}

// pushScans ingests run at the hub as a push at the hub's time at.
func pushScans(t *testing.T, hub *store.DB, id int64, at time.Time, run *store.ScanRun) *store.IngestResult {
	t.Helper()
	hub.Now = func() time.Time { return at }
	res, err := hub.IngestPush(t.Context(), id, &store.Ingest{ApplianceNow: at, Scans: run})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// A hub holding old and new records of an appliance keeps, after a
// purge, only what the policy keeps: scans of the scan retention, pass
// records until the pass retention after expiry, audit records and status
// changes of the audit retention, revocation records beyond it while a
// pass they void may be valid; and every purge is audited.
func TestDB_PurgeDistrictRecords(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	hub := MustOpenDB(t)
	id := MustHubAppliance(t, hub, "office-a")
	now := time.Now().Truncate(time.Millisecond)
	p := store.DefaultPolicy() // 28 days of scans, 90 of expired passes, 365 of audit
	epoch := newEpoch(t)
	pushScans(t, hub, id, now, scanRun(epoch, 1, 1, times(now.Add(-40*day), 3)...))
	pushScans(t, hub, id, now, scanRun(epoch, 1, 4, times(now.Add(-27*day), 2)...))
	conn := rawDB(t, hub)
	ms := func(d time.Duration) int64 { return now.Add(d).UnixMilli() }
	events := []struct {
		kind string
		at   int64
		body string
		keep bool
	}{
		{"pass", ms(-200 * day), fmt.Sprintf(`{"id":"01","issued_ms":%d,"expires_ms":%d}`, ms(-200*day), ms(-100*day)), false},
		{"pass", ms(-200 * day), fmt.Sprintf(`{"id":"02","issued_ms":%d,"expires_ms":%d}`, ms(-200*day), ms(-80*day)), true},
		// The longest pass the hub knows: 510 days.
		{"pass", ms(-500 * day), fmt.Sprintf(`{"id":"03","issued_ms":%d,"expires_ms":%d}`, ms(-500*day), ms(10*day)), true},
		{"status", ms(-400 * day), `{"subject":"aa"}`, false},
		{"status", ms(-300 * day), `{"subject":"bb"}`, true},
		{"audit", ms(-366 * day), `{"seq":1}`, false},
		{"audit", ms(-10 * day), `{"seq":2}`, true},
		// A subject revocation cutting off passes issued 400 days ago may
		// still void pass 03: kept; one of 600 days ago voids nothing valid.
		{"revocation", ms(-400 * day), fmt.Sprintf(`{"kind":1,"before_ms":%d}`, ms(-400*day)), true},
		{"revocation", ms(-600 * day), fmt.Sprintf(`{"kind":1,"before_ms":%d}`, ms(-600*day)), false},
		{"revocation", ms(-600 * day), `{"kind":2,"target":"01"}`, false},
		{"revocation", ms(-10 * day), `{"kind":2,"target":"02"}`, true},
		// The newest row is kept whatever its age (its id would be reused).
		{"audit", ms(-999 * day), `{"seq":3}`, true},
	}
	for i, e := range events {
		if _, err := conn.ExecContext(ctx, `INSERT INTO district_events (appliance_id, seq, kind, at_ms, body, received_ms) VALUES (?, ?, ?, ?, ?, ?)`,
			id, i+1, e.kind, e.at, e.body, now.UnixMilli()); err != nil {
			t.Fatal(err)
		}
	}

	// The district's revocation list, which every appliance pulls, is
	// kept whatever its age.
	if _, err := conn.ExecContext(ctx, `INSERT INTO revocations (kind, target, before_ms, reason, at_ms, origin) VALUES (1, ?, ?, 'red', ?, 'office-a')`,
		make([]byte, 16), ms(-900*day), ms(-900*day)); err != nil {
		t.Fatal(err)
	}

	n, err := hub.PurgeDistrictScans(ctx, now.Add(-p.ScanRetention), 2, "retention")
	if err != nil || n != 3 {
		t.Fatalf("purged %d district scans, %v; want 3", n, err)
	}
	if got := count(t, conn, `SELECT count(*) FROM district_scans WHERE at_ms >= ?`, ms(-28*day)); got != 2 || count(t, conn, `SELECT count(*) FROM district_scans`) != 2 {
		t.Fatalf("%d recent scans left of 2", got)
	}
	pe, err := hub.PurgeDistrictEvents(ctx, store.RetentionOf(&p, now), 1000, "retention")
	if err != nil {
		t.Fatal(err)
	}
	if want := (store.PurgedEvents{Passes: 1, Status: 1, Audit: 1, Revocations: 2}); pe != want {
		t.Fatalf("purged %+v, want %+v", pe, want)
	}
	if count(t, conn, `SELECT count(*) FROM revocations`) != 1 {
		t.Fatal("the district's revocation list was purged")
	}
	for i, e := range events {
		left := count(t, conn, `SELECT count(*) FROM district_events WHERE seq = ?`, i+1)
		if (left == 1) != e.keep {
			t.Errorf("%s record %d (%s): left %d, want kept %v", e.kind, i+1, e.body, left, e.keep)
		}
	}
	recs := purgeRecords(t, hub, store.AuditPurge)
	kinds := map[string]float64{}
	for _, r := range recs {
		var d map[string]any
		if err := json.Unmarshal(r.Detail, &d); err != nil {
			t.Fatal(err)
		}
		kinds[d["kind"].(string)] = d["rows"].(float64)
	}
	want := map[string]float64{"district_scans": 3, "district_pass": 1, "district_status": 1, "district_audit": 1, "district_revocation": 2}
	if fmt.Sprint(kinds) != fmt.Sprint(want) {
		t.Fatalf("purge records %v, want %v", kinds, want)
	}
	// Nothing more to purge: no further records.
	if _, err := hub.PurgeDistrictEvents(ctx, store.RetentionOf(&p, now), 1000, "retention"); err != nil {
		t.Fatal(err)
	}
	if got := len(purgeRecords(t, hub, store.AuditPurge)); got != len(recs) {
		t.Fatalf("%d purge records after an empty purge, want %d", got, len(recs))
	}
	if _, err := hub.VerifyAudit(ctx); err != nil {
		t.Fatalf("audit trail after the purges: %v", err)
	}
	// Past every scan: the newest is kept, so that its id is not reused.
	if n, err := hub.PurgeDistrictScans(ctx, now.Add(day), 1000, "retention"); err != nil || n != 1 {
		t.Fatalf("purged %d district scans, %v; want all but the newest", n, err)
	}
	if got := count(t, conn, `SELECT count(*) FROM district_scans WHERE seq = 5`); got != 1 {
		t.Fatal("the newest district scan was purged")
	}
}

// The marks of an appliance's past epochs are collected, and a late push
// of a collected epoch (an appliance restored from an old backup) is
// acknowledged as held: nothing is stored twice, no gap is reported, and
// the epochs still current or new are stored as before.
func TestDB_CollectSyncMarks(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	hub := MustOpenDB(t)
	id := MustHubAppliance(t, hub, "gate-a")
	conn := rawDB(t, hub)
	now := time.Now().Truncate(time.Millisecond)
	p := store.DefaultPolicy()
	old := now.Add(-60 * day)
	e1, e2, e3 := newEpoch(t), newEpoch(t), newEpoch(t)
	pushScans(t, hub, id, old, scanRun(e1, 1, 1, times(old, 10)...))
	pushScans(t, hub, id, old.Add(time.Hour), scanRun(e2, 11, 11, times(old.Add(time.Hour), 2)...))
	pushScans(t, hub, id, now.Add(-time.Hour), scanRun(e3, 13, 13, times(now.Add(-time.Hour), 3)...))
	// Another appliance whose only epoch is old: it is current, kept.
	idB := MustHubAppliance(t, hub, "gate-b")
	eb := newEpoch(t)
	pushScans(t, hub, idB, old, scanRun(eb, 1, 1, times(old, 4)...))
	held := count(t, conn, `SELECT count(*) FROM district_scans`)

	n, err := hub.CollectSyncMarks(ctx, &p, now, 1, "retention")
	if err != nil || n != 2 {
		t.Fatalf("collected %d marks, %v; want 2 (e1, e2)", n, err)
	}
	for _, c := range []struct {
		app   int64
		epoch []byte
		kept  bool
	}{{id, e1, false}, {id, e2, false}, {id, e3, true}, {idB, eb, true}} {
		if got := count(t, conn, `SELECT count(*) FROM sync_marks WHERE appliance_id = ? AND epoch = ?`, c.app, c.epoch); (got == 1) != c.kept {
			t.Errorf("mark of %x at appliance %d: %d, want kept %v", c.epoch[:2], c.app, got, c.kept)
		}
	}
	if recs := purgeRecords(t, hub, store.AuditPurge); len(recs) != 1 || recs[0].Subject != "sync_marks" {
		t.Fatalf("purge records %+v, want one of sync_marks", recs)
	}

	// A restored appliance sends e1 again from where its backup was, in
	// two batches (the first brings the mark back, up to its end only),
	// then the whole of it, and e2.
	for _, run := range []*store.ScanRun{
		scanRun(e1, 1, 3, times(old.Add(2*time.Second), 3)...),
		scanRun(e1, 1, 6, times(old.Add(5*time.Second), 5)...),
		scanRun(e1, 1, 1, times(old, 10)...),
		scanRun(e2, 11, 11, times(old.Add(time.Hour), 2)...),
	} {
		res := pushScans(t, hub, id, now, run)
		last := run.Records[len(run.Records)-1].ID
		if res.Stored != 0 || res.Skipped != len(run.Records) || res.ScansMark != last {
			t.Fatalf("late push of ids %d..%d: %+v, want all skipped, mark %d", run.Records[0].ID, last, res, last)
		}
		// The mark is back, so that a bundle tells the appliance too.
		var mark int64
		if err := conn.QueryRowContext(ctx, `SELECT mark FROM sync_marks WHERE appliance_id = ? AND epoch = ?`, id, run.Epoch).Scan(&mark); err != nil || mark != last {
			t.Fatalf("mark after the late push: %d, %v; want %d", mark, err, last)
		}
	}
	if got := count(t, conn, `SELECT count(*) FROM district_scans`); got != held {
		t.Fatalf("%d scans at the hub after late pushes, want %d", got, held)
	}
	// The current epochs go on as before, a copy still de-duplicated.
	if res := pushScans(t, hub, id, now, scanRun(e3, 13, 13, times(now.Add(-time.Hour), 4)...)); res.Stored != 1 || res.Skipped != 3 {
		t.Fatalf("push of the current epoch: %+v", res)
	}
	if res := pushScans(t, hub, idB, now, scanRun(eb, 1, 5, times(now, 2)...)); res.Stored != 2 {
		t.Fatalf("push of an old but current epoch: %+v", res)
	}
	// A new epoch is stored from its first scan logged after the
	// collected epochs (those before are past the scan retention anyway).
	e4 := newEpoch(t)
	at := append(times(old.Add(-day), 2), append(times(now.Add(-40*day), 2), times(now, 3)...)...)
	if res := pushScans(t, hub, id, now, scanRun(e4, 17, 17, at...)); res.Stored != 5 || res.Skipped != 2 || res.ScansMark != 23 {
		t.Fatalf("push of a new epoch: %+v", res)
	}
	if got := count(t, conn, `SELECT count(*) FROM district_scans WHERE epoch = ?`, e4); got != 5 {
		t.Fatalf("%d scans of the new epoch stored, want 5", got)
	}
}

// A retired appliance's marks go once its retirement is older than the
// stream's boundary, and not before; its final bundle arriving later is
// then taken as held.
func TestDB_CollectSyncMarksRetired(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	hub := MustOpenDB(t)
	conn := rawDB(t, hub)
	now := time.Now().Truncate(time.Millisecond)
	p := store.DefaultPolicy()
	ids, epochs := map[string]int64{}, map[string][]byte{}
	for i, name := range []string{"gate-old", "gate-new"} {
		id := MustHubAppliance(t, hub, name)
		ids[name], epochs[name] = id, newEpoch(t)
		at := now.Add(-time.Duration(40-30*i) * day)
		pushScans(t, hub, id, at, scanRun(epochs[name], 1, 1, times(at, 3)...))
		hub.Now = func() time.Time { return at.Add(time.Hour) }
		if _, err := hub.RetireAppliance(ctx, name, "replaced", "admin"); err != nil {
			t.Fatal(err)
		}
	}
	n, err := hub.CollectSyncMarks(ctx, &p, now, 100, "retention")
	if err != nil || n != 1 {
		t.Fatalf("collected %d marks, %v; want 1", n, err)
	}
	if count(t, conn, `SELECT count(*) FROM sync_marks WHERE appliance_id = ?`, ids["gate-old"]) != 0 ||
		count(t, conn, `SELECT count(*) FROM sync_marks WHERE appliance_id = ?`, ids["gate-new"]) != 1 {
		t.Fatal("collected the wrong retired appliance's marks")
	}
	before := count(t, conn, `SELECT before_ms FROM sync_collected WHERE appliance_id = ? AND stream = 'scans'`, ids["gate-old"])
	if want := now.Add(-40*day + time.Hour + p.ClockSkew).UnixMilli(); int64(before) != want {
		t.Fatalf("held before %d, want the retirement plus the clock tolerance %d", before, want)
	}
	// Its final bundle, arriving now, brings the scans it had sent.
	hub.Now = func() time.Time { return now }
	at := now.Add(-40 * day)
	up, err := hub.ImportUpBundle(ctx, &store.UpImport{Appliance: "gate-old", Seq: 1,
		Scans: []*store.ScanRun{scanRun(epochs["gate-old"], 1, 1, times(at, 3)...)}}, []byte("bundle-public"))
	if err != nil || up.Stored != 0 || up.Skipped != 3 {
		t.Fatalf("final bundle after collection: %+v, %v", up, err)
	}
	if got := count(t, conn, `SELECT count(*) FROM district_scans WHERE appliance_id = ?`, ids["gate-old"]); got != 3 {
		t.Fatalf("%d scans of the retired appliance, want 3", got)
	}
}

// A purge of a million appliance scans at a hub, measured like
// TestPurgeMillion (same gate, same variables).
func TestPurgeDistrictMillion(t *testing.T) {
	rows, batch := purgeBenchParams(t)
	ctx := t.Context()
	dir := t.TempDir()
	now := time.Now()
	boundary := now.Add(-28 * 24 * time.Hour)
	start := time.Now()
	hub := MustOpenDBDir(t, dir)
	id := MustHubAppliance(t, hub, "gate-a")
	fillOldDistrictScans(t, hub, id, rows, boundary)
	// A recent scan after them: the newest row is never purged.
	pushScans(t, hub, id, now, scanRun(newEpoch(t), 1, 1, now))
	hub.Now = time.Now
	t.Logf("inserted %d district scans in %v", rows, time.Since(start).Round(time.Millisecond))
	measurePurge(t, hub, "district", rows, batch, func() (int64, error) {
		return hub.PurgeDistrictScans(ctx, boundary, batch, "retention")
	})
}

// fillOldDistrictScans inserts n scans of appliance id spread over the
// week before before (fillOld).
func fillOldDistrictScans(t *testing.T, hub *store.DB, id int64, n int, before time.Time) {
	t.Helper()
	fillOld(t, hub.Path(), n, before, `INSERT INTO district_scans (appliance_id, seq, at_ms, source, decision, reason, repeat, pass_id, subject, kid, received_ms)
		VALUES (?, ?, ?, ?, 'allow', 'ok', 0, ?, ?, ?, ?)`,
		func(i int, at int64, pid, subj, kid []byte) []any {
			return []any{id, i + 1, at, "gate-" + fmt.Sprint(i%8), pid, subj, kid, at}
		})
}

// auditRun is a run of audit records of epoch from seq first, made at
// the times given.
func auditRun(epoch []byte, from, first int64, at ...time.Time) *store.EventRun {
	r := &store.EventRun{Epoch: epoch, From: from}
	for i, a := range at {
		seq := first + int64(i)
		r.Records = append(r.Records, &store.OutboxRecord{Seq: seq, Kind: "audit", At: a,
			Body: fmt.Sprintf(`{"seq":%d,"at_ms":%d,"actor":"admin","action":"login","subject":"","detail":{},"hash":"00"}`, seq, a.UnixMilli())})
	}
	return r
}

// Records of an appliance's event stream: the marks of past epochs go
// under the longest of the audit and pass retentions, and a late copy of
// a collected epoch, pushed or in a bundle, is held, not stored again.
func TestDB_CollectSyncMarksEvents(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	hub := MustOpenDB(t)
	id := MustHubAppliance(t, hub, "gate-a")
	conn := rawDB(t, hub)
	now := time.Now().Truncate(time.Millisecond)
	p := store.DefaultPolicy()
	old := now.Add(-400 * day)
	recent := now.Add(-100 * day) // past the scan retention, not the audit one
	e1, e2, e3, s1, s2 := newEpoch(t), newEpoch(t), newEpoch(t), newEpoch(t), newEpoch(t)
	for _, push := range []struct {
		at     time.Time
		events *store.EventRun
		scans  *store.ScanRun
	}{
		{old, auditRun(e1, 1, 1, times(old, 6)...), scanRun(s1, 1, 1, times(old, 3)...)},
		{recent, auditRun(e2, 7, 7, times(recent, 2)...), scanRun(s2, 4, 4, times(recent, 2)...)},
		{now, auditRun(e3, 9, 9, times(now, 2)...), nil},
	} {
		hub.Now = func() time.Time { return push.at }
		if _, err := hub.IngestPush(ctx, id, &store.Ingest{ApplianceNow: push.at, Events: push.events, Scans: push.scans}); err != nil {
			t.Fatal(err)
		}
	}
	held := count(t, conn, `SELECT count(*) FROM district_events`)
	// e1 (before the audit retention) and s1 go; e2 is superseded but
	// recent; s2 is the newest scans epoch.
	n, err := hub.CollectSyncMarks(ctx, &p, now, 100, "retention")
	if err != nil || n != 2 {
		t.Fatalf("collected %d marks, %v; want 2", n, err)
	}
	for _, c := range []struct {
		epoch []byte
		kept  bool
	}{{e1, false}, {e2, true}, {e3, true}, {s1, false}, {s2, true}} {
		if got := count(t, conn, `SELECT count(*) FROM sync_marks WHERE epoch = ?`, c.epoch); (got == 1) != c.kept {
			t.Errorf("mark of %x: %d, want kept %v", c.epoch[:2], got, c.kept)
		}
	}
	hub.Now = func() time.Time { return now }
	res, err := hub.IngestPush(ctx, id, &store.Ingest{ApplianceNow: now, Events: auditRun(e1, 1, 3, times(old.Add(2*time.Second), 4)...)})
	if err != nil || res.Stored != 0 || res.Skipped != 4 || res.EventsMark != 6 {
		t.Fatalf("late push of a collected events epoch: %+v, %v", res, err)
	}
	// The same records in a late bundle, with the collected scans epoch.
	up, err := hub.ImportUpBundle(ctx, &store.UpImport{Appliance: "gate-a", Seq: 1,
		Scans:  []*store.ScanRun{scanRun(s1, 1, 2, times(old.Add(time.Second), 2)...)},
		Events: []*store.EventRun{auditRun(e1, 1, 1, times(old, 6)...)}}, []byte("bundle-public"))
	if err != nil || up.Stored != 0 || up.Skipped != 8 {
		t.Fatalf("late bundle of collected epochs: %+v, %v", up, err)
	}
	if got := count(t, conn, `SELECT count(*) FROM district_events`); got != held {
		t.Fatalf("%d records at the hub after late copies, want %d", got, held)
	}
	if got := count(t, conn, `SELECT count(*) FROM district_scans`); got != 5 {
		t.Fatalf("%d scans at the hub after late copies, want 5", got)
	}
	// The hub's next bundle tells the appliance what it holds of them.
	down, err := hub.PrepareDownBundle(ctx, "gate-a")
	if err != nil {
		t.Fatal(err)
	}
	marks := map[string]int64{}
	for _, m := range down.Marks {
		marks[m.Stream+hex.EncodeToString(m.Epoch)] = m.Mark
	}
	if marks["scans"+hex.EncodeToString(s1)] != 3 || marks["events"+hex.EncodeToString(e1)] != 6 {
		t.Fatalf("bundle marks %v, want s1 at 3 and e1 at 6", marks)
	}
}
