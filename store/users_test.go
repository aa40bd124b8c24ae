package store_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"passgate/store"
)

func TestDB_CreateUser(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		db := MustOpenDB(t)
		u := &store.User{Username: "li.na", Role: store.UserIssuer, PasswordHash: testHash}
		if err := db.CreateUser(ctxb(), u, "admin"); err != nil {
			t.Fatal(err)
		}
		if u.ID == 0 || !u.CreatedAt.Equal(t0) {
			t.Fatalf("user = %+v", u)
		}
	})
	t.Run("ErrConflict", func(t *testing.T) {
		db := MustOpenDB(t)
		if err := db.CreateUser(ctxb(), &store.User{Username: "li.na", Role: store.UserStaff, PasswordHash: testHash}, "admin"); err != nil {
			t.Fatal(err)
		}
		err := db.CreateUser(ctxb(), &store.User{Username: "LI.NA", Role: store.UserStaff, PasswordHash: testHash}, "admin")
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
			if err := db.CreateUser(ctxb(), u, "admin"); !errors.Is(err, store.ErrInvalid) {
				t.Errorf("user %+v: err = %v, want ErrInvalid", u, err)
			}
		}
	})
}

func TestDB_FindUserByName(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		db := MustOpenDB(t)
		if err := db.CreateUser(ctxb(), &store.User{Username: "Wang", Role: store.UserStaff, PasswordHash: testHash}, "admin"); err != nil {
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

// mustUser creates a user with role and returns it.
func mustUser(t *testing.T, db *store.DB, name string, role store.UserRole) *store.User {
	t.Helper()
	u := &store.User{Username: name, Role: role, PasswordHash: testHash}
	if err := db.CreateUser(ctxb(), u, "admin"); err != nil {
		t.Fatal(err)
	}
	return u
}

// mustSession starts a session for u and returns its token.
func mustSession(t *testing.T, db *store.DB, u *store.User) string {
	t.Helper()
	tok, err := db.CreateSession(ctxb(), u.ID, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestDB_FindUsers(t *testing.T) {
	db := MustOpenDB(t)
	mustUser(t, db, "zhao", store.UserStaff)
	b := mustUser(t, db, "Bai", store.UserIssuer)
	mustUser(t, db, "admin", store.UserAdmin)
	if err := db.DisableUser(ctxb(), b.ID, "admin"); err != nil {
		t.Fatal(err)
	}
	us, err := db.FindUsers(ctxb())
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, u := range us {
		names = append(names, u.Username)
	}
	if strings.Join(names, ",") != "admin,Bai,zhao" {
		t.Fatalf("names = %v, want case-insensitive order with the disabled user", names)
	}
	if us[1].DisabledAt.IsZero() || !us[0].DisabledAt.IsZero() || us[1].Role != store.UserIssuer {
		t.Fatalf("users = %+v %+v", us[0], us[1])
	}
}

func TestDB_FindUserByID(t *testing.T) {
	db := MustOpenDB(t)
	u := mustUser(t, db, "li", store.UserIssuer)
	got, err := db.FindUserByID(ctxb(), u.ID)
	if err != nil || got.Username != "li" || got.Role != store.UserIssuer || got.PasswordHash != testHash || !got.CreatedAt.Equal(t0) {
		t.Fatalf("%+v %v", got, err)
	}
	if _, err := db.FindUserByID(ctxb(), u.ID+100); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("err = %v, want ErrNotFound", err)
	}
}

func TestDB_UpdateUserRole(t *testing.T) {
	db := MustOpenDB(t)
	admin := mustUser(t, db, "admin", store.UserAdmin)
	li := mustUser(t, db, "li", store.UserStaff)
	tok := mustSession(t, db, li)
	if err := db.UpdateUserRole(ctxb(), li.ID, store.UserIssuer, "admin"); err != nil {
		t.Fatal(err)
	}
	if _, u, err := db.FindSession(ctxb(), tok); err != nil || u.Role != store.UserIssuer {
		t.Fatalf("session user after role change: %+v %v", u, err)
	}
	if err := db.UpdateUserRole(ctxb(), li.ID, "root", "admin"); !errors.Is(err, store.ErrInvalid) {
		t.Errorf("unknown role: err = %v", err)
	}
	if err := db.UpdateUserRole(ctxb(), 999, store.UserStaff, "admin"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("unknown user: err = %v", err)
	}
	t.Run("LastAdmin", func(t *testing.T) {
		if err := db.UpdateUserRole(ctxb(), admin.ID, store.UserStaff, "admin"); !errors.Is(err, store.ErrLastAdmin) || !errors.Is(err, store.ErrConflict) {
			t.Fatalf("err = %v, want ErrLastAdmin", err)
		}
		// With a second admin the first may step down.
		if err := db.UpdateUserRole(ctxb(), li.ID, store.UserAdmin, "admin"); err != nil {
			t.Fatal(err)
		}
		if err := db.UpdateUserRole(ctxb(), admin.ID, store.UserStaff, "admin"); err != nil {
			t.Fatal(err)
		}
		if u, _ := db.FindUserByID(ctxb(), admin.ID); u.Role != store.UserStaff {
			t.Fatalf("role = %s", u.Role)
		}
	})
}

func TestDB_DisableUser(t *testing.T) {
	db := MustOpenDB(t)
	admin := mustUser(t, db, "admin", store.UserAdmin)
	li := mustUser(t, db, "li", store.UserStaff)
	wang := mustUser(t, db, "wang", store.UserStaff)
	tok, other := mustSession(t, db, li), mustSession(t, db, wang)
	if err := db.DisableUser(ctxb(), li.ID, "admin"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := db.FindSession(ctxb(), tok); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("session of a disabled user: err = %v", err)
	}
	if _, _, err := db.FindSession(ctxb(), other); err != nil {
		t.Fatalf("another user's session ended: %v", err)
	}
	if u, _ := db.FindUserByID(ctxb(), li.ID); !u.DisabledAt.Equal(t0) {
		t.Fatalf("disabled at %v", u.DisabledAt)
	}
	// The sessions are deleted, not merely hidden: enabling the user again
	// must not bring them back.
	if err := db.EnableUser(ctxb(), li.ID, "admin"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := db.FindSession(ctxb(), tok); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("session came back after enabling: err = %v", err)
	}
	if u, _ := db.FindUserByID(ctxb(), li.ID); !u.DisabledAt.IsZero() {
		t.Fatalf("still disabled: %v", u.DisabledAt)
	}
	if err := db.DisableUser(ctxb(), 999, "admin"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("unknown user: err = %v", err)
	}
	if err := db.EnableUser(ctxb(), 999, "admin"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("unknown user: err = %v", err)
	}
	if err := db.DisableUser(ctxb(), admin.ID, "admin"); !errors.Is(err, store.ErrLastAdmin) {
		t.Errorf("last admin: err = %v", err)
	}
}

func TestDB_SetPassword(t *testing.T) {
	db := MustOpenDB(t)
	li := mustUser(t, db, "li", store.UserStaff)
	tok := mustSession(t, db, li)
	hash, err := store.HashPassword("new secret")
	if err != nil {
		t.Fatal(err)
	}
	if err := db.SetPassword(ctxb(), li.ID, hash, "admin", false); err != nil {
		t.Fatal(err)
	}
	if _, _, err := db.FindSession(ctxb(), tok); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("session survived a password change: err = %v", err)
	}
	u, _ := db.FindUserByID(ctxb(), li.ID)
	if ok, err := store.VerifyPassword(u.PasswordHash, "new secret"); !ok || err != nil {
		t.Fatalf("new password does not verify: %v %v", ok, err)
	}
	if err := db.SetPassword(ctxb(), li.ID, "plaintext", "admin", false); !errors.Is(err, store.ErrInvalid) {
		t.Errorf("plaintext: err = %v", err)
	}
	if err := db.SetPassword(ctxb(), 999, hash, "admin", false); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("unknown user: err = %v", err)
	}
}
