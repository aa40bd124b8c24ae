package store_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"passgate/store"
)

// checkpointNow signs a checkpoint of db's trail and opens it again
// with db's own key, as an operator's verify would.
func checkpointNow(t *testing.T, db *store.DB) *store.Checkpoint {
	t.Helper()
	signed, cp, err := db.SignCheckpoint(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	vkey, err := db.AuditPublicKey(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	vs, err := store.VerifierKeys(vkey)
	if err != nil {
		t.Fatal(err)
	}
	got, err := store.OpenCheckpoint(signed, vs)
	if err != nil || *got != *cp {
		t.Fatalf("OpenCheckpoint = %+v, %v; want %+v", got, err, cp)
	}
	return cp
}

// TestCheckpoint_AcrossPurge: retention removes records, not the tree's
// hashes: the trail still proves it extends checkpoints made before the
// purge, and is still caught when rewritten after it.
func TestCheckpoint_AcrossPurge(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	db := MustOpenDBDir(t, dir)
	MustSetup(t, db) // record 1, the first admin
	if err := db.AppendAuditBulk(t.Context(), 2500, time.Minute); err != nil {
		t.Fatal(err)
	}
	early := checkpointNow(t, db)
	if err := db.AppendAuditBulk(t.Context(), 37, time.Minute); err != nil {
		t.Fatal(err)
	}
	db.Now = func() time.Time { return t0.Add(5000 * time.Minute) }
	if n, err := db.PurgeAudit(t.Context(), t0.Add(2100*time.Minute), "retention"); err != nil || n < 2100 {
		t.Fatalf("PurgeAudit = %d, %v", n, err)
	}
	late := checkpointNow(t, db)
	v, err := db.VerifyAuditTrail(t.Context(), []*store.Checkpoint{early, late})
	if err != nil || v.Checkpoints != 2 || v.Size != 2539 || v.Root != late.Root {
		t.Fatalf("VerifyAuditTrail after purge = %+v, %v", v, err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	// A record after the purge base altered: caught by the chain; the
	// stored tree of a purged one altered: caught against the checkpoint.
	// The subtree of the first 2048 records, all purged: what the
	// trail's root and proofs are built from now.
	tamper(t, dir, `DROP TRIGGER audit_tree_no_update`,
		fmt.Sprintf(`UPDATE audit_tree SET hash = zeroblob(32) WHERE id = %d`, tlog.StoredHashIndex(11, 0)))
	_, err = MustOpenDBDir(t, dir).VerifyAuditTrail(t.Context(), []*store.Checkpoint{early})
	var ae *store.AuditError
	if !errors.As(err, &ae) || !strings.Contains(ae.Reason, "does not extend its checkpoint of 2501 records") {
		t.Fatalf("VerifyAuditTrail with a purged record's tree hash altered = %v", err)
	}
}

// TestCheckpoint_TreeBuiltOnUpgrade: a trail from before the tree (no
// audit_tree rows) gets one at Open that matches its records.
func TestCheckpoint_TreeBuiltOnUpgrade(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	db := MustOpenDBDir(t, dir)
	MustSetup(t, db)
	if err := db.AppendAuditBulk(t.Context(), 300, time.Minute); err != nil {
		t.Fatal(err)
	}
	before := checkpointNow(t, db)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	tamper(t, dir, `DROP TRIGGER audit_tree_no_delete`, `DELETE FROM audit_tree`)
	db = MustOpenDBDir(t, dir)
	v, err := db.VerifyAuditTrail(t.Context(), []*store.Checkpoint{before})
	if err != nil || v.Size != 301 || v.Root != before.Root {
		t.Fatalf("after rebuilding the tree: %+v, %v", v, err)
	}
}

// TestCheckpoint_TreeTampered: a stored tree that does not match the
// records breaks the trail even without a checkpoint, and no new
// checkpoint is signed over it.
func TestCheckpoint_TreeTampered(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	db := MustOpenDBDir(t, dir)
	MustSetup(t, db)
	if err := db.AppendAuditBulk(t.Context(), 20, time.Minute); err != nil {
		t.Fatal(err)
	}
	prev := checkpointNow(t, db)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	tamper(t, dir, `DROP TRIGGER audit_tree_no_update`,
		fmt.Sprintf(`UPDATE audit_tree SET hash = zeroblob(32) WHERE id = %d`, tlog.StoredHashIndex(4, 0)))
	db = MustOpenDBDir(t, dir)
	_, err := db.VerifyAudit(t.Context())
	var ae *store.AuditError
	if !errors.As(err, &ae) || !strings.Contains(ae.Reason, "stored tree") {
		t.Fatalf("VerifyAudit = %v", err)
	}
	if _, _, err := db.SignCheckpoint(t.Context(), prev); !errors.As(err, &ae) {
		t.Fatalf("SignCheckpoint over a rewritten tree = %v", err)
	}
	if st := db.AuditState(); st == nil || st.Broken == "" {
		t.Fatalf("AuditState = %+v, want broken", st)
	}
}

// TestParseCheckpoint_Hostile: only the exact form Text writes parses.
func TestParseCheckpoint_Hostile(t *testing.T) {
	t.Parallel()
	good := (&store.Checkpoint{Origin: store.AuditOrigin("610113", "gate-1"), Size: 42}).Text()
	if cp, err := store.ParseCheckpoint(good); err != nil || cp.Size != 42 || cp.Origin != "passgate audit 610113/gate-1" {
		t.Fatalf("ParseCheckpoint(good) = %+v, %v", cp, err)
	}
	root := "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
	for name, text := range map[string]string{
		"empty":            "",
		"two lines":        "passgate audit x/y\n1\n",
		"four lines":       "passgate audit x/y\n1\n" + root + "\nmore\n",
		"no final newline": "passgate audit x/y\n1\n" + root,
		"other origin":     "go.sum database tree\n1\n" + root + "\n",
		"bare prefix":      "passgate audit \n1\n" + root + "\n",
		"control char":     "passgate audit x\x00y\n1\n" + root + "\n",
		"bad utf-8":        "passgate audit \xff\n1\n" + root + "\n",
		"negative size":    "passgate audit x/y\n-1\n" + root + "\n",
		"leading zero":     "passgate audit x/y\n01\n" + root + "\n",
		"plus size":        "passgate audit x/y\n+1\n" + root + "\n",
		"huge size":        "passgate audit x/y\n99999999999999999999\n" + root + "\n",
		"short root":       "passgate audit x/y\n1\nAAAA\n",
		"root not base64":  "passgate audit x/y\n1\n" + strings.Repeat("!", 44) + "\n",
		"root unpadded":    "passgate audit x/y\n1\n" + strings.TrimSuffix(root, "=") + "\n",
		"crlf":             "passgate audit x/y\r\n1\r\n" + root + "\r\n",
		"long":             "passgate audit " + strings.Repeat("x", 3000) + "\n1\n" + root + "\n",
	} {
		if _, err := store.ParseCheckpoint(text); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("%s: ParseCheckpoint = %v, want ErrInvalid", name, err)
		}
	}
	// A note that verifies but carries no checkpoint, and one signed by
	// an unknown key, are refused.
	skey, vkey, err := note.GenerateKey(nil, store.AuditKeyName)
	if err != nil {
		t.Fatal(err)
	}
	s, _ := note.NewSigner(skey)
	v, _ := note.NewVerifier(vkey)
	msg, _ := note.Sign(&note.Note{Text: "hello\n"}, s)
	if _, err := store.OpenCheckpoint(msg, note.VerifierList(v)); !errors.Is(err, store.ErrInvalid) {
		t.Errorf("OpenCheckpoint(not a checkpoint) = %v", err)
	}
	msg, _ = note.Sign(&note.Note{Text: good}, s)
	_, other, _ := note.GenerateKey(nil, store.AuditKeyName)
	ov, _ := note.NewVerifier(other)
	if _, err := store.OpenCheckpoint(msg, note.VerifierList(ov)); err == nil {
		t.Error("OpenCheckpoint accepted another key's signature")
	}
	if _, err := store.OpenCheckpoint(append(msg, make([]byte, store.MaxCheckpoint)...), note.VerifierList(v)); !errors.Is(err, store.ErrInvalid) {
		t.Errorf("OpenCheckpoint(oversized) = %v", err)
	}
}

// FuzzParseCheckpoint: any text either fails or parses to a checkpoint
// whose Text is the input exactly.
func FuzzParseCheckpoint(f *testing.F) {
	f.Add((&store.Checkpoint{Origin: store.AuditOrigin("d", "a"), Size: 7}).Text())
	f.Add("passgate audit x/y\n01\nAAAA\n")
	f.Fuzz(func(t *testing.T, text string) {
		cp, err := store.ParseCheckpoint(text)
		if err != nil {
			return
		}
		if cp.Text() != text {
			t.Fatalf("ParseCheckpoint(%q).Text() = %q", text, cp.Text())
		}
	})
}

// FuzzSplitCheckpoints: a checkpoint file of any content splits without
// panicking, into notes that each end in a newline.
func FuzzSplitCheckpoints(f *testing.F) {
	f.Add([]byte("a\n\n— k sig\n\nb\n\n— k sig\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, n := range store.SplitCheckpoints(b) {
			if len(n) == 0 || n[len(n)-1] != '\n' {
				t.Fatalf("note %q", n)
			}
		}
	})
}
