package store_test

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"passgate/pass"
	"passgate/store"
)

// MustEnrolDB opens a database in dir and stores an appliance named name
// enrolled with a hub (the hub itself is not needed to read and
// acknowledge batches).
func MustEnrolDB(tb testing.TB, dir, name string) *store.DB {
	tb.Helper()
	db := MustOpenDBDir(tb, dir)
	MustEnrol(tb, db, name)
	return db
}

// MustEnrol stores db as the enrolled appliance name, with token
// tokenOf(name).
func MustEnrol(tb testing.TB, db *store.DB, name string) {
	tb.Helper()
	p := store.DefaultPolicy()
	err := db.SetupEnrolled(tb.Context(), &store.EnrolledSetup{
		District: &store.District{ID: "xa", Name: "Xi'an Yanta", PseudonymKey: make([]byte, 32), Appliance: name},
		Trust:    []*store.Key{{KID: kid(1), Role: store.RoleRoot, Alg: pass.AlgEdDSA, Public: []byte("root-public"), District: "xa"}},
		Policy:   &p,
		Hub: &store.SyncHub{URL: "https://hub.invalid:8443", HubCA: []byte("ca"), Appliance: name,
			Token: tokenOf(name), BundleKey: []byte("bundle-private")},
		Admin: &store.User{Username: "admin", PasswordHash: testHash},
	})
	if err != nil {
		tb.Fatal(err)
	}
}

func tokenOf(name string) []byte {
	h := sha256.Sum256([]byte("token " + name))
	return h[:]
}

// MustHubAppliance makes hub a hub (if it has no district yet) and
// enrols an appliance name with it, returning its id.
func MustHubAppliance(tb testing.TB, hub *store.DB, name string) int64 {
	tb.Helper()
	if _, err := hub.District(tb.Context()); errors.Is(err, store.ErrNotInitialized) {
		MustSetup(tb, hub)
	}
	code := sha256.Sum256([]byte("code " + name))
	if _, err := hub.AddAppliance(tb.Context(), name, store.ApplianceOffice, code[:], hub.Now().Add(time.Hour), "admin"); err != nil {
		tb.Fatal(err)
	}
	th := sha256.Sum256(tokenOf(name))
	a, err := hub.EnrolAppliance(tb.Context(), &store.Enrolment{CodeHash: code[:], TokenHash: th[:], BundleKey: []byte("bundle-public"), Actor: "hub"})
	if err != nil {
		tb.Fatal(err)
	}
	return a.ID
}

// logScans logs n scans at db, the i-th with pass passID(i) and a
// source naming the run, and returns them.
func logScans(tb testing.TB, db *store.DB, run string, n int) []*store.Scan {
	tb.Helper()
	out := make([]*store.Scan, n)
	for i := range n {
		s := &store.Scan{At: db.Now(), Source: run, Decision: "allow", Reason: "ok",
			PassID: passID(uint16(i)), Subject: subj(byte(i)), KID: kid(2)}
		if i%7 == 3 {
			s.Decision, s.Reason, s.PassID, s.Subject, s.KID = "deny", "not_a_pass", pass.ID{}, pass.Subject{}, pass.KeyID{}
		}
		if err := db.LogScan(tb.Context(), s); err != nil {
			tb.Fatal(err)
		}
		out[i] = s
	}
	return out
}

// ingestAll moves app's backlog into the hub by the store calls a push
// makes, without HTTP, until nothing is left.
func ingestAll(tb testing.TB, app, hub *store.DB, id int64, batch int) (stored int) {
	tb.Helper()
	for range 10000 {
		b, err := app.NextPush(tb.Context(), batch, batch)
		if err != nil {
			tb.Fatal(err)
		}
		if b.Empty() {
			return stored
		}
		res, err := hub.IngestPush(tb.Context(), id, &store.Ingest{ApplianceNow: app.Now(), Backlog: b.Backlog, Scans: b.Scans, Events: b.Events})
		if err != nil {
			tb.Fatal(err)
		}
		stored += res.Stored
		if _, err := app.AckPush(tb.Context(), ackOf(b.Scans, res.ScansMark), eventsAckOf(b.Events, res.EventsMark)); err != nil {
			tb.Fatal(err)
		}
	}
	tb.Fatal("backlog never drained")
	return 0
}

func ackOf(r *store.ScanRun, mark int64) *store.PushAck {
	if r == nil {
		return nil
	}
	return &store.PushAck{Epoch: r.Epoch, Mark: mark, Sent: r.Records[len(r.Records)-1].ID}
}

func eventsAckOf(r *store.EventRun, mark int64) *store.PushAck {
	if r == nil {
		return nil
	}
	return &store.PushAck{Epoch: r.Epoch, Mark: mark, Sent: r.Records[len(r.Records)-1].Seq}
}

