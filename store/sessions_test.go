package store_test

import (
	"errors"
	"testing"
	"time"

	"passgate/store"
)

func TestDB_Sessions(t *testing.T) {
	db := MustOpenDB(t)
	now := t0
	db.Now = func() time.Time { return now }
	u := &store.User{Username: "li", Role: store.UserStaff, PasswordHash: "$argon2id$x", CreatedAt: now}
	if err := db.CreateUser(ctxb(), u, "admin"); err != nil {
		t.Fatal(err)
	}
	tok, err := db.CreateSession(ctxb(), u.ID, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	t.Run("OK", func(t *testing.T) {
		s, got, err := db.FindSession(ctxb(), tok)
		if err != nil || got.Username != "li" || got.Role != store.UserStaff || !s.ExpiresAt.Equal(now.Add(time.Hour)) {
			t.Fatalf("%+v %+v %v", s, got, err)
		}
	})
	t.Run("ErrUnknownToken", func(t *testing.T) {
		if _, _, err := db.FindSession(ctxb(), tok+"x"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("SlidingExpiry", func(t *testing.T) {
		now = now.Add(50 * time.Minute)
		if err := db.TouchSession(ctxb(), tok, time.Hour); err != nil {
			t.Fatal(err)
		}
		now = now.Add(50 * time.Minute)
		if _, _, err := db.FindSession(ctxb(), tok); err != nil {
			t.Fatalf("touched session expired: %v", err)
		}
		now = now.Add(11 * time.Minute)
		if _, _, err := db.FindSession(ctxb(), tok); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("expired session found: %v", err)
		}
		if n, err := db.PurgeSessions(ctxb()); err != nil || n != 1 {
			t.Fatalf("purged %d: %v", n, err)
		}
	})
	t.Run("Logout", func(t *testing.T) {
		tok, _ := db.CreateSession(ctxb(), u.ID, time.Hour)
		tok2, _ := db.CreateSession(ctxb(), u.ID, time.Hour)
		if err := db.DeleteSession(ctxb(), tok); err != nil {
			t.Fatal(err)
		}
		if _, _, err := db.FindSession(ctxb(), tok); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("logged-out session found: %v", err)
		}
		if _, _, err := db.FindSession(ctxb(), tok2); err != nil {
			t.Fatalf("other session gone: %v", err)
		}
		if err := db.DeleteUserSessions(ctxb(), u.ID); err != nil {
			t.Fatal(err)
		}
		if _, _, err := db.FindSession(ctxb(), tok2); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("session survived DeleteUserSessions: %v", err)
		}
	})
}
