package store_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"passgate/pass"
	"passgate/store"
)

func TestDB_SavePerson(t *testing.T) {
	t.Parallel()
	t.Run("OK", func(t *testing.T) {
		db := MustOpenDB(t)
		p := MustSavePerson(t, db, 1)
		if !p.CreatedAt.Equal(t0) || !p.UpdatedAt.Equal(t0) {
			t.Fatalf("times = %v, %v", p.CreatedAt, p.UpdatedAt)
		}
		got, err := db.FindPerson(t.Context(), p.Subject)
		if err != nil {
			t.Fatal(err)
		}
		if got.MaskedName != "张*明" || got.IDTail != "123X" || got.Color != pass.Green || got.Doses != 3 ||
			!got.TestedAt.Equal(t0.Add(-18*time.Hour)) {
			t.Fatalf("person = %+v", got)
		}
		h, err := db.StatusHistory(t.Context(), p.Subject)
		if err != nil {
			t.Fatal(err)
		}
		if len(h) != 1 || h[0].From != 0 || h[0].To != pass.Green || h[0].Reason != "registered" || h[0].Actor != "issuer1" {
			t.Fatalf("history = %+v", h[0])
		}
		// A new registration voids nothing.
		if revs, _ := db.RevocationsSince(t.Context(), 0); len(revs) != 0 {
			t.Fatalf("%d revocations after registering", len(revs))
		}
	})
	t.Run("Update", func(t *testing.T) {
		db := MustOpenDB(t)
		p := MustSavePerson(t, db, 1)
		later := t0.Add(time.Hour)
		db.Now = func() time.Time { return later }
		p.TestedAt, p.Doses = later.Add(-time.Minute), 4
		if err := db.SavePerson(t.Context(), p, "issuer2"); err != nil {
			t.Fatal(err)
		}
		got, err := db.FindPerson(t.Context(), p.Subject)
		if err != nil {
			t.Fatal(err)
		}
		if got.Doses != 4 || !got.CreatedAt.Equal(t0) || !got.UpdatedAt.Equal(later) || !got.TestedAt.Equal(later.Add(-time.Minute)) {
			t.Fatalf("person = %+v", got)
		}
		if h, _ := db.StatusHistory(t.Context(), p.Subject); len(h) != 1 {
			t.Fatalf("history grew without a colour change: %d", len(h))
		}
	})
	t.Run("UpdateColour", func(t *testing.T) {
		db := MustOpenDB(t)
		p := MustSavePerson(t, db, 1)
		p.Color = pass.Yellow
		if err := db.SavePerson(t.Context(), p, "issuer2"); err != nil {
			t.Fatal(err)
		}
		h, _ := db.StatusHistory(t.Context(), p.Subject)
		if len(h) != 2 || h[1].From != pass.Green || h[1].To != pass.Yellow || h[1].Reason != "updated" || h[1].Actor != "issuer2" {
			t.Fatalf("history = %+v", h)
		}
		revs, _ := db.RevocationsSince(t.Context(), 0)
		if len(revs) != 1 || revs[0].Kind != store.RevokeSubject {
			t.Fatalf("revocations = %+v", revs)
		}
	})
	t.Run("ErrInvalid", func(t *testing.T) {
		db := MustOpenDB(t)
		for _, tt := range []struct {
			p     store.Person
			actor string
		}{
			{store.Person{Color: pass.Green}, "a"},          // zero subject
			{store.Person{Subject: subj(1), Color: 9}, "a"}, // colour
			{store.Person{Subject: subj(1), Color: pass.Red, Doses: 256}, "a"},
			{store.Person{Subject: subj(1), Color: pass.Red}, ""}, // no actor
		} {
			if err := db.SavePerson(t.Context(), &tt.p, store.Actor(tt.actor)); !errors.Is(err, store.ErrInvalid) {
				t.Errorf("%+v by %q: err = %v, want ErrInvalid", tt.p, tt.actor, err)
			}
		}
	})
}

func TestDB_FindPerson(t *testing.T) {
	t.Parallel()
	t.Run("ErrNotFound", func(t *testing.T) {
		db := MustOpenDB(t)
		if _, err := db.FindPerson(t.Context(), subj(1)); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("err = %v, want ErrNotFound", err)
		}
	})
}

