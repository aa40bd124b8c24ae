package district_test

import (
	"context"
	"crypto/rand"
	"errors"
	"testing"
	"time"

	"passgate/district"
	"passgate/pass"
	"passgate/store"
)

const cityPerson = "11010519491231002X"

// newCityKey returns a city pseudonym key file and its check value.
func newCityKey(t *testing.T) ([]byte, string) {
	t.Helper()
	key := make([]byte, pass.CityKeyLen)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	b, err := pass.MarshalCityKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return b, pass.FormatCityKeyCheck(pass.CityKeyCheck(key))
}

func setupDistrict(t *testing.T, name string) *store.DB {
	t.Helper()
	db := openDB(t)
	if _, err := district.Setup(context.Background(), db, district.SetupOptions{Name: name}); err != nil {
		t.Fatal(err)
	}
	return db
}

func issueFor(t *testing.T, db *store.DB, id string) *district.Issued {
	t.Helper()
	iss, err := district.Issue(context.Background(), db, district.IssueRequest{Name: "张三明", IDNumber: id,
		TestedAt: time.Now().Add(-time.Hour), Doses: 2, Actor: "desk"})
	if err != nil {
		t.Fatal(err)
	}
	return iss
}

// subjectRevoked tells whether db holds a subject revocation of s.
func subjectRevoked(t *testing.T, db *store.DB, s pass.Subject) bool {
	t.Helper()
	revs, err := db.RevocationsSince(context.Background(), 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range revs {
		if r.Kind == store.RevokeSubject && string(r.Target) == string(s[:]) {
			return true
		}
	}
	return false
}

// One person registered in two districts that hold the city key has one
// subject; before the key each district gave them its own.
func TestCityKey_OneSubjectAcrossDistricts(t *testing.T) {
	ctx := context.Background()
	file, check := newCityKey(t)
	d1, d2 := setupDistrict(t, "雁塔区"), setupDistrict(t, "碑林区")
	before1, before2 := issueFor(t, d1, cityPerson), issueFor(t, d2, cityPerson)
	if before1.Claims.Subject == before2.Claims.Subject {
		t.Fatal("two districts without the city key gave one subject")
	}
	for _, db := range []*store.DB{d1, d2} {
		if added, err := db.ImportCityPseudonymKey(ctx, file, check, "cli:admin"); err != nil || !added {
			t.Fatalf("import: %v %v", added, err)
		}
	}
	a, b := issueFor(t, d1, cityPerson), issueFor(t, d2, cityPerson)
	if a.Claims.Subject != b.Claims.Subject {
		t.Fatalf("subjects %x and %x: one person has two city subjects", a.Claims.Subject, b.Claims.Subject)
	}
	if a.Claims.Subject == before1.Claims.Subject {
		t.Fatal("the new pass still carries the district subject")
	}
	p, _, err := district.Register(ctx, d2, district.RegisterRequest{Name: "张三明", IDType: store.IDMainland, IDNumber: cityPerson, Actor: "desk"})
	if err != nil || p.Subject != a.Claims.Subject {
		t.Fatalf("register: %v %v", p, err)
	}
	// The same key again changes nothing.
	if added, err := d1.ImportCityPseudonymKey(ctx, file, check, "cli:admin"); err != nil || added {
		t.Fatalf("import again: %v %v", added, err)
	}
}

// A district that joins with passes out: the old pass keeps its subject
// until a status change, which then voids the passes of both subjects;
// a red person joins the city subject red.
func TestCityKey_StatusChangeVoidsBothSubjects(t *testing.T) {
	ctx := context.Background()
	file, check := newCityKey(t)
	db := setupDistrict(t, "雁塔区")
	old := issueFor(t, db, cityPerson)
	if _, err := db.ImportCityPseudonymKey(ctx, file, check, "cli:admin"); err != nil {
		t.Fatal(err)
	}
	if subjectRevoked(t, db, old.Claims.Subject) {
		t.Fatal("joining the city voided the passes already out")
	}
	fresh := issueFor(t, db, cityPerson)
	if _, err := district.SetStatus(ctx, db, cityPerson, pass.Red, "positive test", "desk"); err != nil {
		t.Fatal(err)
	}
	for _, s := range []pass.Subject{old.Claims.Subject, fresh.Claims.Subject} {
		if !subjectRevoked(t, db, s) {
			t.Errorf("subject %x not revoked after the status change", s)
		}
		if p, err := db.FindPerson(ctx, s); err != nil || p.Color != pass.Red {
			t.Errorf("subject %x: %+v %v", s, p, err)
		}
	}

	// A person red before the key, never seen since: their first pass
	// under the city subject is red, not a fresh green.
	const other = "E12345678"
	db2 := setupDistrict(t, "碑林区")
	issueFor(t, db2, other)
	if _, err := district.SetStatus(ctx, db2, other, pass.Red, "positive test", "desk"); err != nil {
		t.Fatal(err)
	}
	if _, err := db2.ImportCityPseudonymKey(ctx, file, check, "cli:admin"); err != nil {
		t.Fatal(err)
	}
	p, _, err := district.Register(ctx, db2, district.RegisterRequest{Name: "李四", IDType: store.IDPassport, IDNumber: other, Actor: "desk"})
	if err != nil || p.Color != pass.Red {
		t.Fatalf("registered under the city subject as %+v (%v); want red", p, err)
	}
	// A status change made by subject (the desk's person page, a trace's
	// contact) reaches the linked district subject too.
	subs, err := district.SubjectsOf(ctx, db2, other)
	if err != nil || len(subs) != 2 {
		t.Fatal(subs, err)
	}
	if _, err := db2.SetStatus(ctx, subs[0], pass.Yellow, "recovered", "desk"); err != nil {
		t.Fatal(err)
	}
	if p, err := db2.FindPerson(ctx, subs[1]); err != nil || p.Color != pass.Yellow {
		t.Fatalf("district subject after a change of the city subject: %+v %v", p, err)
	}
}

// A trace by ID number finds the person's scans under both subjects, and
// their own other subject is never listed as their contact.
func TestCityKey_TraceFindsBothSubjects(t *testing.T) {
	ctx := context.Background()
	file, check := newCityKey(t)
	db := setupDistrict(t, "雁塔区")
	old := issueFor(t, db, cityPerson)
	if _, err := db.ImportCityPseudonymKey(ctx, file, check, "cli:admin"); err != nil {
		t.Fatal(err)
	}
	fresh := issueFor(t, db, cityPerson)
	var someone pass.Subject
	someone[0] = 9
	t0 := time.Now().Add(-2 * time.Hour).Truncate(time.Millisecond)
	for _, s := range []*store.Scan{
		{At: t0, Source: "gate-a", Decision: "allow", Reason: "ok", Subject: old.Claims.Subject},
		{At: t0.Add(time.Minute), Source: "gate-a", Decision: "allow", Reason: "ok", Subject: someone},
		{At: t0.Add(2 * time.Minute), Source: "gate-a", Decision: "allow", Reason: "ok", Subject: fresh.Claims.Subject},
	} {
		if err := db.LogScan(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	subs, err := district.SubjectsOf(ctx, db, cityPerson)
	if err != nil {
		t.Fatal(err)
	}
	res, err := db.Trace(ctx, store.TraceQuery{Subject: subs[0], Also: subs[1:], From: t0.Add(-time.Hour), To: t0.Add(time.Hour), Window: 15 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Checks) != 2 {
		t.Fatalf("%d checks, want both subjects' 2", len(res.Checks))
	}
	if len(res.Contacts) != 1 || res.Contacts[0].Subject != someone {
		t.Fatalf("contacts %+v, want only the other person", res.Contacts)
	}
	if _, err := db.Trace(ctx, store.TraceQuery{Subject: subs[0], Also: make([]pass.Subject, store.MaxTraceSubjects),
		From: t0, To: t0.Add(time.Hour), Window: time.Minute}); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("too many subjects: %v", err)
	}
}

// Every refused import is audited and changes nothing.
func TestCityKey_ImportRefusalsAudited(t *testing.T) {
	ctx := context.Background()
	file, check := newCityKey(t)
	other, otherCheck := newCityKey(t)
	db := setupDistrict(t, "雁塔区")
	bad := append([]byte(nil), file...)
	bad[len(bad)-1] ^= 1
	cases := []struct {
		name  string
		file  []byte
		check string
		want  error
	}{
		{"wrong check", file, otherCheck, store.ErrCityKeyCheck},
		{"flipped key byte", bad, check, store.ErrCityKeyCheck},
		{"malformed check", file, "12", store.ErrInvalid},
		{"short file", file[:20], check, store.ErrInvalid},
		{"long file", append(append([]byte(nil), file...), 0), check, store.ErrInvalid},
		{"zero key", append([]byte("PGCITYPSEUDO1\n"), make([]byte, 32)...), check, store.ErrInvalid},
		{"other magic", append([]byte("PGCITYPSEUDO2\n"), file[14:]...), check, store.ErrInvalid},
	}
	for _, c := range cases {
		if _, err := db.ImportCityPseudonymKey(ctx, c.file, c.check, "cli:admin"); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
	if d, _ := db.District(ctx); d.CityPseudonymKey != nil {
		t.Fatal("a refused key was stored")
	}
	if _, err := db.ImportCityPseudonymKey(ctx, file, check, "cli:admin"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ImportCityPseudonymKey(ctx, other, otherCheck, "cli:admin"); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("a second key: %v", err)
	}
	refused := 0
	if err := db.FindAudit(ctx, store.AuditFilter{}, func(r *store.AuditRecord) error {
		if r.Action == store.AuditCityKeyRefused {
			refused++
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if refused != len(cases)+1 {
		t.Fatalf("%d refusals audited, want %d", refused, len(cases)+1)
	}
}

// linkedPerson is a district that issued cityPerson a pass (old), and
// another person one (other), before it imported the city key, and
// cityPerson a pass under the city subject (fresh) after.
func linkedPerson(t *testing.T) (db *store.DB, old, other, fresh *district.Issued) {
	t.Helper()
	file, check := newCityKey(t)
	db = setupDistrict(t, "雁塔区")
	old = issueFor(t, db, cityPerson)
	other = issueFor(t, db, "E12345678")
	if _, err := db.ImportCityPseudonymKey(context.Background(), file, check, "cli:admin"); err != nil {
		t.Fatal(err)
	}
	return db, old, other, issueFor(t, db, cityPerson)
}

// A subject revocation of the city subject from elsewhere in the city
// voids the district subject's passes here too, and no one else's.
func TestCityKey_CityRevocationReachesLinkedSubject(t *testing.T) {
	ctx := context.Background()
	db, old, other, fresh := linkedPerson(t)
	n, err := db.RevokeLinkedSubjects(ctx, fresh.Claims.Subject, time.Now(), "red code in another district")
	if err != nil || n != 1 {
		t.Fatalf("%d revocations (%v), want 1", n, err)
	}
	if !subjectRevoked(t, db, old.Claims.Subject) || subjectRevoked(t, db, other.Claims.Subject) {
		t.Fatal("the linked subject was not revoked, or another was")
	}
	if _, err := db.RevokeLinkedSubjects(ctx, fresh.Claims.Subject, time.Time{}, "x"); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("no cut-off: %v", err)
	}
}

// A subject revocation of the city subject that another district
// published on the city stream voids, as the hub stores it, the passes
// this district issued under the person's district subject, and no
// one else's; the same message again makes nothing more.
func TestCityKey_CityStreamRevocationReachesLinkedSubject(t *testing.T) {
	ctx := context.Background()
	db, old, other, fresh := linkedPerson(t)
	before, err := db.RevocationsSince(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	msg := store.CityMessage{StreamSeq: 1, SubjectDistrict: "Dother1", Revocation: &store.CityRevocation{District: "Dother1", Seq: 1,
		Kind: store.RevokeSubject, Target: fresh.Claims.Subject[:], Before: time.Now(), At: time.Now()}}
	outs, err := db.ApplyCityMessages(ctx, []store.CityMessage{msg, msg})
	if err != nil || outs[0] != store.CityStored || outs[1] != store.CityHeld {
		t.Fatalf("%v %v", outs, err)
	}
	if !subjectRevoked(t, db, old.Claims.Subject) || subjectRevoked(t, db, other.Claims.Subject) {
		t.Fatal("the linked subject was not revoked, or another was")
	}
	after, err := db.RevocationsSince(ctx, 0)
	if err != nil || len(after) != len(before)+2 {
		t.Fatalf("%d revocations after %d (%v), want the city's and the linked one", len(after), len(before), err)
	}
}
