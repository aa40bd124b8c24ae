package store_test

import (
	"errors"
	"slices"
	"testing"
	"time"

	"passgate/pass"
	"passgate/store"
)

func TestDB_SetPolicy(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		db := MustOpenDB(t)
		MustSetup(t, db)
		p := &store.Policy{Colors: []pass.Color{pass.Yellow, pass.Green, pass.Yellow}, MaxTestAge: 48 * time.Hour, MinDoses: 2,
			AcceptPaper: false, RepeatWindow: time.Minute, ClockSkew: 90 * time.Second}
		if err := db.ChangePolicy(ctxb(), p, "admin"); err != nil {
			t.Fatal(err)
		}
		got, err := db.Policy(ctxb())
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got.Colors, []pass.Color{pass.Green, pass.Yellow}) || got.MaxTestAge != 48*time.Hour ||
			got.MinDoses != 2 || got.AcceptPaper || got.RepeatWindow != time.Minute || got.ClockSkew != 90*time.Second ||
			!got.UpdatedAt.Equal(t0) || got.UpdatedBy != "admin" {
			t.Fatalf("policy = %+v", got)
		}
		if !slices.Equal(p.Colors, got.Colors) || !p.UpdatedAt.Equal(t0) {
			t.Fatalf("ChangePolicy did not normalise its argument: %+v", p)
		}
	})
	t.Run("NoTestRequired", func(t *testing.T) {
		db := MustOpenDB(t)
		MustSetup(t, db)
		p := store.DefaultPolicy()
		p.MaxTestAge = 0
		if err := db.ChangePolicy(ctxb(), &p, "admin"); err != nil {
			t.Fatal(err)
		}
		if got, _ := db.Policy(ctxb()); got.MaxTestAge != 0 || !got.AcceptPaper {
			t.Fatalf("policy = %+v", got)
		}
	})
	t.Run("ErrInvalid", func(t *testing.T) {
		db := MustOpenDB(t)
		MustSetup(t, db)
		for _, mod := range []func(*store.Policy){
			func(p *store.Policy) { p.Colors = nil },
			func(p *store.Policy) { p.Colors = []pass.Color{4} },
			func(p *store.Policy) { p.MaxTestAge = -time.Hour },
			func(p *store.Policy) { p.MaxTestAge = 1000 * time.Hour },
			func(p *store.Policy) { p.MinDoses = -1 },
			func(p *store.Policy) { p.RepeatWindow = 48 * time.Hour },
			func(p *store.Policy) { p.ClockSkew = -time.Second },
		} {
			p := store.DefaultPolicy()
			mod(&p)
			if err := db.ChangePolicy(ctxb(), &p, "admin"); !errors.Is(err, store.ErrInvalid) {
				t.Errorf("%+v: err = %v, want ErrInvalid", p, err)
			}
		}
		if err := db.ChangePolicy(ctxb(), new(store.DefaultPolicy()), ""); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("no actor: err = %v, want ErrInvalid", err)
		}
		if got, _ := db.Policy(ctxb()); got.UpdatedBy != "setup" {
			t.Fatalf("a refused policy was stored: %+v", got)
		}
	})
}