func TestDB_SetStatus(t *testing.T) {
	t.Parallel()
	t.Run("OK", func(t *testing.T) {
		db := MustOpenDB(t)
		p := MustSavePerson(t, db, 1)
		MustSavePerson(t, db, 2)
		at := t0.Add(2 * time.Hour)
		db.Now = func() time.Time { return at }
		c, err := db.SetStatus(t.Context(), p.Subject, pass.Red, "close contact", "officer.zhao")
		if err != nil {
			t.Fatal(err)
		}
		if c.ID == 0 || c.From != pass.Green || c.To != pass.Red || !c.At.Equal(at) {
			t.Fatalf("change = %+v", c)
		}
		got, _ := db.FindPerson(t.Context(), p.Subject)
		if got.Color != pass.Red || !got.UpdatedAt.Equal(at) {
			t.Fatalf("person = %+v", got)
		}
		h, err := db.StatusHistory(t.Context(), p.Subject)
		if err != nil {
			t.Fatal(err)
		}
		if len(h) != 2 || h[0].Reason != "registered" || *h[1] != *c {
			t.Fatalf("history = %+v %+v", h[0], h[1])
		}
		revs, err := db.RevocationsSince(t.Context(), 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(revs) != 1 {
			t.Fatalf("%d revocations, want 1", len(revs))
		}
		r := revs[0]
		if r.Kind != store.RevokeSubject || string(r.Target) != string(p.Subject[:]) || !r.Before.Equal(at) ||
			!r.At.Equal(at) || r.Reason != "close contact" {
			t.Fatalf("revocation = %+v", r)
		}
		// The other person is untouched.
		if h, _ := db.StatusHistory(t.Context(), subj(2)); len(h) != 1 {
			t.Fatalf("other person's history has %d entries", len(h))
		}
	})
	t.Run("Atomic", func(t *testing.T) {
		db := MustOpenDB(t)
		p := MustSavePerson(t, db, 1)
		// The revocation (the last step) refuses this reason, after the
		// colour and the history were written: nothing may remain.
		_, err := db.SetStatus(t.Context(), p.Subject, pass.Red, strings.Repeat("r", 501), "officer.zhao")
		if !errors.Is(err, store.ErrInvalid) {
			t.Fatalf("err = %v, want ErrInvalid", err)
		}
		got, _ := db.FindPerson(t.Context(), p.Subject)
		h, _ := db.StatusHistory(t.Context(), p.Subject)
		revs, _ := db.RevocationsSince(t.Context(), 0)
		if got.Color != pass.Green || len(h) != 1 || len(revs) != 0 {
			t.Fatalf("partial status change: colour %v, %d history, %d revocations", got.Color, len(h), len(revs))
		}
	})
	t.Run("ErrNotFound", func(t *testing.T) {
		db := MustOpenDB(t)
		if _, err := db.SetStatus(t.Context(), subj(1), pass.Red, "x", "y"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("err = %v, want ErrNotFound", err)
		}
	})
	t.Run("ErrInvalid", func(t *testing.T) {
		db := MustOpenDB(t)
		p := MustSavePerson(t, db, 1)
		for _, tt := range []struct {
			to            pass.Color
			reason, actor string
		}{{0, "r", "a"}, {pass.Red, "", "a"}, {pass.Red, "r", ""}} {
			if _, err := db.SetStatus(t.Context(), p.Subject, tt.to, tt.reason, store.Actor(tt.actor)); !errors.Is(err, store.ErrInvalid) {
				t.Errorf("%+v: err = %v, want ErrInvalid", tt, err)
			}
		}
	})
}

func TestDB_StatusHistory(t *testing.T) {
	t.Parallel()
	t.Run("ErrNotFound", func(t *testing.T) {
		db := MustOpenDB(t)
		if _, err := db.StatusHistory(t.Context(), subj(1)); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("err = %v, want ErrNotFound", err)
		}
	})
}

func TestDB_SavePerson_IDTypeAndPhone(t *testing.T) {
	t.Parallel()
	db := MustOpenDB(t)
	p := &store.Person{Subject: subj(7), MaskedName: "李*", IDTail: "5678", IDType: store.IDPassport, Phone: "13800138000", Color: pass.Green}
	if err := db.SavePerson(t.Context(), p, "issuer1"); err != nil {
		t.Fatal(err)
	}
	got, err := db.FindPerson(t.Context(), p.Subject)
	if err != nil || got.IDType != store.IDPassport || got.Phone != "13800138000" {
		t.Fatalf("person %+v, %v", got, err)
	}
	// An empty ID type keeps the stored one; the phone is replaced.
	got.IDType, got.Phone = "", ""
	if err := db.SavePerson(t.Context(), got, "issuer1"); err != nil {
		t.Fatal(err)
	}
	if got, _ := db.FindPerson(t.Context(), p.Subject); got.IDType != store.IDPassport || got.Phone != "" {
		t.Fatalf("after update %+v", got)
	}
	if err := db.SavePerson(t.Context(), &store.Person{Subject: subj(8), Color: pass.Green, IDType: "licence"}, "x"); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("bad ID type: %v", err)
	}
	// A person saved without an ID type is a mainland one (the column default).
	q := MustSavePerson(t, db, 9)
	if got, _ := db.FindPerson(t.Context(), q.Subject); got.IDType != store.IDMainland {
		t.Fatalf("default ID type %q", got.IDType)
	}
}

