package store_test

import (
	"errors"
	"slices"
	"testing"
	"time"

	"passgate/pass"
	"passgate/store"
)

func TestDB_Setup(t *testing.T) {
	t.Parallel()
	t.Run("OK", func(t *testing.T) {
		db := MustOpenDB(t)
		root, issuer := MustSetup(t, db)
		if root.Role != store.RoleRoot || issuer.Role != store.RoleIssuer {
			t.Fatalf("roles %q, %q", root.Role, issuer.Role)
		}
		d, err := db.District(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if d.ID != "xa" || d.Appliance != "desk-1" || len(d.PseudonymKey) != 32 || !d.CreatedAt.Equal(t0) {
			t.Fatalf("district = %+v", d)
		}
		keys, err := db.FindKeys(t.Context(), store.KeyFilter{})
		if err != nil {
			t.Fatal(err)
		}
		if len(keys) != 2 {
			t.Fatalf("%d keys, want 2", len(keys))
		}
		u, err := db.FindUserByName(t.Context(), "admin")
		if err != nil {
			t.Fatal(err)
		}
		if u.Role != store.UserAdmin {
			t.Fatalf("admin role %q", u.Role)
		}
		p, err := db.Policy(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		want := store.DefaultPolicy()
		if !slices.Equal(p.Colors, want.Colors) || p.MaxTestAge != want.MaxTestAge || p.AcceptPaper != want.AcceptPaper ||
			p.RepeatWindow != want.RepeatWindow || p.ClockSkew != want.ClockSkew || p.UpdatedBy != "setup" {
			t.Fatalf("policy = %+v, want %+v", p, want)
		}
	})
	t.Run("ErrConflict", func(t *testing.T) {
		db := MustOpenDB(t)
		MustSetup(t, db)
		d := &store.District{ID: "yy", PseudonymKey: make([]byte, 32)}
		k1 := &store.Key{KID: kid(7), Alg: pass.AlgEdDSA, Public: []byte("p"), District: "yy"}
		k2 := &store.Key{KID: kid(8), Alg: pass.AlgEdDSA, Public: []byte("p"), District: "yy"}
		err := db.Setup(t.Context(), d, k1, k2, &store.User{Username: "other", PasswordHash: testHash})
		if !errors.Is(err, store.ErrConflict) {
			t.Fatalf("err = %v, want ErrConflict", err)
		}
		// Nothing of the second attempt was kept.
		if _, err := db.FindUserByName(t.Context(), "other"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("second admin stored: %v", err)
		}
	})
	t.Run("ErrInvalid", func(t *testing.T) {
		db := MustOpenDB(t)
		d := &store.District{ID: "xa", PseudonymKey: make([]byte, 8)} // short key
		k1 := &store.Key{KID: kid(1), Alg: pass.AlgEdDSA, Public: []byte("p"), District: "xa"}
		k2 := &store.Key{KID: kid(2), Alg: pass.AlgEdDSA, Public: []byte("p"), District: "xa"}
		err := db.Setup(t.Context(), d, k1, k2, &store.User{Username: "admin", PasswordHash: testHash})
		if !errors.Is(err, store.ErrInvalid) {
			t.Fatalf("err = %v, want ErrInvalid", err)
		}
		if _, err := db.District(t.Context()); !errors.Is(err, store.ErrNotInitialized) {
			t.Fatalf("district after failed setup: %v", err)
		}
		if keys, _ := db.FindKeys(t.Context(), store.KeyFilter{}); len(keys) != 0 {
			t.Fatalf("keys kept after failed setup: %d", len(keys))
		}
	})
}

func TestDB_District(t *testing.T) {
	t.Parallel()
	t.Run("ErrNotInitialized", func(t *testing.T) {
		db := MustOpenDB(t)
		if _, err := db.District(t.Context()); !errors.Is(err, store.ErrNotInitialized) {
			t.Fatalf("err = %v, want ErrNotInitialized", err)
		}
		if _, err := db.Policy(t.Context()); !errors.Is(err, store.ErrNotInitialized) {
			t.Fatalf("policy err = %v, want ErrNotInitialized", err)
		}
	})
}

func TestDB_CreateKey(t *testing.T) {
	t.Parallel()
	foreign := func() *store.Key {
		return &store.Key{KID: kid(9), Role: store.RoleRoot, Alg: pass.AlgES256, Public: []byte("other-root"), District: "bj"}
	}
	t.Run("OK", func(t *testing.T) {
		db := MustOpenDB(t)
		MustSetup(t, db)
		k := foreign()
		if err := db.CreateKey(t.Context(), k); err != nil {
			t.Fatal(err)
		}
		roots, err := db.FindKeys(t.Context(), store.KeyFilter{Role: store.RoleRoot})
		if err != nil {
			t.Fatal(err)
		}
		if len(roots) != 2 {
			t.Fatalf("%d roots, want 2", len(roots))
		}
		got := roots[1]
		if got.KID != k.KID || got.Alg != pass.AlgES256 || got.Private != nil || got.District != "bj" || !got.CreatedAt.Equal(t0) {
			t.Fatalf("stored key = %+v", got)
		}
	})
	t.Run("ErrConflict", func(t *testing.T) {
		db := MustOpenDB(t)
		if err := db.CreateKey(t.Context(), foreign()); err != nil {
			t.Fatal(err)
		}
		if err := db.CreateKey(t.Context(), foreign()); !errors.Is(err, store.ErrConflict) {
			t.Fatalf("err = %v, want ErrConflict", err)
		}
	})
	t.Run("ErrInvalid", func(t *testing.T) {
		db := MustOpenDB(t)
		for _, mod := range []func(*store.Key){
			func(k *store.Key) { k.KID = pass.KeyID{} },
			func(k *store.Key) { k.Role = "god" },
			func(k *store.Key) { k.Alg = 1 },
			func(k *store.Key) { k.Public = nil },
			func(k *store.Key) { k.District = "" },
			func(k *store.Key) { k.NotBefore, k.NotAfter = t0, t0.Add(-time.Hour) },
		} {
			k := foreign()
			mod(k)
			if err := db.CreateKey(t.Context(), k); !errors.Is(err, store.ErrInvalid) {
				t.Errorf("key %+v: err = %v, want ErrInvalid", k, err)
			}
		}
	})
}

func TestDB_FindKeys(t *testing.T) {
	t.Parallel()
	db := MustOpenDB(t)
	MustSetup(t, db)
	if err := db.CreateKey(t.Context(), &store.Key{KID: kid(9), Role: store.RoleRoot, Alg: pass.AlgEdDSA, Public: []byte("x"), District: "bj"}); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		f    store.KeyFilter
		want int
	}{
		{store.KeyFilter{}, 3},
		{store.KeyFilter{Role: store.RoleRoot}, 2},
		{store.KeyFilter{Role: store.RoleIssuer}, 1},
		{store.KeyFilter{HasPrivate: true}, 2},
		{store.KeyFilter{Role: store.RoleRoot, HasPrivate: true}, 1},
	} {
		keys, err := db.FindKeys(t.Context(), tt.f)
		if err != nil {
			t.Fatal(err)
		}
		if len(keys) != tt.want {
			t.Errorf("FindKeys(%+v) = %d keys, want %d", tt.f, len(keys), tt.want)
		}
	}
}

func TestDB_SigningKey(t *testing.T) {
	t.Parallel()
	t.Run("OK", func(t *testing.T) {
		db := MustOpenDB(t)
		_, issuer := MustSetup(t, db)
		// A newer issuer key wins; a newer but revoked or expired one does not.
		newer := &store.Key{KID: kid(3), Role: store.RoleIssuer, Alg: pass.AlgEdDSA, Public: []byte("n"), Private: []byte("n"),
			District: "xa", CreatedAt: t0.Add(time.Minute)}
		revoked := &store.Key{KID: kid(4), Role: store.RoleIssuer, Alg: pass.AlgEdDSA, Public: []byte("r"), Private: []byte("r"),
			District: "xa", CreatedAt: t0.Add(2 * time.Minute), RevokedAt: t0.Add(3 * time.Minute)}
		expired := &store.Key{KID: kid(5), Role: store.RoleIssuer, Alg: pass.AlgEdDSA, Public: []byte("e"), Private: []byte("e"),
			District: "xa", CreatedAt: t0.Add(4 * time.Minute), NotBefore: t0.Add(-48 * time.Hour), NotAfter: t0.Add(-24 * time.Hour)}
		for _, k := range []*store.Key{newer, revoked, expired} {
			if err := db.CreateKey(t.Context(), k); err != nil {
				t.Fatal(err)
			}
		}
		k, err := db.SigningKey(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if k.KID != newer.KID {
			t.Fatalf("signing key %x, want %x (setup issuer %x)", k.KID, newer.KID, issuer.KID)
		}
	})
	t.Run("OnlyExpired", func(t *testing.T) {
		db := MustOpenDB(t)
		expired := &store.Key{KID: kid(5), Role: store.RoleIssuer, Alg: pass.AlgEdDSA, Public: []byte("e"), Private: []byte("e"),
			District: "xa", NotBefore: t0.Add(-48 * time.Hour), NotAfter: t0.Add(-24 * time.Hour)}
		if err := db.CreateKey(t.Context(), expired); err != nil {
			t.Fatal(err)
		}
		k, err := db.SigningKey(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if k.KID != expired.KID {
			t.Fatalf("signing key %x, want the expired %x", k.KID, expired.KID)
		}
	})
	t.Run("ErrNotFound", func(t *testing.T) {
		db := MustOpenDB(t)
		if err := db.CreateKey(t.Context(), &store.Key{KID: kid(3), Role: store.RoleIssuer, Alg: pass.AlgEdDSA, Public: []byte("n"), District: "xa"}); err != nil {
			t.Fatal(err)
		}
		if _, err := db.SigningKey(t.Context()); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("err = %v, want ErrNotFound", err)
		}
	})
}