// hubScans lists every scan of appliance at the hub, in stored order.
func hubScans(tb testing.TB, hub *store.DB, appliance string) []*store.Scan {
	tb.Helper()
	var all []*store.Scan
	after := int64(0)
	for {
		list, last, err := hub.DistrictScans(tb.Context(), appliance, after, store.MaxScanLimit)
		if err != nil {
			tb.Fatal(err)
		}
		if len(list) == 0 {
			return all
		}
		all, after = append(all, list...), last
	}
}

func sameScan(a, b *store.Scan) bool {
	return a.ID == b.ID && a.At.Equal(b.At) && a.Source == b.Source && a.Decision == b.Decision &&
		a.Reason == b.Reason && a.Repeat == b.Repeat && a.PassID == b.PassID && a.Subject == b.Subject && a.KID == b.KID
}

// epochsOnePerSyncingProcess: commands that open the file and log
// scans start no epoch; a process that syncs starts one, once.
func epochsOnePerSyncingProcess(t *testing.T) {
	dir := t.TempDir()
	db, err := store.Open(t.Context(), dir)
	if err != nil {
		t.Fatal(err)
	}
	db.Now = func() time.Time { return t0 }
	MustEnrol(t, db, "gate-a")
	logScans(t, db, "a", 5)
	first, err := db.SyncEpochs(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(first) != 1 || first[0].ScansFrom != 1 || first[0].EventsFrom != 1 {
		t.Fatalf("epochs after enrolment = %+v", first)
	}
	db.Close()
	// Fifty commands, each opening the file and logging a check the
	// way passgate check does: none starts an epoch.
	for i := range 50 {
		db2, err := store.Open(t.Context(), dir)
		if err != nil {
			t.Fatal(err)
		}
		logScans(t, db2, fmt.Sprintf("cli-%d", i), 1)
		db2.Close()
	}
	db3 := MustOpenDBDir(t, dir)
	if list, err := db3.SyncEpochs(t.Context()); err != nil || len(list) != 1 {
		t.Fatalf("after 50 commands: %d epochs, %v; want 1", len(list), err)
	}
	// A process that syncs starts one, once, however often it pushes.
	for range 3 {
		if err := db3.StartSyncing(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	logScans(t, db3, "b", 2)
	list, err := db3.SyncEpochs(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[1].ScansFrom != 56 || !list[1].StartedAt.After(list[0].StartedAt) || bytes.Equal(list[1].ID, list[0].ID) {
		t.Fatalf("epochs after syncing = %+v", list)
	}
	b, err := db3.NextPush(t.Context(), 100, 100)
	if err != nil {
		t.Fatal(err)
	}
	// The first run is the enrolment epoch's scans, the commands'
	// included.
	if b.Scans == nil || len(b.Scans.Records) != 55 || !bytes.Equal(b.Scans.Epoch, first[0].ID) || b.Backlog < 2 {
		t.Fatalf("first run = %+v", b.Scans)
	}
	if _, err := db3.AckPush(t.Context(), ackOf(b.Scans, 55), nil); err != nil {
		t.Fatal(err)
	}
	b, err = db3.NextPush(t.Context(), 100, 100)
	if err != nil {
		t.Fatal(err)
	}
	if b.Scans == nil || len(b.Scans.Records) != 2 || !bytes.Equal(b.Scans.Epoch, list[1].ID) || b.Scans.From != 56 {
		t.Fatalf("second run = %+v, want in the newest epoch", b.Scans)
	}
	if list, _ := db3.SyncEpochs(t.Context()); len(list) != 2 {
		t.Fatalf("pushing started %d more epochs", len(list)-2)
	}
}

func TestDB_SyncEpochs(t *testing.T) {
	t.Parallel()
	t.Run("OnePerSyncingProcess", epochsOnePerSyncingProcess)
	// A copy put back in place of the database, with or without the
	// epoch file beside it, starts a new epoch when opened: ids handed
	// out from then on may repeat ones the hub holds.
	t.Run("NewOnRestoredCopy", func(t *testing.T) {
		for _, withEpochFile := range []bool{false, true} {
			dir, saved := t.TempDir(), t.TempDir()
			db := MustOpenDBDir(t, dir)
			MustEnrol(t, db, "gate-a")
			logScans(t, db, "a", 3)
			db.Close()
			files := []string{store.FileName}
			if withEpochFile {
				files = append(files, store.EpochFileName)
			}
			for _, f := range files {
				copyFile(t, filepath.Join(dir, f), filepath.Join(saved, f))
			}
			db = MustOpenDBDir(t, dir)
			if err := db.StartSyncing(t.Context()); err != nil {
				t.Fatal(err)
			}
			logScans(t, db, "b", 3)
			db.Close()
			// Put back as a restore tool does: written beside, then
			// renamed over the live file. (Removing the live file first
			// would let the file system hand the copy the same inode.)
			for _, f := range files {
				copyFile(t, filepath.Join(saved, f), filepath.Join(dir, f+".restoring"))
				if err := os.Rename(filepath.Join(dir, f+".restoring"), filepath.Join(dir, f)); err != nil {
					t.Fatal(err)
				}
			}
			for _, sfx := range []string{"-wal", "-shm"} {
				os.Remove(filepath.Join(dir, store.FileName+sfx))
			}
			db = MustOpenDBDir(t, dir)
			list, err := db.SyncEpochs(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if len(list) != 2 || list[1].ScansFrom != 4 {
				t.Fatalf("epoch file restored %v: epochs %+v, want a new one from 4", withEpochFile, list)
			}
			db.Close()
		}
	})
	t.Run("BackupMovesOn", func(t *testing.T) {
		dir := t.TempDir()
		db := MustOpenDBDir(t, dir)
		MustEnrol(t, db, "gate-a")
		before, _ := db.SyncEpochs(t.Context())
		if err := db.Backup(t.Context(), filepath.Join(t.TempDir(), "copy.db")); err != nil {
			t.Fatal(err)
		}
		after, _ := db.SyncEpochs(t.Context())
		if len(after) != len(before)+1 {
			t.Fatalf("%d epochs after a backup, want %d: the copy's newest must not be the file's", len(after), len(before)+1)
		}
	})
	t.Run("StandaloneHasNone", func(t *testing.T) {
		dir := t.TempDir()
		db := MustOpenDBDir(t, dir)
		MustSetup(t, db)
		list, err := db.SyncEpochs(t.Context())
		if err != nil || len(list) != 0 {
			t.Fatalf("epochs = %v, %v", list, err)
		}
		if _, err := db.NextPush(t.Context(), 10, 10); !errors.Is(err, store.ErrNotEnrolled) {
			t.Fatalf("NextPush err = %v, want ErrNotEnrolled", err)
		}
		if _, enrolled, err := db.ScansAcked(t.Context()); err != nil || enrolled {
			t.Fatalf("ScansAcked enrolled = %v, %v", enrolled, err)
		}
	})
}

func TestDB_NextPushAckPush(t *testing.T) {
	t.Parallel()
	app := MustEnrolDB(t, t.TempDir(), "gate-a")
	logScans(t, app, "a", 25)
	MustSavePerson(t, app, 1) // a status change: one outbox record

	b, err := app.NextPush(t.Context(), 10, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if b.Scans == nil || len(b.Scans.Records) != 10 || b.Scans.Records[0].ID != 1 || b.Scans.From != 1 {
		t.Fatalf("scans = %+v", b.Scans)
	}
	if b.Events == nil || len(b.Events.Records) < 2 {
		t.Fatalf("events = %+v", b.Events)
	}
	kinds := map[string]int{}
	for _, e := range b.Events.Records {
		kinds[e.Kind]++
	}
	if kinds["status"] != 1 || kinds["audit"] < 1 {
		t.Fatalf("event kinds = %v", kinds)
	}
	if b.Backlog != 15 {
		t.Fatalf("backlog after the batch = %d, want 15", b.Backlog)
	}
	nEvents := int64(len(b.Events.Records))
	if n, _ := app.SyncBacklog(t.Context()); n != 25+nEvents {
		t.Fatalf("SyncBacklog = %d, want %d", n, 25+nEvents)
	}

	// The hub answers a mark beyond what was sent (it holds a lost
	// timeline): only what was sent counts as acknowledged.
	res, err := app.AckPush(t.Context(), &store.PushAck{Epoch: b.Scans.Epoch, Mark: 99, Sent: 10}, eventsAckOf(b.Events, b.Events.Records[len(b.Events.Records)-1].Seq))
	if err != nil {
		t.Fatal(err)
	}
	if !res.Ahead || res.ScansAcked != 10 {
		t.Fatalf("ack = %+v", res)
	}
	if acked, enrolled, err := app.ScansAcked(t.Context()); err != nil || !enrolled || acked != 10 {
		t.Fatalf("ScansAcked = %d, %v, %v", acked, enrolled, err)
	}
	if n, _ := app.SyncBacklog(t.Context()); n != 15 {
		t.Fatalf("SyncBacklog = %d, want 15 (outbox rows acknowledged are gone)", n)
	}
	// A stale answer never moves the acknowledgement back.
	if res, err := app.AckPush(t.Context(), &store.PushAck{Epoch: b.Scans.Epoch, Mark: 4, Sent: 4}, nil); err != nil || res.ScansAcked != 10 {
		t.Fatalf("stale ack = %+v, %v", res, err)
	}
	b, err = app.NextPush(t.Context(), 10, 10)
	if err != nil {
		t.Fatal(err)
	}
	if b.Events != nil || b.Scans.Records[0].ID != 11 {
		t.Fatalf("next batch starts at %d, events %v", b.Scans.Records[0].ID, b.Events)
	}
}

func TestDB_IngestPush(t *testing.T) {
	t.Parallel()
	t.Run("ExactlyOnce", testIngestPushExactlyOnce)
	t.Run("Gap", testIngestPushGap)
	t.Run("ErrRetired", testIngestPushErrRetired)
	t.Run("Revocation", testIngestPushRevocation)
	t.Run("ClockSkew", testIngestPushClockSkew)
}

func testIngestPushExactlyOnce(t *testing.T) {
	app := MustEnrolDB(t, t.TempDir(), "gate-a")
	hub := MustOpenDB(t)
	id := MustHubAppliance(t, hub, "gate-a")
	sent := logScans(t, app, "a", 30)
	b, err := app.NextPush(t.Context(), 20, 100)
	if err != nil {
		t.Fatal(err)
	}
	in := &store.Ingest{ApplianceNow: app.Now(), Scans: b.Scans, Events: b.Events}
	res, err := hub.IngestPush(t.Context(), id, in)
	if err != nil {
		t.Fatal(err)
	}
	if res.ScansMark != 20 || res.Stored != 20+len(b.Events.Records) || res.Skipped != 0 {
		t.Fatalf("first = %+v", res)
	}
	// The answer was lost: the same push again stores nothing.
	res, err = hub.IngestPush(t.Context(), id, in)
	if err != nil {
		t.Fatal(err)
	}
	if res.ScansMark != 20 || res.Stored != 0 || res.Skipped != 20+len(b.Events.Records) {
		t.Fatalf("again = %+v", res)
	}
	// A run overlapping the mark stores only what is new.
	b2, _ := app.NextPush(t.Context(), 30, 100)
	b2.Scans.Records = b2.Scans.Records[15:]
	res, err = hub.IngestPush(t.Context(), id, &store.Ingest{Scans: b2.Scans})
	if err != nil {
		t.Fatal(err)
	}
	if res.ScansMark != 30 || res.Stored != 10 || res.Skipped != 5 {
		t.Fatalf("overlap = %+v", res)
	}
	got := hubScans(t, hub, "gate-a")
	if len(got) != len(sent) {
		t.Fatalf("hub holds %d scans, want %d", len(got), len(sent))
	}
	for i := range sent {
		if !sameScan(got[i], sent[i]) {
			t.Fatalf("scan %d at the hub = %+v, want %+v", i, got[i], sent[i])
		}
	}
}

func testIngestPushGap(t *testing.T) {
	app := MustEnrolDB(t, t.TempDir(), "gate-a")
	hub := MustOpenDB(t)
	id := MustHubAppliance(t, hub, "gate-a")
	logScans(t, app, "a", 10)
	b, _ := app.NextPush(t.Context(), 100, 100)
	b.Scans.Records = b.Scans.Records[3:]
	_, err := hub.IngestPush(t.Context(), id, &store.Ingest{Scans: b.Scans, Events: b.Events})
	var gap *store.GapError
	if !errors.As(err, &gap) || gap.Expected != 1 || gap.Stream != store.StreamScans {
		t.Fatalf("err = %v, want a gap expecting 1", err)
	}
	if n := len(hubScans(t, hub, "gate-a")); n != 0 {
		t.Fatalf("a refused push stored %d scans", n)
	}
	list, _, _ := hub.DistrictEvents(t.Context(), "gate-a", 0, 100)
	if len(list) != 0 {
		t.Fatalf("a refused push stored %d events", len(list))
	}
}

func testIngestPushErrRetired(t *testing.T) {
	app := MustEnrolDB(t, t.TempDir(), "gate-a")
	hub := MustOpenDB(t)
	id := MustHubAppliance(t, hub, "gate-a")
	logScans(t, app, "a", 3)
	if _, err := hub.RetireAppliance(t.Context(), "gate-a", "stolen", "admin"); err != nil {
		t.Fatal(err)
	}
	b, _ := app.NextPush(t.Context(), 100, 100)
	if _, err := hub.IngestPush(t.Context(), id, &store.Ingest{Scans: b.Scans}); !errors.Is(err, store.ErrRetired) {
		t.Fatalf("err = %v, want ErrRetired", err)
	}
	if _, err := hub.IngestPush(t.Context(), id+100, &store.Ingest{Scans: b.Scans}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown appliance: err = %v, want ErrNotFound", err)
	}
}

func testIngestPushRevocation(t *testing.T) {
	app := MustEnrolDB(t, t.TempDir(), "gate-a")
	hub := MustOpenDB(t)
	id := MustHubAppliance(t, hub, "gate-a") // an office
	before, _ := hub.RevocationsSince(t.Context(), 0)
	// A status change of a person the office registered: its subject
	// revocation joins the hub's list.
	p := MustSavePerson(t, app, 4)
	if _, err := app.SetStatus(t.Context(), p.Subject, pass.Red, "positive test", "desk"); err != nil {
		t.Fatal(err)
	}
	// A lost card of a pass it never issued: refused.
	r := &store.Revocation{Kind: store.RevokePass, Target: []byte("passid-00012"), Reason: "lost"}
	if err := app.CreateRevocation(t.Context(), r); err != nil {
		t.Fatal(err)
	}
	ingestAll(t, app, hub, id, 100)
	after, _ := hub.RevocationsSince(t.Context(), 0)
	if len(after) != len(before)+1 {
		t.Fatalf("hub revocations %d → %d, want one more", len(before), len(after))
	}
	got := after[len(after)-1]
	if got.Kind != store.RevokeSubject || !bytes.Equal(got.Target, p.Subject[:]) || got.Reason != "positive test" {
		t.Fatalf("hub revocation = %+v", got)
	}
	if n := countRefusals(t, hub, "gate-a", "revocation"); n != 1 {
		t.Fatalf("%d refusals of a revocation audited, want 1", n)
	}
}

func testIngestPushClockSkew(t *testing.T) {
	app := MustEnrolDB(t, t.TempDir(), "gate-a")
	hub := MustOpenDB(t)
	id := MustHubAppliance(t, hub, "gate-a")
	app.Now = func() time.Time { return t0.Add(-3 * time.Hour) }
	logScans(t, app, "a", 3)
	b, _ := app.NextPush(t.Context(), 100, 100)
	res, err := hub.IngestPush(t.Context(), id, &store.Ingest{ApplianceNow: app.Now(), Scans: b.Scans})
	if err != nil {
		t.Fatal(err)
	}
	if !res.SkewFlagged || res.ClockSkew != -3*time.Hour {
		t.Fatalf("result = %+v", res)
	}
	a, err := hub.ApplianceByName(t.Context(), "gate-a")
	if err != nil {
		t.Fatal(err)
	}
	if a.ClockSkew != -3*time.Hour || !a.LastContact.Equal(t0) {
		t.Fatalf("appliance = %+v", a)
	}
	// Within the policy's tolerance: recorded, not flagged.
	res, err = hub.IngestPush(t.Context(), id, &store.Ingest{ApplianceNow: t0.Add(time.Minute)})
	if err != nil || res.SkewFlagged || res.ClockSkew != time.Minute {
		t.Fatalf("small skew = %+v, %v", res, err)
	}
}

func TestCheckRuns(t *testing.T) {
	t.Parallel()
	epoch := bytes.Repeat([]byte{7}, store.EpochSize)
	scan := func(id int64) *store.Scan {
		return &store.Scan{ID: id, At: t0, Source: "g", Decision: "allow", Reason: "ok"}
	}
	for _, tc := range []struct {
		name string
		run  *store.ScanRun
	}{
		{"short epoch", &store.ScanRun{Epoch: epoch[:8], From: 1, Records: []*store.Scan{scan(1)}}},
		{"zero start", &store.ScanRun{Epoch: epoch, From: 0, Records: []*store.Scan{scan(1)}}},
		{"negative start", &store.ScanRun{Epoch: epoch, From: -5, Records: []*store.Scan{scan(-5)}}},
		{"empty", &store.ScanRun{Epoch: epoch, From: 1}},
		{"before start", &store.ScanRun{Epoch: epoch, From: 5, Records: []*store.Scan{scan(4)}}},
		{"hole", &store.ScanRun{Epoch: epoch, From: 1, Records: []*store.Scan{scan(1), scan(3)}}},
		{"repeat", &store.ScanRun{Epoch: epoch, From: 1, Records: []*store.Scan{scan(1), scan(1)}}},
		{"backwards", &store.ScanRun{Epoch: epoch, From: 1, Records: []*store.Scan{scan(2), scan(1)}}},
		{"nil record", &store.ScanRun{Epoch: epoch, From: 1, Records: []*store.Scan{nil}}},
		{"bad decision", &store.ScanRun{Epoch: epoch, From: 1, Records: []*store.Scan{{ID: 1, Source: "g", Decision: "maybe", Reason: "ok"}}}},
		{"no reason", &store.ScanRun{Epoch: epoch, From: 1, Records: []*store.Scan{{ID: 1, Source: "g", Decision: "deny"}}}},
		{"long source", &store.ScanRun{Epoch: epoch, From: 1, Records: []*store.Scan{{ID: 1, Source: string(make([]byte, 129)), Decision: "deny", Reason: "x"}}}},
	} {
		if err := store.CheckScanRun(tc.run); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("%s: err = %v, want ErrInvalid", tc.name, err)
		}
	}
	if err := store.CheckScanRun(&store.ScanRun{Epoch: epoch, From: 1, Records: []*store.Scan{scan(7), scan(8)}}); err != nil {
		t.Errorf("valid run: %v", err)
	}
	ev := func(seq int64, kind, body string) *store.OutboxRecord {
		return &store.OutboxRecord{Seq: seq, Kind: kind, At: t0, Body: body}
	}
	for _, tc := range []struct {
		name string
		rec  *store.OutboxRecord
	}{
		{"unknown kind", ev(1, "person", `{}`)},
		{"not json", ev(1, "audit", `{"a":`)},
		{"array", ev(1, "audit", `[1,2]`)},
		{"null", ev(1, "audit", `null`)},
		{"string", ev(1, "audit", `"x"`)},
		{"huge", ev(1, "audit", `{"x":"`+string(bytes.Repeat([]byte{'a'}, store.MaxEventBody))+`"}`)},
	} {
		run := &store.EventRun{Epoch: epoch, From: 1, Records: []*store.OutboxRecord{tc.rec}}
		if err := store.CheckEventRun(run); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("%s: err = %v, want ErrInvalid", tc.name, err)
		}
	}
	// Revocations the hub cannot apply are refused, audited and skipped:
	// nothing of them is applied, and the mark moves past them so the
	// appliance's later records still get through.
	hub := MustOpenDB(t)
	id := MustHubAppliance(t, hub, "gate-a")
	bodies := []string{
		`{"kind":2,"target":"zz","reason":"x","at_ms":1}`,
		`{"kind":2,"target":"0011","reason":"x","at_ms":1}`,
		`{"kind":9,"target":"00112233445566778899aabb","reason":"x","at_ms":1}`,
		`{"kind":1,"target":"00112233445566778899aabbccddeeff","reason":"x","at_ms":1}`,
		`{"kind":2,"target":"00112233445566778899aabb","before_ms":5,"reason":"x","at_ms":1}`,
	}
	revsBefore, _ := hub.RevocationsSince(t.Context(), 0)
	for i, body := range bodies {
		seq := int64(i + 1)
		run := &store.EventRun{Epoch: epoch, From: 1, Records: []*store.OutboxRecord{ev(seq, "revocation", body)}}
		res, err := hub.IngestPush(t.Context(), id, &store.Ingest{Events: run})
		if err != nil || res.Refused != 1 || res.EventsMark != seq {
			t.Errorf("revocation %d: %+v, %v; want refused with the mark at %d", i, res, err, seq)
		}
	}
	if list, _, _ := hub.DistrictEvents(t.Context(), "gate-a", 0, 10); len(list) != 0 {
		t.Fatalf("refused records stored %d events", len(list))
	}
	if revs, _ := hub.RevocationsSince(t.Context(), 0); len(revs) != len(revsBefore) {
		t.Fatalf("refused records added %d revocations", len(revs)-len(revsBefore))
	}
	if n := countRefusals(t, hub, "gate-a", "revocation"); n != len(bodies) {
		t.Fatalf("%d refusals audited, want %d", n, len(bodies))
	}
}

// countRefusals counts the hub's audit records of refused records of
// kind from appliance.
func countRefusals(tb testing.TB, hub *store.DB, appliance, kind string) int {
	tb.Helper()
	list, err := hub.Refusals(tb.Context())
	if err != nil {
		tb.Fatal(err)
	}
	n := 0
	for _, r := range list {
		if r.Why == "" || r.Seq < 1 {
			tb.Fatalf("refusal without a reason or a sequence number: %+v", r)
		}
		if r.Appliance == appliance && r.Kind == kind {
			n++
		}
	}
	return n
}

func TestDB_RewindPush(t *testing.T) {
	t.Parallel()
	t.Run("Resend", func(t *testing.T) {
		dir := t.TempDir()
		app, err := store.Open(t.Context(), dir)
		if err != nil {
			t.Fatal(err)
		}
		app.Now = func() time.Time { return t0 }
		MustEnrol(t, app, "gate-a")
		hub := MustOpenDB(t)
		id := MustHubAppliance(t, hub, "gate-a")
		logScans(t, app, "a", 10)
		ingestAll(t, app, hub, id, 100)
		app.Close()
		app = MustOpenDBDir(t, dir)
		if err := app.StartSyncing(t.Context()); err != nil { // a second epoch
			t.Fatal(err)
		}
		logScans(t, app, "a2", 10)
		ingestAll(t, app, hub, id, 100)
		// The hub is restored from a backup that holds nothing: a new
		// file with the same appliance id.
		hub2 := MustOpenDB(t)
		id2 := MustHubAppliance(t, hub2, "gate-a")
		logScans(t, app, "b", 2)
		b, _ := app.NextPush(t.Context(), 100, 100)
		_, err = hub2.IngestPush(t.Context(), id2, &store.Ingest{Scans: b.Scans})
		var gap *store.GapError
		if !errors.As(err, &gap) {
			t.Fatalf("err = %v, want a gap", err)
		}
		if gap.Expected != b.Scans.From {
			t.Fatalf("gap expects %d, want the second epoch's start %d", gap.Expected, b.Scans.From)
		}
		resent, err := app.RewindPush(t.Context(), store.StreamScans, b.Scans.From, gap.Expected)
		if err != nil || !resent {
			t.Fatalf("rewind = %v, %v", resent, err)
		}
		// Both epochs go again: the hub lost the first one too, though
		// its gap answer only spoke of the second.
		ingestAll(t, app, hub2, id2, 100)
		if n := len(hubScans(t, hub2, "gate-a")); n != 22 {
			t.Fatalf("restored hub holds %d scans, want 22", n)
		}
	})
	t.Run("EventsGone", func(t *testing.T) {
		app := MustEnrolDB(t, t.TempDir(), "gate-a")
		hub := MustOpenDB(t)
		id := MustHubAppliance(t, hub, "gate-a")
		MustSavePerson(t, app, 1)
		ingestAll(t, app, hub, id, 100)
		hub2 := MustOpenDB(t)
		id2 := MustHubAppliance(t, hub2, "gate-a")
		MustSavePerson(t, app, 2)
		b, _ := app.NextPush(t.Context(), 100, 100)
		_, err := hub2.IngestPush(t.Context(), id2, &store.Ingest{Events: b.Events})
		var gap *store.GapError
		if !errors.As(err, &gap) {
			t.Fatalf("err = %v, want a gap", err)
		}
		// Acknowledged outbox rows are deleted: they cannot be sent
		// again, and the rest moves to a new epoch the hub accepts.
		resent, err := app.RewindPush(t.Context(), store.StreamEvents, b.Events.From, gap.Expected)
		if err != nil || resent {
			t.Fatalf("rewind = %v, %v; want not resendable", resent, err)
		}
		if stored := ingestAll(t, app, hub2, id2, 100); stored != len(b.Events.Records) {
			t.Fatalf("stored %d, want the %d events not yet acknowledged", stored, len(b.Events.Records))
		}
	})
}

// TestDB_PushRestoreFromBackup copies an enrolled appliance's database
// file while it is closed, pushes more, puts the copy back and logs new
// scans: the hub keeps the records of both timelines.
func TestDB_PushRestoreFromBackup(t *testing.T) {
	t.Parallel()
	dir, backup := t.TempDir(), t.TempDir()
	hub := MustOpenDB(t)
	id := MustHubAppliance(t, hub, "gate-a")

	app, err := store.Open(t.Context(), dir)
	if err != nil {
		t.Fatal(err)
	}
	app.Now = func() time.Time { return t0 }
	MustEnrol(t, app, "gate-a")
	first := logScans(t, app, "first", 50)
	ingestAll(t, app, hub, id, 20)
	lost := logScans(t, app, "before backup", 30) // not pushed before the backup
	app.Close()
	copyFile(t, filepath.Join(dir, store.FileName), filepath.Join(backup, store.FileName))

	app, err = store.Open(t.Context(), dir)
	if err != nil {
		t.Fatal(err)
	}
	app.Now = func() time.Time { return t0.Add(time.Hour) }
	second := logScans(t, app, "after backup", 40)
	ingestAll(t, app, hub, id, 25)
	app.Close()

	// Restore: the backup replaces the file (the WAL was checkpointed at
	// Close).
	copyFile(t, filepath.Join(backup, store.FileName), filepath.Join(dir, store.FileName))
	app = MustOpenDBDir(t, dir)
	app.Now = func() time.Time { return t0.Add(2 * time.Hour) }
	third := logScans(t, app, "after restore", 35)
	ingestAll(t, app, hub, id, 30)

	// The restored copy's ids 51.. of "after restore" collide with the
	// ids of "after backup": both are kept.
	if third[0].ID != second[0].ID {
		t.Fatalf("test assumption: restored copy reuses ids (%d vs %d)", third[0].ID, second[0].ID)
	}
	want := append(append(append(append([]*store.Scan{}, first...), lost...), second...), third...)
	got := hubScans(t, hub, "gate-a")
	if len(got) != len(want) {
		t.Fatalf("hub holds %d scans, want %d", len(got), len(want))
	}
	seen := map[string]bool{}
	for _, s := range got {
		k := fmt.Sprintf("%d/%s", s.ID, s.Source)
		if seen[k] {
			t.Fatalf("scan %s held twice", k)
		}
		seen[k] = true
	}
	for _, w := range want {
		if !seen[fmt.Sprintf("%d/%s", w.ID, w.Source)] {
			t.Fatalf("scan %d of %q missing at the hub", w.ID, w.Source)
		}
	}
}

func copyFile(tb testing.TB, src, dst string) {
	tb.Helper()
	in, err := os.Open(src)
	if err != nil {
		tb.Fatal(err)
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		tb.Fatal(err)
	}
	if err := out.Close(); err != nil {
		tb.Fatal(err)
	}
	for _, sfx := range []string{"-wal", "-shm"} {
		os.Remove(dst + sfx)
	}
}

// BenchmarkIngestPush measures the hub storing pushes of MaxScanBatch-
// sized runs (20,000 scans, as hub.MaxScanBatch) with distinct passes
// and subjects, reporting scan records per second.
func BenchmarkIngestPush(b *testing.B) {
	hub := MustOpenDB(b)
	id := MustHubAppliance(b, hub, "gate-a")
	const batch = 20000
	epoch := bytes.Repeat([]byte{3}, store.EpochSize)
	recs := make([]*store.Scan, batch)
	for i := range recs {
		s := &store.Scan{At: t0.Add(time.Duration(i) * 50 * time.Millisecond), Source: "gate-1", Decision: "allow", Reason: "ok", KID: kid(2)}
		s.PassID[0], s.PassID[1], s.PassID[2] = byte(i), byte(i>>8), byte(i>>16)
		s.Subject[0], s.Subject[1], s.Subject[2] = byte(i), byte(i>>8), 0x5b
		recs[i] = s
	}
	next := int64(1)
	b.ResetTimer()
	start, cpu0 := time.Now(), cpuTime()
	for b.Loop() {
		for i, s := range recs {
			s.ID = next + int64(i)
		}
		if _, err := hub.IngestPush(b.Context(), id, &store.Ingest{Scans: &store.ScanRun{Epoch: epoch, From: 1, Records: recs}}); err != nil {
			b.Fatal(err)
		}
		next += batch
	}
	b.ReportMetric(float64(next-1)/time.Since(start).Seconds(), "records/s")
	// The machine may be shared: records per second of this process's
	// own CPU time says what the ingest costs whatever else runs.
	b.ReportMetric(float64(next-1)/(cpuTime()-cpu0).Seconds(), "records/cpu-s")
}

// cpuTime is the CPU time (user and system) this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// TestDB_OldestWaiting: the time of the oldest record the hub has not
// acknowledged, scan or outbox record; zero once it holds them all.
func TestDB_OldestWaiting(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	app := MustEnrolDB(t, t.TempDir(), "gate-a")
	if at, err := app.OldestWaiting(ctx); err != nil || at.IsZero() {
		t.Fatalf("enrolment's audit records waiting: oldest = %v, %v; want a time", at, err)
	}
	b, err := app.NextPush(ctx, 1000, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := app.AckPush(ctx, nil, eventsAckOf(b.Events, b.Events.Records[len(b.Events.Records)-1].Seq)); err != nil {
		t.Fatal(err)
	}
	if at, err := app.OldestWaiting(ctx); err != nil || !at.IsZero() {
		t.Fatalf("nothing waiting: oldest = %v, %v; want zero", at, err)
	}
	old := time.UnixMilli(app.Now().Add(-20 * time.Minute).UnixMilli())
	for _, at := range []time.Time{old, old.Add(time.Minute)} {
		if err := app.LogScan(ctx, &store.Scan{At: at, Source: "a", Decision: "deny", Reason: "not_a_pass"}); err != nil {
			t.Fatal(err)
		}
	}
	if at, err := app.OldestWaiting(ctx); err != nil || !at.Equal(old) {
		t.Fatalf("oldest = %v, %v; want %v", at, err, old)
	}
	standalone := MustOpenDB(t)
	MustSetup(t, standalone)
	if _, err := standalone.OldestWaiting(ctx); !errors.Is(err, store.ErrNotEnrolled) {
		t.Fatalf("standalone: err = %v, want ErrNotEnrolled", err)
	}
}
