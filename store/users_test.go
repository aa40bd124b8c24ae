package store_test

import (
	"errors"
	"strings"
	"testing"

	"passgate/store"
)

func TestDB_CreateUser(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		db := MustOpenDB(t)
		u := &store.User{Username: "li.na", Role: store.UserIssuer, PasswordHash: testHash}
		if err := db.CreateUser(ctxb(), u); err != nil {
			t.Fatal(err)
		}
		if u.ID == 0 || !u.CreatedAt.Equal(t0) {
			t.Fatalf("user = %+v", u)
		}
	})
	t.Run("ErrConflict", func(t *testing.T) {
		db := MustOpenDB(t)
		if err := db.CreateUser(ctxb(), &store.User{Username: "li.na", Role: store.UserStaff, PasswordHash: testHash}); err != nil {
			t.Fatal(err)
		}
		err := db.CreateUser(ctxb(), &store.User{Username: "LI.NA", Role: store.UserStaff, PasswordHash: testHash})
		if !errors.Is(err, store.ErrConflict) {
			t.Fatalf("err = %v, want ErrConflict", err)
		}
	})
	t.Run("ErrInvalid", func(t *testing.T) {
		db := MustOpenDB(t)
		for _, u := range []*store.User{
			{Username: "", Role: store.UserStaff, PasswordHash: testHash},
			{Username: " padded", Role: store.UserStaff, PasswordHash: testHash},
			{Username: "bell\a", Role: store.UserStaff, PasswordHash: testHash},
			{Username: strings.Repeat("x", 65), Role: store.UserStaff, PasswordHash: testHash},
			{Username: "x", Role: "root", PasswordHash: testHash},
			{Username: "x", Role: store.UserStaff, PasswordHash: "plaintext"},
		} {
			if err := db.CreateUser(ctxb(), u); !errors.Is(err, store.ErrInvalid) {
				t.Errorf("user %+v: err = %v, want ErrInvalid", u, err)
			}
		}
	})
}

func TestDB_FindUserByName(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		db := MustOpenDB(t)
		if err := db.CreateUser(ctxb(), &store.User{Username: "Wang", Role: store.UserStaff, PasswordHash: testHash}); err != nil {
			t.Fatal(err)
		}
		u, err := db.FindUserByName(ctxb(), "wang")
		if err != nil {
			t.Fatal(err)
		}
		if u.Username != "Wang" || u.Role != store.UserStaff || u.PasswordHash != testHash || !u.DisabledAt.IsZero() {
			t.Fatalf("user = %+v", u)
		}
		ok, err := store.VerifyPassword(u.PasswordHash, "correct horse")
		if err != nil || !ok {
			t.Fatalf("stored hash does not verify: %v %v", ok, err)
		}
	})
	t.Run("ErrNotFound", func(t *testing.T) {
		db := MustOpenDB(t)
		if _, err := db.FindUserByName(ctxb(), "nobody"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("err = %v, want ErrNotFound", err)
		}
	})
}
