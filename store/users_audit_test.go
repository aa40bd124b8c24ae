package store_test

import (
	"errors"
	"testing"
	"time"

	"passgate/store"
)

// accountFixture is a database with an admin and a staff account, li,
// who is logged in.
type accountFixture struct {
	db           *store.DB
	admin, li    *store.User
	liSession    string
	recordsAfter int64 // the trail's length once the fixture is set up
}

func newAccountFixture(t *testing.T) *accountFixture {
	t.Helper()
	f := &accountFixture{db: MustOpenDB(t)}
	f.admin = &store.User{Username: "root", Role: store.UserAdmin, PasswordHash: testHash}
	f.li = &store.User{Username: "li", Role: store.UserStaff, PasswordHash: testHash}
	for _, u := range []*store.User{f.admin, f.li} {
		if err := f.db.CreateUser(ctxb(), u, "setup"); err != nil {
			t.Fatal(err)
		}
	}
	var err error
	if f.liSession, err = f.db.CreateSession(ctxb(), f.li.ID, time.Hour); err != nil {
		t.Fatal(err)
	}
	f.recordsAfter = f.lastRecord(t).Seq
	return f
}

// lastRecord returns the newest audit record, or a zero one.
func (f *accountFixture) lastRecord(t *testing.T) store.AuditRecord {
	t.Helper()
	var last store.AuditRecord
	if err := f.db.FindAudit(ctxb(), store.AuditFilter{Last: 1}, func(r *store.AuditRecord) error {
		last = *r
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return last
}

// wantRecord checks that exactly one record was appended since the
// fixture was set up, and that it is this one.
func (f *accountFixture) wantRecord(t *testing.T, actor, action, subject, detail string) {
	t.Helper()
	r := f.lastRecord(t)
	if r.Seq != f.recordsAfter+1 || string(r.Actor) != actor || r.Action != action || r.Subject != subject || string(r.Detail) != detail {
		t.Fatalf("record %d %q %q %q %s, want %d %q %q %q %s", r.Seq, r.Actor, r.Action, r.Subject, r.Detail,
			f.recordsAfter+1, actor, action, subject, detail)
	}
}

// wantNoRecord checks that nothing was appended since the fixture was
// set up.
func (f *accountFixture) wantNoRecord(t *testing.T) {
	t.Helper()
	if r := f.lastRecord(t); r.Seq != f.recordsAfter {
		t.Fatalf("record %d %q %q appended", r.Seq, r.Action, r.Subject)
	}
}

func (f *accountFixture) liSessionAlive(t *testing.T) bool {
	t.Helper()
	_, _, err := f.db.FindSession(ctxb(), f.liSession)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		t.Fatal(err)
	}
	return err == nil
}

func TestDB_AccountChangesAreAudited(t *testing.T) {
	t.Run("CreateUser", func(t *testing.T) {
		f := newAccountFixture(t)
		u := &store.User{Username: "wang", Role: store.UserIssuer, PasswordHash: testHash}
		if err := f.db.CreateUser(ctxb(), u, "root"); err != nil {
			t.Fatal(err)
		}
		f.wantRecord(t, "root", store.AuditUserCreated, "wang", `{"role":"issuer"}`)
	})
	t.Run("UpdateUserRole", func(t *testing.T) {
		f := newAccountFixture(t)
		if err := f.db.UpdateUserRole(ctxb(), f.li.ID, store.UserIssuer, "root"); err != nil {
			t.Fatal(err)
		}
		f.wantRecord(t, "root", store.AuditUserRole, "li", `{"new":"issuer","old":"staff"}`)
	})
	t.Run("DisableUser", func(t *testing.T) {
		f := newAccountFixture(t)
		if err := f.db.DisableUser(ctxb(), f.li.ID, "root"); err != nil {
			t.Fatal(err)
		}
		f.wantRecord(t, "root", store.AuditUserDisabled, "li", ``)
	})
	t.Run("EnableUser", func(t *testing.T) {
		f := newAccountFixture(t)
		if err := f.db.EnableUser(ctxb(), f.li.ID, "root"); err != nil {
			t.Fatal(err)
		}
		f.wantRecord(t, "root", store.AuditUserEnabled, "li", ``)
	})
	t.Run("SetPassword", func(t *testing.T) {
		f := newAccountFixture(t)
		if err := f.db.SetPassword(ctxb(), f.li.ID, testHash, "root", true); err != nil {
			t.Fatal(err)
		}
		f.wantRecord(t, "root", store.AuditUserPassword, "li", `{"generated":true}`)
	})
	t.Run("Login", func(t *testing.T) {
		f := newAccountFixture(t)
		tok, err := f.db.Login(ctxb(), store.Login{User: f.li, Addr: "192.0.2.7", TTL: time.Hour, Previous: f.liSession})
		if err != nil {
			t.Fatal(err)
		}
		f.wantRecord(t, "li", store.AuditLogin, "li", `{"addr":"192.0.2.7","outcome":"ok","role":"staff"}`)
		if _, u, err := f.db.FindSession(ctxb(), tok); err != nil || u.ID != f.li.ID {
			t.Fatalf("new session: %+v %v", u, err)
		}
		if f.liSessionAlive(t) {
			t.Fatal("the previous session outlived the login")
		}
	})
	t.Run("RefuseLoginOfAnAccount", func(t *testing.T) {
		f := newAccountFixture(t)
		if err := f.db.RefuseLogin(ctxb(), store.LoginRefusal{User: f.li, Addr: "192.0.2.7", Outcome: "bad_password"}); err != nil {
			t.Fatal(err)
		}
		f.wantRecord(t, "li", store.AuditLoginFailed, "li", `{"addr":"192.0.2.7","outcome":"bad_password"}`)
	})
	t.Run("RefuseLoginOfNoAccount", func(t *testing.T) {
		f := newAccountFixture(t)
		l := store.LoginRefusal{Addr: "192.0.2.7", Outcome: "throttled", Limit: "address"}
		if err := f.db.RefuseLogin(ctxb(), l); err != nil {
			t.Fatal(err)
		}
		f.wantRecord(t, "anonymous", store.AuditLoginFailed, "", `{"addr":"192.0.2.7","limit":"address","outcome":"throttled"}`)
	})
}

// An account change whose audit record cannot be appended (here: no
// actor) does not happen at all.
func TestDB_AccountChangeWithoutItsRecordRollsBack(t *testing.T) {
	t.Run("CreateUser", func(t *testing.T) {
		f := newAccountFixture(t)
		u := &store.User{Username: "wang", Role: store.UserIssuer, PasswordHash: testHash}
		if err := f.db.CreateUser(ctxb(), u, ""); !errors.Is(err, store.ErrInvalid) {
			t.Fatalf("CreateUser = %v, want ErrInvalid", err)
		}
		if _, err := f.db.FindUserByName(ctxb(), "wang"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("user created without its record: %v", err)
		}
		f.wantNoRecord(t)
	})
	t.Run("UpdateUserRole", func(t *testing.T) {
		f := newAccountFixture(t)
		if err := f.db.UpdateUserRole(ctxb(), f.li.ID, store.UserAdmin, ""); !errors.Is(err, store.ErrInvalid) {
			t.Fatalf("UpdateUserRole = %v, want ErrInvalid", err)
		}
		if u, err := f.db.FindUserByID(ctxb(), f.li.ID); err != nil || u.Role != store.UserStaff {
			t.Fatalf("role changed without its record: %+v %v", u, err)
		}
		f.wantNoRecord(t)
	})
	t.Run("DisableUser", func(t *testing.T) {
		f := newAccountFixture(t)
		if err := f.db.DisableUser(ctxb(), f.li.ID, ""); !errors.Is(err, store.ErrInvalid) {
			t.Fatalf("DisableUser = %v, want ErrInvalid", err)
		}
		if u, err := f.db.FindUserByID(ctxb(), f.li.ID); err != nil || !u.DisabledAt.IsZero() || !f.liSessionAlive(t) {
			t.Fatalf("disabled without its record: %+v %v", u, err)
		}
		f.wantNoRecord(t)
	})
	t.Run("EnableUser", func(t *testing.T) {
		f := newAccountFixture(t)
		if err := f.db.DisableUser(ctxb(), f.li.ID, "root"); err != nil {
			t.Fatal(err)
		}
		f.recordsAfter++
		if err := f.db.EnableUser(ctxb(), f.li.ID, ""); !errors.Is(err, store.ErrInvalid) {
			t.Fatalf("EnableUser = %v, want ErrInvalid", err)
		}
		if u, err := f.db.FindUserByID(ctxb(), f.li.ID); err != nil || u.DisabledAt.IsZero() {
			t.Fatalf("enabled without its record: %+v %v", u, err)
		}
		f.wantNoRecord(t)
	})
	t.Run("SetPassword", func(t *testing.T) {
		f := newAccountFixture(t)
		other, err := store.HashPassword("another password")
		if err != nil {
			t.Fatal(err)
		}
		if err := f.db.SetPassword(ctxb(), f.li.ID, other, "", false); !errors.Is(err, store.ErrInvalid) {
			t.Fatalf("SetPassword = %v, want ErrInvalid", err)
		}
		if u, err := f.db.FindUserByID(ctxb(), f.li.ID); err != nil || u.PasswordHash != testHash || !f.liSessionAlive(t) {
			t.Fatalf("password set without its record: %v", err)
		}
		f.wantNoRecord(t)
	})
	t.Run("Login", func(t *testing.T) {
		f := newAccountFixture(t)
		// A user whose row is gone: the new session cannot be stored,
		// so the previous one is not ended either.
		ghost := &store.User{ID: 999, Username: "ghost", Role: store.UserStaff}
		if _, err := f.db.Login(ctxb(), store.Login{User: ghost, TTL: time.Hour, Previous: f.liSession}); err == nil {
			t.Fatal("login of a missing user succeeded")
		}
		if !f.liSessionAlive(t) {
			t.Fatal("a failed login ended the previous session")
		}
		f.wantNoRecord(t)
	})
}
