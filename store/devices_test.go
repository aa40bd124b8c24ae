package store_test

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"passgate/store"
)

func TestDB_CreateDevice(t *testing.T) {
	t.Parallel()
	t.Run("OK", func(t *testing.T) {
		db := MustOpenDB(t)
		d, token, err := db.CreateDevice(t.Context(), "gate-1", "test")
		if err != nil {
			t.Fatal(err)
		}
		if d.ID == 0 || d.Name != "gate-1" || !d.CreatedAt.Equal(t0) {
			t.Fatalf("device = %+v", d)
		}
		raw, ok := strings.CutPrefix(token, "pgd_")
		if !ok {
			t.Fatalf("token %q lacks the pgd_ prefix", token)
		}
		if b, err := base64.RawURLEncoding.DecodeString(raw); err != nil || len(b) != 32 {
			t.Fatalf("token body: %d bytes, %v", len(b), err)
		}
		_, token2, err := db.CreateDevice(t.Context(), "gate-2", "test")
		if err != nil {
			t.Fatal(err)
		}
		if token2 == token {
			t.Fatal("two devices got the same token")
		}
		// Only the hash is stored.
		w, _ := db.Pools()
		var n int
		if err := w.QueryRow("SELECT count(*) FROM devices WHERE CAST(token_hash AS TEXT) LIKE '%' || ? || '%'", raw[:16]).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 0 {
			t.Fatal("the token is stored in clear")
		}
	})
	t.Run("ErrConflict", func(t *testing.T) {
		db := MustOpenDB(t)
		if _, _, err := db.CreateDevice(t.Context(), "gate-1", "test"); err != nil {
			t.Fatal(err)
		}
		if _, _, err := db.CreateDevice(t.Context(), "gate-1", "test"); !errors.Is(err, store.ErrConflict) {
			t.Fatalf("err = %v, want ErrConflict", err)
		}
	})
	t.Run("ErrInvalid", func(t *testing.T) {
		db := MustOpenDB(t)
		for _, name := range []string{"", "tab\there", strings.Repeat("g", 65)} {
			if _, _, err := db.CreateDevice(t.Context(), name, "test"); !errors.Is(err, store.ErrInvalid) {
				t.Errorf("%q: err = %v, want ErrInvalid", name, err)
			}
		}
	})
}

func TestDB_FindDeviceByToken(t *testing.T) {
	t.Parallel()
	t.Run("OK", func(t *testing.T) {
		db := MustOpenDB(t)
		d, token, err := db.CreateDevice(t.Context(), "gate-1", "test")
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := db.CreateDevice(t.Context(), "gate-2", "test"); err != nil {
			t.Fatal(err)
		}
		got, err := db.FindDeviceByToken(t.Context(), token)
		if err != nil {
			t.Fatal(err)
		}
		if *got != *d {
			t.Fatalf("device = %+v, want %+v", got, d)
		}
	})
	t.Run("ErrNotFound", func(t *testing.T) {
		db := MustOpenDB(t)
		_, token, err := db.CreateDevice(t.Context(), "gate-1", "test")
		if err != nil {
			t.Fatal(err)
		}
		flipped := []byte(token)
		flipped[10] ^= 'A' ^ 'B'
		if flipped[10] == token[10] {
			flipped[10] = 'C'
		}
		for _, tok := range []string{"", "pgd_", token[4:], "pgd_" + strings.Repeat("A", 43), string(flipped),
			token + "A", strings.Replace(token, "pgd_", "pgx_", 1), token[:len(token)-1] + "!"} {
			if _, err := db.FindDeviceByToken(t.Context(), tok); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("%q: err = %v, want ErrNotFound", tok, err)
			}
			if err != nil && strings.Contains(err.Error(), token[4:]) {
				t.Errorf("error echoes the token: %v", err)
			}
		}
	})
	t.Run("ErrRevoked", func(t *testing.T) {
		db := MustOpenDB(t)
		_, token, err := db.CreateDevice(t.Context(), "gate-1", "test")
		if err != nil {
			t.Fatal(err)
		}
		if err := db.RevokeDevice(t.Context(), "gate-1", "test"); err != nil {
			t.Fatal(err)
		}
		if _, err := db.FindDeviceByToken(t.Context(), token); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("revoked device: err = %v, want ErrNotFound", err)
		}
	})
}

func TestDB_RevokeDevice(t *testing.T) {
	t.Parallel()
	t.Run("OK", func(t *testing.T) {
		db := MustOpenDB(t)
		if _, _, err := db.CreateDevice(t.Context(), "gate-1", "test"); err != nil {
			t.Fatal(err)
		}
		at := t0.Add(time.Hour)
		db.Now = func() time.Time { return at }
		if err := db.RevokeDevice(t.Context(), "gate-1", "test"); err != nil {
			t.Fatal(err)
		}
		list, err := db.FindDevices(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if len(list) != 1 || !list[0].RevokedAt.Equal(at) {
			t.Fatalf("devices = %+v", list)
		}
	})
	t.Run("ErrNotFound", func(t *testing.T) {
		db := MustOpenDB(t)
		if err := db.RevokeDevice(t.Context(), "gate-9", "test"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("err = %v, want ErrNotFound", err)
		}
		if _, _, err := db.CreateDevice(t.Context(), "gate-1", "test"); err != nil {
			t.Fatal(err)
		}
		if err := db.RevokeDevice(t.Context(), "gate-1", "test"); err != nil {
			t.Fatal(err)
		}
		if err := db.RevokeDevice(t.Context(), "gate-1", "test"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("second revoke: err = %v, want ErrNotFound", err)
		}
	})
}

func TestDB_FindDevices(t *testing.T) {
	t.Parallel()
	db := MustOpenDB(t)
	for _, n := range []string{"gate-2", "gate-1", "api"} {
		if _, _, err := db.CreateDevice(t.Context(), n, "test"); err != nil {
			t.Fatal(err)
		}
	}
	list, err := db.FindDevices(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, d := range list {
		names = append(names, d.Name)
	}
	if strings.Join(names, ",") != "api,gate-1,gate-2" {
		t.Fatalf("devices %v", names)
	}
}
