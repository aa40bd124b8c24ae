package store_test

import (
	"errors"
	"testing"
	"time"

	"passgate/pass"
	"passgate/store"
)

func newPass(n uint16, issuer *store.Key) *store.IssuedPass {
	return &store.IssuedPass{ID: passID(n), Subject: subj(1), KID: issuer.KID, Kind: pass.Phone, Color: pass.Green,
		IssuedAt: t0, ExpiresAt: t0.Add(pass.PhoneValidity), Actor: "issuer1"}
}

func TestDB_CreatePass(t *testing.T) {
	t.Parallel()
	t.Run("OK", func(t *testing.T) {
		db := MustOpenDB(t)
		_, issuer := MustSetup(t, db)
		MustSavePerson(t, db, 1)
		p := newPass(1, issuer)
		if err := db.CreatePass(t.Context(), p); err != nil {
			t.Fatal(err)
		}
		got, err := db.FindPass(t.Context(), p.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.ID != p.ID || got.Subject != p.Subject || got.KID != p.KID || got.Kind != p.Kind || got.Color != p.Color ||
			!got.IssuedAt.Equal(p.IssuedAt) || !got.ExpiresAt.Equal(p.ExpiresAt) || got.Actor != p.Actor {
			t.Fatalf("pass = %+v, want %+v", got, p)
		}
	})
	t.Run("ErrConflict", func(t *testing.T) {
		db := MustOpenDB(t)
		_, issuer := MustSetup(t, db)
		MustSavePerson(t, db, 1)
		if err := db.CreatePass(t.Context(), newPass(1, issuer)); err != nil {
			t.Fatal(err)
		}
		if err := db.CreatePass(t.Context(), newPass(1, issuer)); !errors.Is(err, store.ErrConflict) {
			t.Fatalf("err = %v, want ErrConflict", err)
		}
	})
	t.Run("ErrNotFound", func(t *testing.T) {
		db := MustOpenDB(t)
		_, issuer := MustSetup(t, db)
		// Subject not registered.
		if err := db.CreatePass(t.Context(), newPass(1, issuer)); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("err = %v, want ErrNotFound", err)
		}
		// Key not stored.
		MustSavePerson(t, db, 1)
		p := newPass(2, issuer)
		p.KID = kid(99)
		if err := db.CreatePass(t.Context(), p); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("err = %v, want ErrNotFound", err)
		}
	})
	t.Run("ErrInvalid", func(t *testing.T) {
		db := MustOpenDB(t)
		_, issuer := MustSetup(t, db)
		MustSavePerson(t, db, 1)
		for _, mod := range []func(*store.IssuedPass){
			func(p *store.IssuedPass) { p.ID = pass.ID{} },
			func(p *store.IssuedPass) { p.Kind = 0 },
			func(p *store.IssuedPass) { p.Color = 7 },
			func(p *store.IssuedPass) { p.ExpiresAt = p.IssuedAt.Add(-time.Second) },
			func(p *store.IssuedPass) { p.Actor = "" },
		} {
			p := newPass(3, issuer)
			mod(p)
			if err := db.CreatePass(t.Context(), p); !errors.Is(err, store.ErrInvalid) {
				t.Errorf("%+v: err = %v, want ErrInvalid", p, err)
			}
		}
	})
}

func TestDB_FindPass(t *testing.T) {
	t.Parallel()
	t.Run("ErrNotFound", func(t *testing.T) {
		db := MustOpenDB(t)
		if _, err := db.FindPass(t.Context(), passID(1)); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("err = %v, want ErrNotFound", err)
		}
	})
}

func TestDB_CreateRevocation(t *testing.T) {
	t.Parallel()
	t.Run("OK", func(t *testing.T) {
		db := MustOpenDB(t)
		id, s, k := passID(1), subj(1), kid(1)
		revs := []*store.Revocation{
			{Kind: store.RevokePass, Target: id[:], Reason: "lost"},
			{Kind: store.RevokeSubject, Target: s[:], Reason: "re-issued"}, // Before defaults to now
			{Kind: store.RevokeIssuer, Target: k[:], Reason: "key compromise"},
		}
		for i, r := range revs {
			if err := db.CreateRevocation(t.Context(), r); err != nil {
				t.Fatal(err)
			}
			if (i > 0 && r.Seq != revs[i-1].Seq+1) || r.Seq <= 0 || !r.At.Equal(t0) {
				t.Fatalf("revocation %d = %+v", i, r)
			}
		}
		if !revs[1].Before.Equal(t0) || !revs[0].Before.IsZero() {
			t.Fatalf("before times %v %v", revs[0].Before, revs[1].Before)
		}
	})
	t.Run("ErrInvalid", func(t *testing.T) {
		db := MustOpenDB(t)
		id := passID(1)
		for _, r := range []*store.Revocation{
			{Kind: 0, Target: id[:]},
			{Kind: store.RevokeSubject, Target: id[:]},          // wrong length
			{Kind: store.RevokePass, Target: id[:], Before: t0}, // before on a pass revocation
			{Kind: store.RevokeIssuer, Target: nil},
		} {
			if err := db.CreateRevocation(t.Context(), r); !errors.Is(err, store.ErrInvalid) {
				t.Errorf("%+v: err = %v, want ErrInvalid", r, err)
			}
		}
	})
}

func TestDB_RevocationsSince(t *testing.T) {
	t.Parallel()
	t.Run("OK", func(t *testing.T) {
		db := MustOpenDB(t)
		for n := range uint16(5) {
			id := passID(n)
			if err := db.CreateRevocation(t.Context(), &store.Revocation{Kind: store.RevokePass, Target: id[:]}); err != nil {
				t.Fatal(err)
			}
		}
		all, err := db.RevocationsSince(t.Context(), 0)
		if err != nil || len(all) != 5 {
			t.Fatalf("all revocations: %d, %v", len(all), err)
		}
		revs, err := db.RevocationsSince(t.Context(), all[1].Seq)
		if err != nil {
			t.Fatal(err)
		}
		if len(revs) != 3 || revs[0].Seq != all[2].Seq || revs[2].Seq != all[4].Seq {
			t.Fatalf("revocations since 2: %d, first %d", len(revs), revs[0].Seq)
		}
		if id := passID(2); string(revs[0].Target) != string(id[:]) {
			t.Fatalf("target %x", revs[0].Target)
		}
		if revs, _ := db.RevocationsSince(t.Context(), all[4].Seq); len(revs) != 0 {
			t.Fatalf("%d revocations after the last", len(revs))
		}
	})
}
