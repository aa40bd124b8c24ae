package districtsync

import (
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"passgate/pass"
	"passgate/store"
)

// auditSome appends n records to the appliance's trail (logins), as its
// people would.
func auditSome(tb testing.TB, db *store.DB, n int) {
	tb.Helper()
	for range n {
		if err := db.Audit(tb.Context(), &store.AuditRecord{Actor: "admin", Action: store.AuditLogin, Subject: "admin",
			Detail: json.RawMessage(`{"outcome":"ok"}`)}); err != nil {
			tb.Fatal(err)
		}
	}
}

// hubCheckpoint is what the hub holds for an appliance: the accepted
// size and its alarms.
func hubCheckpoint(tb testing.TB, h *pushHub, name string) (int64, []store.CheckpointAlarm) {
	tb.Helper()
	ctx := tb.Context()
	a, err := h.db.ApplianceByName(ctx, name)
	if err != nil {
		tb.Fatal(err)
	}
	raw := openRaw(tb, h.db)
	var size int64
	if err := raw.QueryRow(`SELECT coalesce((SELECT size FROM appliance_checkpoints WHERE appliance_id = ?), -1)`, a.ID).Scan(&size); err != nil {
		tb.Fatal(err)
	}
	alarms, err := h.db.CheckpointAlarms(ctx, 100)
	if err != nil {
		tb.Fatal(err)
	}
	return size, alarms
}

func openRaw(tb testing.TB, db *store.DB) *sql.DB {
	tb.Helper()
	raw, err := sql.Open("sqlite", db.Path()+"?_pragma=busy_timeout(10000)")
	if err != nil {
		tb.Fatal(err)
	}
	raw.SetMaxOpenConns(1)
	tb.Cleanup(func() { raw.Close() })
	return raw
}

func exec(tb testing.TB, db *sql.DB, qs ...string) {
	tb.Helper()
	for _, q := range qs {
		if _, err := db.Exec(q); err != nil {
			tb.Fatalf("%s: %v", q, err)
		}
	}
}