func TestDB_RegisterPeople(t *testing.T) {
	t.Parallel()
	db := MustOpenDB(t)
	red := MustSavePerson(t, db, 1)
	if _, err := db.SetStatus(t.Context(), red.Subject, pass.Red, "contact", "issuer1"); err != nil {
		t.Fatal(err)
	}
	batch := func() []*store.Person {
		return []*store.Person{
			{Subject: subj(1), MaskedName: "张*明", IDTail: "123X", IDType: store.IDMainland, Color: pass.Green}, // known, red
			{Subject: subj(2), MaskedName: "王*", IDTail: "0001", IDType: store.IDPassport, Phone: "139", Color: pass.Green},
			{Subject: subj(3), MaskedName: "赵*", IDTail: "0002", Color: pass.Green},
		}
	}
	created, updated, err := db.RegisterPeople(t.Context(), batch(), "importer")
	if err != nil || created != 2 || updated != 0 {
		t.Fatalf("first: created %d updated %d err %v", created, updated, err)
	}
	if got, _ := db.FindPerson(t.Context(), subj(1)); got.Color != pass.Red {
		t.Fatalf("registering a known person changed its colour to %v", got.Color)
	}
	if got, _ := db.FindPerson(t.Context(), subj(2)); got.IDType != store.IDPassport || got.Phone != "139" || got.MaskedName != "王*" {
		t.Fatalf("person 2 %+v", got)
	}
	if h, _ := db.StatusHistory(t.Context(), subj(3)); len(h) != 1 || h[0].Actor != "importer" || h[0].Reason != "registered" {
		t.Fatalf("history of a new person %+v", h)
	}
	// The same batch again changes nothing.
	created, updated, err = db.RegisterPeople(t.Context(), batch(), "importer")
	if err != nil || created != 0 || updated != 0 {
		t.Fatalf("again: created %d updated %d err %v", created, updated, err)
	}
	b := batch()
	b[1].Phone = "138"
	if _, updated, _ = db.RegisterPeople(t.Context(), b, "importer"); updated != 1 {
		t.Fatalf("changed phone: updated %d", updated)
	}
	// One invalid person fails the whole batch.
	b = batch()
	b = append(b, &store.Person{Subject: subj(4), Color: 9})
	if _, _, err := db.RegisterPeople(t.Context(), b, "importer"); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("invalid batch: %v", err)
	}
	if _, err := db.FindPerson(t.Context(), subj(4)); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("half a failed batch was stored: %v", err)
	}
}

func TestDB_RecordTests(t *testing.T) {
	t.Parallel()
	db := MustOpenDB(t)
	MustSavePerson(t, db, 1) // tested t0-18h
	MustSavePerson(t, db, 2)
	rs := []store.TestResult{
		{Subject: subj(1), SampledAt: t0.Add(-2 * time.Hour)},                    // newer negative
		{Subject: subj(1), SampledAt: t0.Add(-20 * time.Hour)},                   // older: no change
		{Subject: subj(9), SampledAt: t0.Add(-time.Hour)},                        // unknown
		{Subject: subj(2), SampledAt: t0.Add(-time.Hour), Positive: true},        // turns red
		{Subject: subj(2), SampledAt: t0.Add(-30 * time.Minute), Positive: true}, // already red: no change
	}
	changed, missing, err := db.RecordTests(t.Context(), rs, "importer")
	if err != nil || changed != 2 || len(missing) != 1 || missing[0] != 2 {
		t.Fatalf("changed %d missing %v err %v", changed, missing, err)
	}
	if got, _ := db.FindPerson(t.Context(), subj(1)); !got.TestedAt.Equal(t0.Add(-2 * time.Hour)) {
		t.Fatalf("tested at %v", got.TestedAt)
	}
	got, _ := db.FindPerson(t.Context(), subj(2))
	h, _ := db.StatusHistory(t.Context(), subj(2))
	if got.Color != pass.Red || len(h) != 2 || h[1].Reason != store.ReasonPositive {
		t.Fatalf("after positive %+v %+v", got, h)
	}
	if revs, _ := db.RevocationsSince(t.Context(), 0); len(revs) != 1 {
		t.Fatalf("%d revocations, want 1 (the positive result)", len(revs))
	}
	// Everything again changes nothing.
	if changed, _, err := db.RecordTests(t.Context(), rs, "importer"); err != nil || changed != 0 {
		t.Fatalf("again: changed %d err %v", changed, err)
	}
}

func TestDB_CreatePasses(t *testing.T) {
	t.Parallel()
	db := MustOpenDB(t)
	MustSetup(t, db)
	MustSavePerson(t, db, 1)
	mk := func(n uint16) *store.IssuedPass {
		return &store.IssuedPass{ID: passID(n), Subject: subj(1), KID: kid(2), Kind: pass.Paper, Color: pass.Green,
			ExpiresAt: t0.Add(time.Hour), Actor: "issuer1"}
	}
	if err := db.CreatePasses(t.Context(), []*store.IssuedPass{mk(1), mk(2)}); err != nil {
		t.Fatal(err)
	}
	if p, err := db.FindPass(t.Context(), passID(2)); err != nil || !p.IssuedAt.Equal(t0) {
		t.Fatalf("pass 2: %+v %v", p, err)
	}
	// A duplicate fails the whole batch.
	if err := db.CreatePasses(t.Context(), []*store.IssuedPass{mk(3), mk(1)}); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("duplicate: %v", err)
	}
	if _, err := db.FindPass(t.Context(), passID(3)); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("half a failed batch was stored: %v", err)
	}
}
