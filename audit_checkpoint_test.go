package main

import (
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"passgate/appliance"
	"passgate/store"
)

// checkpointedTrail makes an appliance with a trail of 5 records (the
// first admin; a registration's first status and its pass; a status
// change; a policy change), writes a checkpoint of it, and appends one
// more record (another policy change). It returns the data directory,
// an operator's copy of the checkpoint file and of the audit key, both
// kept away from the database.
func checkpointedTrail(t *testing.T) (dir, cpCopy, keyCopy string) {
	t.Helper()
	dir = t.TempDir()
	env := map[string]string{"PASSGATE_ADMIN_PASSWORD": "a long admin password"}
	step := func(args ...string) {
		t.Helper()
		if r := runCLI(t, env, "", args...); r.code != 0 {
			t.Fatalf("%s: exit %d: %s", args[0], r.code, r.stderr)
		}
	}
	step("issue", "--data", dir, "--name", "张三明", "--id", "610113199001011230", "--doses", "2")
	step("status", "--data", dir, "--id", "610113199001011230", "--color", "yellow", "--reason", "close contact")
	step("policy", "--data", dir, "--min-doses", "3")
	r := runAudit(t, "checkpoint", "--data", dir)
	if r.code != exitOK || !strings.Contains(r.stdout, "checkpoint of 5 records") {
		t.Fatalf("checkpoint: exit %d, %q %q", r.code, r.stdout, r.stderr)
	}
	r = runAudit(t, "key", "--data", dir)
	if r.code != exitOK || !strings.HasPrefix(r.stdout, store.AuditKeyName+"+") {
		t.Fatalf("key: exit %d, %q %q", r.code, r.stdout, r.stderr)
	}
	away := t.TempDir()
	keyCopy = filepath.Join(away, "audit.pub")
	cpCopy = filepath.Join(away, "audit-checkpoints")
	mustWrite(t, keyCopy, []byte(r.stdout))
	b, err := os.ReadFile(filepath.Join(dir, appliance.CheckpointFileName))
	if err != nil {
		t.Fatal(err)
	}
	mustWrite(t, cpCopy, b)
	step("policy", "--data", dir, "--min-doses", "2")
	r = runAudit(t, "verify", "--data", dir, "--checkpoint", cpCopy, "--key", keyCopy)
	if r.code != exitOK || !strings.Contains(r.stdout, "audit trail intact: 6 records, 2 status changes match") ||
		!strings.Contains(r.stdout, "extends all 1 checkpoints") {
		t.Fatalf("verify untouched: exit %d, %q %q", r.code, r.stdout, r.stderr)
	}
	return dir, cpCopy, keyCopy
}