// TestPush_CheckpointAccepted: each push carries a signed checkpoint;
// the hub accepts the first and every later one it can prove extends
// the one before, and raises no alarm.
func TestPush_CheckpointAccepted(t *testing.T) {
	t.Parallel()
	h := newPushHub(t)
	app, c := h.enrol(t, "gate-a", false)
	auditSome(t, app, 3)
	drain(t, app, c)
	head, _, err := app.AuditHead(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if size, alarms := hubCheckpoint(t, h, "gate-a"); size != head || len(alarms) != 0 {
		t.Fatalf("hub holds checkpoint %d (want %d), alarms %+v", size, head, alarms)
	}
	for range 3 {
		auditSome(t, app, 2)
		drain(t, app, c)
	}
	head, _, _ = app.AuditHead(t.Context())
	if size, alarms := hubCheckpoint(t, h, "gate-a"); size != head || len(alarms) != 0 {
		t.Fatalf("hub holds checkpoint %d (want %d, proven consistent), alarms %+v", size, head, alarms)
	}
	if w := h.db.AuditWarnings(t.Context()); len(w) != 0 {
		t.Fatalf("hub warnings %q", w)
	}
}

// TestPush_CheckpointTampering: each rewrite of an appliance's trail
// raises an alarm at the hub on its next pushes: a row on the hub's
// warning list, and an audit record at the hub.
// checkpointTamper is a rewrite of an appliance's audit trail, and the
// reason the hub's alarm must give.
type checkpointTamper struct {
	name   string
	tamper func(t *testing.T, raw *sql.DB)
	want   string
}

// checkpointTampers edit, cut and wipe the trail behind the store's back.
func checkpointTampers() []checkpointTamper {
	return []checkpointTamper{
		{
			name: "edit a record and rehash",
			tamper: func(t *testing.T, raw *sql.DB) {
				exec(t, raw, `DROP TRIGGER audit_no_update`, `DROP TRIGGER audit_tree_no_delete`,
					`UPDATE audit SET actor = 'someone else' WHERE seq = 2`)
				rehashChain(t, raw, 2)
				exec(t, raw, `DELETE FROM audit_tree`) // rebuilt by Open from the rehashed records
			},
			want: "trail rewritten",
		},
		{
			name: "drop the tail and move the head",
			tamper: func(t *testing.T, raw *sql.DB) {
				exec(t, raw, `DROP TRIGGER audit_no_delete`,
					`DELETE FROM audit WHERE seq > (SELECT seq - 3 FROM audit_head)`,
					`UPDATE audit_head SET seq = (SELECT max(seq) FROM audit), hash = (SELECT hash FROM audit ORDER BY seq DESC LIMIT 1)`,
					`DROP TRIGGER audit_tree_no_delete`, `DELETE FROM audit_tree`)
			},
			want: "rolled back",
		},
		{
			name: "drop the triggers and wipe everything",
			tamper: func(t *testing.T, raw *sql.DB) {
				exec(t, raw, `DROP TRIGGER audit_no_delete`, `DROP TRIGGER audit_head_no_delete`, `DROP TRIGGER audit_tree_no_delete`,
					`DELETE FROM audit`, `DELETE FROM audit_head`, `DELETE FROM audit_tree`)
			},
			want: "rolled back",
		},
		{
			name: "delete a status change and insert it with another reason",
			tamper: func(t *testing.T, raw *sql.DB) {
				exec(t, raw, `CREATE TEMP TABLE sc AS SELECT * FROM status_changes WHERE reason = 'close contact'`,
					`DELETE FROM status_changes WHERE reason = 'close contact'`,
					`INSERT INTO status_changes (subject, from_color, to_color, reason, actor, at_ms)
						SELECT subject, from_color, to_color, 'data entry error', actor, at_ms FROM sc`)
			},
			want: `reason "data entry error") pushed without its audit record`,
		},
	}
}

func TestPush_CheckpointTampering(t *testing.T) {
	t.Parallel()
	for _, tc := range checkpointTampers() {
		t.Run(tc.name, func(t *testing.T) { tamperAfterCheckpoint(t, tc) })
	}
}

// tamperAfterCheckpoint pushes an office's trail to the hub, rewrites it
// as tc says while the appliance is stopped, pushes again and checks the
// hub's alarm.
func tamperAfterCheckpoint(t *testing.T, tc checkpointTamper) {
	ctx := t.Context()
	h := newPushHub(t)
	app, c := h.enrol(t, "office-a", true)
	subject := pass.Subject{1, 2, 3}
	if err := app.SavePerson(ctx, &store.Person{Subject: subject, MaskedName: "张*", IDTail: "0012", Color: pass.Green}, "desk1"); err != nil {
		t.Fatal(err)
	}
	if _, err := app.SetStatus(ctx, subject, pass.Yellow, "close contact", "desk1"); err != nil {
		t.Fatal(err)
	}
	auditSome(t, app, 4)
	drain(t, app, c)
	if _, alarms := hubCheckpoint(t, h, "office-a"); len(alarms) != 0 {
		t.Fatalf("alarms before tampering: %+v", alarms)
	}
	dir := dataDir(app)
	app.Close()
	raw, err := sql.Open("sqlite", dir+"/"+store.FileName)
	if err != nil {
		t.Fatal(err)
	}
	raw.SetMaxOpenConns(1)
	tc.tamper(t, raw)
	raw.Close()
	app, err = store.Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { app.Close() })
	c = newPushClient(t, app) // a new process: it knows nothing of the hub's checkpoint
	for range 2 {
		auditSome(t, app, 1)
		drain(t, app, c)
	}
	_, alarms := hubCheckpoint(t, h, "office-a")
	if len(alarms) == 0 || !strings.Contains(alarms[0].Reason, tc.want) || alarms[0].Appliance != "office-a" {
		t.Fatalf("alarms %+v, want %q", alarms, tc.want)
	}
	w := strings.Join(h.db.AuditWarnings(ctx), "\n")
	if !strings.Contains(w, "AUDIT ALARM for appliance office-a") {
		t.Fatalf("hub warnings %q", w)
	}
	var rec *store.AuditRecord
	if err := h.db.FindAudit(ctx, store.AuditFilter{}, func(r *store.AuditRecord) error {
		if r.Action == store.AuditCheckpointAlarm {
			c := *r
			rec = &c
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if rec == nil || rec.Subject != "office-a" || !strings.Contains(string(rec.Detail), "reason") {
		t.Fatalf("hub audit record of the alarm: %+v", rec)
	}
}

// rehashChain recomputes the chain from record from on and moves the
// head, by the documented format (store/audit.go, auditHash), as an
// attacker who read the source would.
func rehashChain(tb testing.TB, db *sql.DB, from int64) {
	tb.Helper()
	var prev []byte
	if err := db.QueryRow(`SELECT hash FROM audit WHERE seq = ?`, from-1).Scan(&prev); err != nil {
		tb.Fatal(err)
	}
	rows, err := db.Query(`SELECT seq, at_ms, actor, action, subject, detail FROM audit WHERE seq >= ? ORDER BY seq`, from)
	if err != nil {
		tb.Fatal(err)
	}
	type rec struct {
		seq, at int64
		fields  [4]string
	}
	var recs []rec
	for rows.Next() {
		var r rec
		if err := rows.Scan(&r.seq, &r.at, &r.fields[0], &r.fields[1], &r.fields[2], &r.fields[3]); err != nil {
			tb.Fatal(err)
		}
		recs = append(recs, r)
	}
	rows.Close()
	for _, r := range recs {
		h := sha256.New()
		h.Write([]byte("passgate-audit-v1"))
		h.Write(binary.BigEndian.AppendUint64(nil, uint64(r.seq)))
		h.Write(binary.BigEndian.AppendUint64(nil, uint64(r.at)))
		for _, f := range r.fields {
			h.Write(binary.BigEndian.AppendUint32(nil, uint32(len(f))))
			h.Write([]byte(f))
		}
		h.Write(prev)
		sum := h.Sum(nil)
		if _, err := db.Exec(`UPDATE audit SET prev_hash = ?, hash = ? WHERE seq = ?`, prev, sum, r.seq); err != nil {
			tb.Fatal(err)
		}
		prev = sum
	}
	if _, err := db.Exec(`UPDATE audit_head SET seq = ?, hash = ?`, recs[len(recs)-1].seq, prev); err != nil {
		tb.Fatal(err)
	}
}

// TestPush_CheckpointRefused: a checkpoint not signed by the pushing
// appliance's key, naming another trail, or with a proof that does not
// hold is refused with an alarm (the push's records are still stored).
func TestPush_CheckpointRefused(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	h := newPushHub(t)
	app, c := h.enrol(t, "gate-a", false)
	auditSome(t, app, 2)
	drain(t, app, c)
	held, _ := hubCheckpoint(t, h, "gate-a")

	// push sends one new scan with the given checkpoint.
	push := func(cp *AuditCheckpoint) PushResponse {
		t.Helper()
		logTestScans(t, app, "x", 1)
		b, err := app.NextPush(ctx, MaxScanBatch, MaxEventBatch)
		if err != nil || b.Scans == nil {
			t.Fatalf("NextPush = %+v, %v", b, err)
		}
		req := PushRequest{Now: time.Now().UnixMilli(), Scans: &ScanBatch{Epoch: b.Scans.Epoch, From: b.Scans.From}, Checkpoint: cp}
		for _, s := range b.Scans.Records {
			req.Scans.Records = append(req.Scans.Records, recordOf(s))
		}
		var resp PushResponse
		if err := c.Call(ctx, PathPush, &req, &resp); err != nil {
			t.Fatal(err)
		}
		if _, err := app.AckPush(ctx, &store.PushAck{Epoch: b.Scans.Epoch, Mark: resp.Scans.Mark, Sent: b.Scans.Records[len(b.Scans.Records)-1].ID}, nil); err != nil {
			t.Fatal(err)
		}
		return resp
	}
	_, cp, err := app.SignCheckpoint(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	skey, _, err := note.GenerateKey(rand.Reader, store.AuditKeyName)
	if err != nil {
		t.Fatal(err)
	}
	other, _ := note.NewSigner(skey)
	sign := func(c *store.Checkpoint) []byte {
		msg, err := note.Sign(&note.Note{Text: c.Text()}, other)
		if err != nil {
			t.Fatal(err)
		}
		return msg
	}
	for _, tc := range []struct {
		name string
		cp   *AuditCheckpoint
		want string
	}{
		{"another key", &AuditCheckpoint{Note: sign(cp)}, "not signed by its key"},
		{"garbage", &AuditCheckpoint{Note: []byte("passgate audit\n\n— x y\n")}, "not signed by its key or malformed"},
		{"oversized", &AuditCheckpoint{Note: make([]byte, 3*store.MaxCheckpoint)}, "malformed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := push(tc.cp)
			size, alarms := hubCheckpoint(t, h, "gate-a")
			if resp.CheckpointSize != held || size != held {
				t.Errorf("hub moved to checkpoint %d/%d, want it kept at %d", resp.CheckpointSize, size, held)
			}
			if len(alarms) == 0 || !strings.Contains(alarms[0].Reason, tc.want) {
				t.Fatalf("alarms %+v, want %q", alarms, tc.want)
			}
		})
	}

	// Its own key, a larger tree, and a proof that does not hold.
	auditSome(t, app, 3)
	signed, now, err := app.SignCheckpoint(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	bad := &AuditCheckpoint{Note: signed, From: held, Proof: [][]byte{make([]byte, 32), make([]byte, 32)}}
	push(bad)
	if size, alarms := hubCheckpoint(t, h, "gate-a"); size != held || len(alarms) == 0 || !strings.Contains(alarms[0].Reason, "does not extend") {
		t.Fatalf("bad proof to %d: hub holds %d, alarms %+v", now.Size, size, alarms)
	}
	if w := strings.Join(h.db.AuditWarnings(ctx), "\n"); !strings.Contains(w, "gate-a") {
		t.Fatalf("warnings %q", w)
	}
}

// TestBundle_CheckpointRollback: an up-bundle carries the appliance's
// checkpoint too; one from a database rolled back to an older copy
// raises the alarm at the hub that imports it.
func TestBundle_CheckpointRollback(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	w := newBundleWorld(t)
	dir := filepath.Dir(w.app.Path())
	auditSome(t, w.app, 2)
	w.app.Close()
	backup := t.TempDir()
	copyBundleDir(t, dir, backup)
	w.app = openBundleDB(t, dir)
	auditSome(t, w.app, 3)
	if _, err := importBytes(w.hub, exportUpBytes(t, w.app)); err != nil {
		t.Fatal(err)
	}
	if alarms, err := w.hub.CheckpointAlarms(ctx, 10); err != nil || len(alarms) != 0 {
		t.Fatalf("alarms before the rollback: %+v, %v", alarms, err)
	}
	w.app.Close()

	w.app = openBundleDB(t, backup)
	if _, err := importBytes(w.app, exportDownBytes(t, w.hub, w.appName)); err != nil {
		t.Fatal(err)
	}
	auditSome(t, w.app, 1)
	if _, err := importBytes(w.hub, exportUpBytes(t, w.app)); err != nil {
		t.Fatal(err)
	}
	alarms, err := w.hub.CheckpointAlarms(ctx, 10)
	if err != nil || len(alarms) == 0 || alarms[0].Appliance != w.appName || !strings.Contains(alarms[0].Reason, "rolled back") {
		t.Fatalf("alarms after a rolled-back bundle: %+v, %v", alarms, err)
	}
}

// TestPush_CheckpointRestoredOutbox: an appliance restored from a copy
// taken before its last push sends those audit records again, with the
// same hashes: the hub stores them in the new epoch and raises no alarm.
func TestPush_CheckpointRestoredOutbox(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	h := newPushHub(t)
	app, c := h.enrol(t, "gate-a", false)
	auditSome(t, app, 2)
	drain(t, app, c)
	auditSome(t, app, 3) // in the copy, not yet pushed
	dir := dataDir(app)
	app.Close()
	backup := t.TempDir()
	copyDB(t, dir, backup)
	app, err := store.Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	drain(t, app, c)
	app.Close()

	copyDB(t, backup, dir)
	app, err = store.Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { app.Close() })
	c = newPushClient(t, app)
	drain(t, app, c) // the three again, in a new epoch
	auditSome(t, app, 1)
	drain(t, app, c)
	head, _, _ := app.AuditHead(ctx)
	if size, alarms := hubCheckpoint(t, h, "gate-a"); len(alarms) != 0 || size != head {
		t.Fatalf("after sending the same records again: checkpoint %d (want %d), alarms %+v", size, head, alarms)
	}
}
