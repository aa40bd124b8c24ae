package store_test

import (
	"context"
	"testing"
	"time"

	"passgate/pass"
	"passgate/store"
)

// t0 is the fixed clock of most tests.
var t0 = time.Date(2022, 1, 4, 8, 0, 0, 0, time.UTC)

// MustOpenDB opens a database in a fresh temporary directory, with the
// clock fixed at t0, and closes it when the test ends.
func MustOpenDB(tb testing.TB) *store.DB {
	tb.Helper()
	return MustOpenDBDir(tb, tb.TempDir())
}

// MustOpenDBDir opens the database in dir and closes it when the test
// ends.
func MustOpenDBDir(tb testing.TB, dir string) *store.DB {
	tb.Helper()
	db, err := store.Open(tb.Context(), dir)
	if err != nil {
		tb.Fatal(err)
	}
	db.Now = func() time.Time { return t0 }
	tb.Cleanup(func() {
		if err := db.Close(); err != nil {
			tb.Error(err)
		}
	})
	return db
}

// MustSetup stores a district with a root key, an issuer key (both with
// private halves) and an admin "admin".
func MustSetup(tb testing.TB, db *store.DB) (root, issuer *store.Key) {
	tb.Helper()
	d := &store.District{ID: "xa", Name: "Xi'an Yanta", PseudonymKey: make([]byte, 32), Appliance: "desk-1"}
	root = &store.Key{KID: kid(1), Alg: pass.AlgEdDSA, Public: []byte("root-public"), Private: []byte("root-private"), District: "xa"}
	issuer = &store.Key{KID: kid(2), Alg: pass.AlgEdDSA, Public: []byte("issuer-public"), Private: []byte("issuer-private"),
		Cert: []byte("cert"), District: "xa", NotBefore: t0.Add(-time.Hour), NotAfter: t0.Add(365 * 24 * time.Hour)}
	admin := &store.User{Username: "admin", PasswordHash: testHash}
	if err := db.Setup(tb.Context(), d, root, issuer, admin); err != nil {
		tb.Fatal(err)
	}
	return root, issuer
}

// MustSavePerson registers a green person with subject subj(n).
func MustSavePerson(tb testing.TB, db *store.DB, n byte) *store.Person {
	tb.Helper()
	p := &store.Person{Subject: subj(n), MaskedName: "张*明", IDTail: "123X", Color: pass.Green, TestedAt: t0.Add(-18 * time.Hour), Doses: 3}
	if err := db.SavePerson(tb.Context(), p, "issuer1"); err != nil {
		tb.Fatal(err)
	}
	return p
}

// testHash is a valid argon2id string (of "correct horse"), computed once:
// hashing is deliberately slow.
var testHash = func() string {
	h, err := store.HashPassword("correct horse")
	if err != nil {
		panic(err)
	}
	return h
}()

func kid(n byte) pass.KeyID        { return pass.KeyID{0x40, n} }
func subj(n byte) pass.Subject     { return pass.Subject{0x5b, n} }
func passID(n uint16) pass.ID      { return pass.ID{0x9a, byte(n >> 8), byte(n)} }
func ctxb() context.Context        { return context.Background() }
func ms(d time.Duration) time.Time { return t0.Add(d) }