func mustWrite(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// rawDB opens the database file as an attacker with write access would,
// without passgate.
func rawDB(t *testing.T, dir string) *sql.DB {
	t.Helper()
	raw, err := sql.Open("sqlite", filepath.Join(dir, store.FileName))
	if err != nil {
		t.Fatal(err)
	}
	raw.SetMaxOpenConns(1)
	t.Cleanup(func() { raw.Close() })
	return raw
}

func mustExec(t *testing.T, db *sql.DB, qs ...string) {
	t.Helper()
	for _, q := range qs {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}

// rehash recomputes the chain from record from on and moves the head,
// as the format is documented (store/audit.go, auditHash): what an
// attacker who read the source does after editing a record.
func rehash(t *testing.T, db *sql.DB, from int64) {
	t.Helper()
	var prev []byte
	if err := db.QueryRow(`SELECT hash FROM audit WHERE seq = ?`, from-1).Scan(&prev); err != nil {
		t.Fatal(err)
	}
	rows, err := db.Query(`SELECT seq, at_ms, actor, action, subject, detail FROM audit WHERE seq >= ? ORDER BY seq`, from)
	if err != nil {
		t.Fatal(err)
	}
	type rec struct {
		seq, at                        int64
		actor, action, subject, detail string
	}
	var recs []rec
	for rows.Next() {
		var r rec
		if err := rows.Scan(&r.seq, &r.at, &r.actor, &r.action, &r.subject, &r.detail); err != nil {
			t.Fatal(err)
		}
		recs = append(recs, r)
	}
	rows.Close()
	for _, r := range recs {
		h := sha256.New()
		h.Write([]byte("passgate-audit-v1"))
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(r.seq))
		h.Write(n[:])
		binary.BigEndian.PutUint64(n[:], uint64(r.at))
		h.Write(n[:])
		for _, f := range []string{r.actor, r.action, r.subject, r.detail} {
			binary.BigEndian.PutUint32(n[:4], uint32(len(f)))
			h.Write(n[:4])
			h.Write([]byte(f))
		}
		h.Write(prev)
		sum := h.Sum(nil)
		if _, err := db.Exec(`UPDATE audit SET prev_hash = ?, hash = ? WHERE seq = ?`, prev, sum, r.seq); err != nil {
			t.Fatal(err)
		}
		prev = sum
	}
	if _, err := db.Exec(`UPDATE audit_head SET seq = ?, hash = ?`, recs[len(recs)-1].seq, prev); err != nil {
		t.Fatal(err)
	}
}

// TestCLI_AuditCheckpointTampering: each way of rewriting the trail that
// the file alone cannot show is caught against an operator's copy of
// the checkpoints, with what is wrong.
func TestCLI_AuditCheckpointTampering(t *testing.T) {
	for _, tc := range []struct {
		name string
		// tamper changes the file; intactAlone says whether a verify
		// without checkpoints is still fooled (the reason checkpoints
		// exist).
		tamper      func(t *testing.T, raw *sql.DB)
		intactAlone bool
		want        string
	}{
		{
			name: "edit a record and rehash the chain and the tree",
			tamper: func(t *testing.T, raw *sql.DB) {
				mustExec(t, raw, `DROP TRIGGER audit_no_update`, `DROP TRIGGER audit_tree_no_delete`,
					`UPDATE audit SET actor = 'someone else' WHERE seq = 3`)
				rehash(t, raw, 3)
				// Open rebuilds a missing tree from the rehashed records.
				mustExec(t, raw, `DELETE FROM audit_tree`)
			},
			intactAlone: true,
			want:        "does not extend its checkpoint of 5 records",
		},
		{
			name: "drop the tail and move the head",
			tamper: func(t *testing.T, raw *sql.DB) {
				mustExec(t, raw, `DROP TRIGGER audit_no_delete`, `DELETE FROM audit WHERE seq >= 5`,
					`UPDATE audit_head SET seq = 4, hash = (SELECT hash FROM audit WHERE seq = 4)`)
			},
			intactAlone: true,
			want:        "the trail has 4 records but a checkpoint of it",
		},
		{
			name: "drop the triggers and wipe everything",
			tamper: func(t *testing.T, raw *sql.DB) {
				mustExec(t, raw, `DROP TRIGGER audit_no_delete`, `DROP TRIGGER audit_head_no_delete`,
					`DROP TRIGGER audit_tree_no_delete`,
					`DELETE FROM audit`, `DELETE FROM audit_head`, `DELETE FROM audit_tree`, `DELETE FROM status_changes`)
			},
			intactAlone: true,
			want:        "the trail has 0 records but a checkpoint of it",
		},
		{
			name: "delete a status change and insert it with another reason",
			tamper: func(t *testing.T, raw *sql.DB) {
				mustExec(t, raw, `CREATE TEMP TABLE sc AS SELECT * FROM status_changes WHERE reason = 'close contact'`,
					`DELETE FROM status_changes WHERE reason = 'close contact'`,
					`INSERT INTO status_changes (subject, from_color, to_color, reason, actor, at_ms)
						SELECT subject, from_color, to_color, 'data entry error', actor, at_ms FROM sc`)
			},
			want: `reason "data entry error") has no audit record`,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir, cpCopy, keyCopy := checkpointedTrail(t)
			tc.tamper(t, rawDB(t, dir))
			r := runAudit(t, "verify", "--data", dir)
			if tc.intactAlone && (r.code != exitOK || !strings.Contains(r.stdout, "intact")) {
				t.Fatalf("without a checkpoint: exit %d, %q %q (the tampering itself failed)", r.code, r.stdout, r.stderr)
			}
			r = runAudit(t, "verify", "--data", dir, "--checkpoint", cpCopy, "--key", keyCopy)
			if r.code != exitBroken || !strings.Contains(r.stdout, "BROKEN") || !strings.Contains(r.stdout, tc.want) {
				t.Fatalf("verify --checkpoint: exit %d, %q %q\nwant %q", r.code, r.stdout, r.stderr, tc.want)
			}
			// The appliance does not sign a fresh checkpoint over it.
			if r := runAudit(t, "checkpoint", "--data", dir); r.code != exitBroken && tc.intactAlone {
				t.Errorf("checkpoint over a rewritten trail: exit %d, %q %q", r.code, r.stdout, r.stderr)
			}
		})
	}
}

// TestCLI_AuditCheckpointForged: a checkpoint file edited to fit a
// rewritten trail, or signed by another key, fails on its signature.
func TestCLI_AuditCheckpointForged(t *testing.T) {
	dir, cpCopy, keyCopy := checkpointedTrail(t)
	b, err := os.ReadFile(cpCopy)
	if err != nil {
		t.Fatal(err)
	}
	forged := filepath.Join(t.TempDir(), "forged")
	mustWrite(t, forged, []byte(strings.Replace(string(b), "\n5\n", "\n4\n", 1)))
	r := runAudit(t, "verify", "--data", dir, "--checkpoint", forged, "--key", keyCopy)
	if r.code != exitBroken || !strings.Contains(r.stdout, "checkpoint 1 of") || !strings.Contains(r.stdout, "signature") {
		t.Fatalf("edited checkpoint: exit %d, %q %q", r.code, r.stdout, r.stderr)
	}

	// Another appliance's key (a database swapped for another one).
	other, _, otherKey := checkpointedTrail(t)
	_ = other
	r = runAudit(t, "verify", "--data", dir, "--checkpoint", cpCopy, "--key", otherKey)
	if r.code != exitBroken || !strings.Contains(r.stdout, "signature") {
		t.Fatalf("checkpoint against another key: exit %d, %q %q", r.code, r.stdout, r.stderr)
	}

	// An empty checkpoint file proves nothing, and says so.
	empty := filepath.Join(t.TempDir(), "empty")
	mustWrite(t, empty, nil)
	if r := runAudit(t, "verify", "--data", dir, "--checkpoint", empty, "--key", keyCopy); r.code != exitBroken || !strings.Contains(r.stdout, "NOT VERIFIED") {
		t.Fatalf("empty checkpoint file: exit %d, %q %q", r.code, r.stdout, r.stderr)
	}
	// --key without --checkpoint is a usage error.
	if r := runAudit(t, "verify", "--data", dir, "--key", keyCopy); r.code != exitError {
		t.Fatalf("--key alone: exit %d", r.code)
	}
}
