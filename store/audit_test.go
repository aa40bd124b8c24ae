package store_test

import (
	"bytes"
	"crypto/sha256"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"passgate/pass"
	"passgate/store"
)

func TestDB_Audit(t *testing.T) {
	t.Parallel()
	t.Run("OK", func(t *testing.T) {
		db := MustOpenDB(t)
		a := &store.AuditRecord{Actor: "admin", Action: store.AuditLogin, Subject: "admin",
			Detail: json.RawMessage(`{ "addr" : "10.0.0.1" }`)}
		if err := db.Audit(t.Context(), a); err != nil {
			t.Fatal(err)
		}
		if a.Seq != 1 || !a.At.Equal(t0) || !bytes.Equal(a.PrevHash, make([]byte, 32)) || len(a.Hash) != 32 {
			t.Fatalf("first record: %+v", a)
		}
		if string(a.Detail) != `{"addr":"10.0.0.1"}` {
			t.Errorf("detail %s, want compacted", a.Detail)
		}
		b := &store.AuditRecord{Actor: "admin", Action: store.AuditExport, At: t0.Add(time.Minute)}
		if err := db.Audit(t.Context(), b); err != nil {
			t.Fatal(err)
		}
		if b.Seq != 2 || !bytes.Equal(b.PrevHash, a.Hash) {
			t.Fatalf("second record does not link to the first: %+v", b)
		}
		var got []store.AuditRecord
		if err := db.FindAudit(t.Context(), store.AuditFilter{}, func(r *store.AuditRecord) error {
			got = append(got, *r)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 || got[0].Actor != "admin" || got[1].Action != store.AuditExport || !got[1].At.Equal(b.At) ||
			!bytes.Equal(got[1].Hash, b.Hash) || string(got[0].Detail) != `{"addr":"10.0.0.1"}` {
			t.Fatalf("FindAudit = %+v", got)
		}
		got = got[:0]
		if err := db.FindAudit(t.Context(), store.AuditFilter{Last: 1}, func(r *store.AuditRecord) error {
			got = append(got, *r)
			return nil
		}); err != nil || len(got) != 1 || got[0].Seq != 2 {
			t.Fatalf("FindAudit Last 1 = %+v, %v", got, err)
		}
		if n, err := db.VerifyAudit(t.Context()); n != 2 || err != nil {
			t.Fatalf("VerifyAudit = %d, %v", n, err)
		}
	})
	t.Run("Empty", func(t *testing.T) {
		if n, err := MustOpenDB(t).VerifyAudit(t.Context()); n != 0 || err != nil {
			t.Fatalf("VerifyAudit = %d, %v", n, err)
		}
	})
	t.Run("ErrInvalid", func(t *testing.T) {
		db := MustOpenDB(t)
		for _, rec := range []*store.AuditRecord{
			{Action: store.AuditLogin},
			{Actor: "admin"},
			{Actor: "admin", Action: store.AuditLogin, Detail: json.RawMessage(`{"a":`)},
			{Actor: "admin", Action: store.AuditLogin, Detail: json.RawMessage(`"` + strings.Repeat("x", 5000) + `"`)},
			{Actor: store.Actor(strings.Repeat("a", 300)), Action: store.AuditLogin},
			{Actor: "bad\xff", Action: store.AuditLogin},
		} {
			if err := db.Audit(t.Context(), rec); !errors.Is(err, store.ErrInvalid) {
				t.Errorf("Audit(%.40q) = %v, want ErrInvalid", string(rec.Actor)+"|"+rec.Action+"|"+string(rec.Detail), err)
			}
		}
		if n, err := db.VerifyAudit(t.Context()); n != 0 || err != nil {
			t.Fatalf("refused records left something: %d, %v", n, err)
		}
	})
}

// TestAudit_StoreActions checks that the store's own changes append
// their records in the same transaction.
func TestAudit_StoreActions(t *testing.T) {
	t.Parallel()
	db := MustOpenDB(t)
	_, issuer := MustSetup(t, db)
	MustSavePerson(t, db, 1) // status_changed: registered
	if _, err := db.SetStatus(t.Context(), subj(1), pass.Red, "positive test", "desk1"); err != nil {
		t.Fatal(err)
	}
	p := &store.IssuedPass{ID: passID(7), Subject: subj(1), KID: issuer.KID, Kind: pass.Phone, Color: pass.Red,
		ExpiresAt: t0.Add(24 * time.Hour), Actor: "issuer1"}
	if err := db.CreatePass(t.Context(), p); err != nil {
		t.Fatal(err)
	}
	// A failed action leaves no record.
	dup := *p
	if err := db.CreatePass(t.Context(), &dup); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("duplicate pass: %v", err)
	}
	pol, err := db.Policy(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	pol.MinDoses = 2
	if err := db.ChangePolicy(t.Context(), pol, "admin"); err != nil {
		t.Fatal(err)
	}
	if err := db.ChangePolicy(t.Context(), pol, "admin"); err != nil { // no change: no record
		t.Fatal(err)
	}

	var got []string
	var policyDetail string
	if err := db.FindAudit(t.Context(), store.AuditFilter{}, func(r *store.AuditRecord) error {
		got = append(got, string(r.Actor)+" "+r.Action+" "+r.Subject)
		if r.Action == store.AuditPolicyChanged {
			policyDetail = string(r.Detail)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	sb, pid := subj(1), passID(7)
	s := fmt.Sprintf("%x", sb[:])
	want := []string{
		"setup first_admin admin",
		"issuer1 status_changed " + s,
		"desk1 status_changed " + s,
		fmt.Sprintf("issuer1 pass_issued %x", pid[:]),
		"admin policy_changed policy",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("audit trail:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	var d struct {
		Old, New struct {
			MinDoses int `json:"min_doses"`
		}
	}
	if err := json.Unmarshal([]byte(policyDetail), &d); err != nil || d.New.MinDoses != 2 || d.Old.MinDoses == 2 {
		t.Errorf("policy detail %s: %+v %v", policyDetail, d, err)
	}
	if n, err := db.VerifyAudit(t.Context()); n != 5 || err != nil {
		t.Fatalf("VerifyAudit = %d, %v", n, err)
	}
}

// TestAudit_AppendOnly checks that the triggers refuse to change or
// remove records through SQL.
func TestAudit_AppendOnly(t *testing.T) {
	t.Parallel()
	db := MustOpenDB(t)
	if err := db.Audit(t.Context(), &store.AuditRecord{Actor: "admin", Action: store.AuditLogin}); err != nil {
		t.Fatal(err)
	}
	w, _ := db.Pools()
	for _, q := range []string{
		`UPDATE audit SET actor = 'mallory'`,
		`DELETE FROM audit`,
		`DELETE FROM audit_head`,
	} {
		if _, err := w.ExecContext(t.Context(), q); err == nil || !strings.Contains(err.Error(), "cannot be deleted") && !strings.Contains(err.Error(), "append-only") {
			t.Errorf("%s: %v, want refused", q, err)
		}
	}
	if n, err := db.VerifyAudit(t.Context()); n != 1 || err != nil {
		t.Fatalf("VerifyAudit = %d, %v", n, err)
	}
}

// auditRecords is the size of the trail the tampering tests damage.
const auditRecords = 10

// newAuditFile makes a closed database with auditRecords records and
// returns its directory.
func newAuditFile(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	db, err := store.Open(t.Context(), dir)
	if err != nil {
		t.Fatal(err)
	}
	for i := range auditRecords {
		if err := db.Audit(t.Context(), &store.AuditRecord{
			Actor: store.Actor(fmt.Sprintf("user%d", i)), Action: store.AuditLogin, Subject: fmt.Sprintf("user%d", i),
			Detail: store.AuditDetail(map[string]int{"i": i}),
		}); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	return dir
}

// tamper edits the database file with a plain SQLite connection, as
// someone with the file would: the triggers are dropped first.
func tamper(t *testing.T, dir string, stmts ...string) {
	t.Helper()
	raw, err := sql.Open("sqlite", filepath.Join(dir, store.FileName))
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	raw.SetMaxOpenConns(1)
	all := append([]string{
		`DROP TRIGGER audit_no_update`, `DROP TRIGGER audit_no_delete`, `DROP TRIGGER audit_head_no_delete`,
		`DROP TRIGGER audit_base_forward`,
	}, stmts...)
	for _, q := range all {
		if _, err := raw.ExecContext(t.Context(), q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}

// swapSQL exchanges the contents of records a and b, keeping their seq.
func swapSQL(a, b int) []string {
	return []string{
		`CREATE TEMP TABLE x AS SELECT * FROM audit WHERE seq IN (` + fmt.Sprint(a, ",", b) + `)`,
		fmt.Sprintf(`UPDATE audit SET (at_ms, actor, action, subject, detail, prev_hash, hash) =
			(SELECT at_ms, actor, action, subject, detail, prev_hash, hash FROM x WHERE seq = %d) WHERE seq = %d`, b, a),
		fmt.Sprintf(`UPDATE audit SET (at_ms, actor, action, subject, detail, prev_hash, hash) =
			(SELECT at_ms, actor, action, subject, detail, prev_hash, hash FROM x WHERE seq = %d) WHERE seq = %d`, a, b),
	}
}

func TestAudit_Tampering(t *testing.T) {
	t.Parallel()
	type tc struct {
		name    string
		stmts   []string
		wantSeq int64
		reason  string // a word of the reason
	}
	var cases []tc
	for _, k := range []int{1, 5, auditRecords} {
		for _, col := range []string{"at_ms = at_ms + 1", "actor = 'mallory'", "action = 'export'",
			"subject = 'someone'", `detail = '{"i":99}'`, "prev_hash = zeroblob(32)", "hash = randomblob(32)"} {
			reason := "altered"
			if strings.HasPrefix(col, "prev_hash") {
				if k == 1 {
					continue // record 1's prev_hash is already all zero
				}
				reason = "removed or reordered" // the link is checked first
			}
			cases = append(cases, tc{fmt.Sprintf("alter %d %s", k, col),
				[]string{fmt.Sprintf("UPDATE audit SET %s WHERE seq = %d", col, k)}, int64(k), reason})
		}
		if k < auditRecords {
			cases = append(cases, tc{fmt.Sprintf("delete %d", k),
				[]string{fmt.Sprintf("DELETE FROM audit WHERE seq = %d", k)}, int64(k + 1), "removed or reordered"})
		} else {
			cases = append(cases, tc{fmt.Sprintf("delete %d (last)", k),
				[]string{fmt.Sprintf("DELETE FROM audit WHERE seq = %d", k)}, int64(k), "removed from the end"})
		}
		a := min(k, auditRecords-1)
		cases = append(cases, tc{fmt.Sprintf("swap %d and %d", a, a+1), swapSQL(a, a+1), int64(a), "removed or reordered"})
	}
	cases = append(cases,
		tc{"swap 1 and 10", swapSQL(1, auditRecords), 1, "removed or reordered"},
		tc{"renumber 5 as 11", []string{"UPDATE audit SET seq = 11 WHERE seq = 5"}, 6, "removed or reordered"},
		tc{"delete the last and fix the link of the head", []string{
			fmt.Sprintf("DELETE FROM audit WHERE seq = %d", auditRecords),
			fmt.Sprintf("UPDATE audit_head SET seq = %d", auditRecords-1)}, auditRecords - 1, "replaced"},
	)
	// A forger who recomputes the altered record's own hash still breaks
	// the next link.
	cases = append(cases, tc{"alter 5 and rehash it", nil, 6, "removed or reordered"})

	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := newAuditFile(t)
			if c.stmts == nil {
				c.stmts = forge5(t, dir)
			}
			tamper(t, dir, c.stmts...)
			db := MustOpenDBDir(t, dir)
			_, err := db.VerifyAudit(t.Context())
			var ae *store.AuditError
			if !errors.As(err, &ae) || !errors.Is(err, store.ErrCorrupt) {
				t.Fatalf("VerifyAudit = %v, want an AuditError", err)
			}
			if ae.Seq != c.wantSeq || !strings.Contains(ae.Reason, c.reason) {
				t.Fatalf("broken at %d (%s), want %d (%s)", ae.Seq, ae.Reason, c.wantSeq, c.reason)
			}
		})
	}
}

// forge5 returns statements that replace record 5's actor and store a
// hash recomputed with the documented encoding, as a careful forger
// would.
func forge5(t *testing.T, dir string) []string {
	t.Helper()
	db := MustOpenDBDir(t, dir)
	var r5 store.AuditRecord
	if err := db.FindAudit(t.Context(), store.AuditFilter{}, func(r *store.AuditRecord) error {
		if r.Seq == 5 {
			r5 = *r
			r5.Detail = append([]byte(nil), r.Detail...)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	h.Write([]byte("passgate-audit-v1"))
	var buf bytes.Buffer
	put64 := func(v uint64) {
		for i := 7; i >= 0; i-- {
			buf.WriteByte(byte(v >> (8 * i)))
		}
	}
	put64(5)
	put64(uint64(r5.At.UnixMilli()))
	for _, f := range []string{"mallory", r5.Action, r5.Subject, string(r5.Detail)} {
		n := uint32(len(f))
		buf.Write([]byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)})
		buf.WriteString(f)
	}
	buf.Write(r5.PrevHash)
	h.Write(buf.Bytes())
	return []string{fmt.Sprintf("UPDATE audit SET actor = 'mallory', hash = x'%x' WHERE seq = 5", h.Sum(nil))}
}

// TestAudit_AppendAfterTruncation checks that an append after the last
// records were removed does not hide the removal.
func TestAudit_AppendAfterTruncation(t *testing.T) {
	t.Parallel()
	dir := newAuditFile(t)
	tamper(t, dir, fmt.Sprintf("DELETE FROM audit WHERE seq = %d", auditRecords))
	db := MustOpenDBDir(t, dir)
	if err := db.Audit(t.Context(), &store.AuditRecord{Actor: "admin", Action: store.AuditLogin}); err != nil {
		t.Fatal(err)
	}
	_, err := db.VerifyAudit(t.Context())
	var ae *store.AuditError
	if !errors.As(err, &ae) || ae.Seq != auditRecords+1 {
		t.Fatalf("VerifyAudit = %v, want broken at %d", err, auditRecords+1)
	}
}

// MustAppendAuditRaw inserts n valid chained records quickly, in one
// transaction on the writer, continuing the chain — for measuring
// VerifyAudit on a large trail.
func MustAppendAuditRaw(tb testing.TB, db *store.DB, n int) {
	tb.Helper()
	if err := db.AppendAuditBulk(tb.Context(), n, time.Millisecond); err != nil {
		tb.Fatal(err)
	}
}

// TestAudit_VerifyMillion measures VerifyAudit over 1,000,000 records
// (target ≤ 10 s). It is skipped unless PASSGATE_AUDIT_MILLION is set,
// and in -short mode.
func TestAudit_VerifyMillion(t *testing.T) {
	if testing.Short() || !envSet("PASSGATE_AUDIT_MILLION") {
		t.Skip("set PASSGATE_AUDIT_MILLION=1 to measure verify over 1,000,000 records")
	}
	db := MustOpenDB(t)
	start := time.Now()
	MustAppendAuditRaw(t, db, 1_000_000)
	t.Logf("appended 1,000,000 records in %v", time.Since(start))
	start = time.Now()
	n, err := db.VerifyAudit(t.Context())
	el := time.Since(start)
	if err != nil || n != 1_000_000 {
		t.Fatalf("VerifyAudit = %d, %v", n, err)
	}
	t.Logf("verified %d records in %v", n, el)
	if el > 10*time.Second {
		t.Errorf("verify took %v, target 10s", el)
	}
}

func BenchmarkVerifyAudit(b *testing.B) {
	db := MustOpenDB(b)
	const n = 10_000
	MustAppendAuditRaw(b, db, n)
	b.ResetTimer()
	for b.Loop() {
		if got, err := db.VerifyAudit(b.Context()); err != nil || got != n {
			b.Fatal(got, err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/n, "ns/record")
}

func envSet(key string) bool { return os.Getenv(key) != "" }

func TestDB_PurgeAudit(t *testing.T) {
	t.Parallel()
	// records at t0 + i minutes, i = 0 … 2499; the clock then at t0 + 3000 min
	setup := func(t *testing.T) (*store.DB, string) {
		dir := t.TempDir()
		db := MustOpenDBDir(t, dir)
		if err := db.AppendAuditBulk(t.Context(), 2500, time.Minute); err != nil {
			t.Fatal(err)
		}
		db.Now = func() time.Time { return t0.Add(3000 * time.Minute) }
		return db, dir
	}
	t.Run("OK", func(t *testing.T) {
		db, _ := setup(t)
		n, err := db.PurgeAudit(t.Context(), t0.Add(2100*time.Minute), "retention")
		if err != nil || n != 2100 {
			t.Fatalf("PurgeAudit = %d, %v; want 2100 (more than one batch)", n, err)
		}
		if n, err := db.VerifyAudit(t.Context()); err != nil || n != 401 {
			t.Fatalf("VerifyAudit after purge = %d, %v; want 400 + the purge record", n, err)
		}
		// Nothing older left: a second purge removes nothing and appends nothing.
		if n, err := db.PurgeAudit(t.Context(), t0.Add(2100*time.Minute), "retention"); err != nil || n != 0 {
			t.Fatalf("second PurgeAudit = %d, %v", n, err)
		}
		// A later purge removes the earlier purge record too.
		if n, err := db.PurgeAudit(t.Context(), t0.Add(24*time.Hour*365), "retention"); err != nil || n != 401 {
			t.Fatalf("purge everything = %d, %v", n, err)
		}
		if n, err := db.VerifyAudit(t.Context()); err != nil || n != 1 {
			t.Fatalf("VerifyAudit after full purge = %d, %v", n, err)
		}
		if err := db.Audit(t.Context(), &store.AuditRecord{Actor: "a", Action: store.AuditLogin}); err != nil {
			t.Fatal(err)
		}
		if n, err := db.VerifyAudit(t.Context()); err != nil || n != 2 {
			t.Fatalf("VerifyAudit after append = %d, %v", n, err)
		}
		w, _ := db.Pools()
		if _, err := w.ExecContext(t.Context(), `DELETE FROM audit WHERE seq = (SELECT max(seq) FROM audit)`); err == nil {
			t.Error("deleted a record after the base")
		}
		if _, err := w.ExecContext(t.Context(), `UPDATE audit_base SET seq = 1`); err == nil {
			t.Error("moved the base back")
		}
	})
	t.Run("BaseMovedByHand", func(t *testing.T) {
		db, dir := setup(t)
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
		// Someone removes the first 100 records and sets the base
		// without an audited purge.
		tamper(t, dir, `INSERT INTO audit_base (id, seq, hash) SELECT 1, seq, hash FROM audit WHERE seq = 100`,
			`DELETE FROM audit WHERE seq <= 100`)
		_, err := MustOpenDBDir(t, dir).VerifyAudit(t.Context())
		var ae *store.AuditError
		if !errors.As(err, &ae) || ae.Seq != 101 || !strings.Contains(ae.Reason, "without an audited purge") {
			t.Fatalf("VerifyAudit = %v", err)
		}
	})
	t.Run("BaseMovedFurtherByHand", func(t *testing.T) {
		db, dir := setup(t)
		if _, err := db.PurgeAudit(t.Context(), t0.Add(10*time.Minute), "retention"); err != nil {
			t.Fatal(err)
		}
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
		tamper(t, dir, `UPDATE audit_base SET (seq, hash) = (SELECT seq, hash FROM audit WHERE seq = 50)`,
			`DELETE FROM audit WHERE seq <= 50`)
		_, err := MustOpenDBDir(t, dir).VerifyAudit(t.Context())
		var ae *store.AuditError
		if !errors.As(err, &ae) || ae.Seq != 51 || !strings.Contains(ae.Reason, "not the one the purge") {
			t.Fatalf("VerifyAudit = %v", err)
		}
	})
}
