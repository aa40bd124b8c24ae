package store_test

import (
	"errors"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"passgate/store"
)

func TestDB_SetEntrance(t *testing.T) {
	t.Parallel()
	db := MustOpenDB(t)
	MustSetup(t, db)
	t.Run("OK", func(t *testing.T) {
		if err := db.SetEntrance(t.Context(), "serial-1", "北门", "admin"); err != nil {
			t.Fatal(err)
		}
		if err := db.SetEntrance(t.Context(), "api-gw", "南门", "admin"); err != nil {
			t.Fatal(err)
		}
		if err := db.SetEntrance(t.Context(), "api-gw", "北门", "admin"); err != nil {
			t.Fatal(err)
		}
		m, err := db.FindEntrances(t.Context())
		if err != nil || len(m) != 2 || m["serial-1"] != "北门" || m["api-gw"] != "北门" {
			t.Fatalf("entrances %v %v", m, err)
		}
		if err := db.SetEntrance(t.Context(), "serial-1", "", "admin"); err != nil {
			t.Fatal(err)
		}
		if m, _ := db.FindEntrances(t.Context()); len(m) != 1 || m["serial-1"] != "" {
			t.Fatalf("after removal %v", m)
		}
		var actions []string
		err = db.FindAudit(t.Context(), store.AuditFilter{}, func(r *store.AuditRecord) error {
			if r.Action == store.AuditEntrance {
				actions = append(actions, r.Subject+":"+string(r.Detail))
			}
			return nil
		})
		if err != nil || len(actions) != 4 {
			t.Fatalf("audit %v %v", actions, err)
		}
	})
	t.Run("ErrInvalid", func(t *testing.T) {
		for _, c := range []struct{ source, entrance, actor string }{
			{"", "北门", "admin"},
			{"x", " 北门", "admin"},
			{"x", "北\n门", "admin"},
			{"x", strings.Repeat("门", 33), "admin"},
			{"x", "\xff", "admin"},
			{"x", "北门", ""},
			{strings.Repeat("x", 65), "北门", "admin"},
		} {
			if err := db.SetEntrance(t.Context(), c.source, c.entrance, store.Actor(c.actor)); !errors.Is(err, store.ErrInvalid) {
				t.Errorf("%+v: err = %v", c, err)
			}
		}
	})
}

func TestDB_GateHold(t *testing.T) {
	t.Parallel()
	db := MustOpenDB(t)
	if d, err := db.GateHold(t.Context()); err != nil || d != store.DefaultGateHold {
		t.Fatalf("before setup: %v %v", d, err)
	}
	if err := db.SetGateHold(t.Context(), 5*time.Second, "admin"); !errors.Is(err, store.ErrNotInitialized) {
		t.Fatalf("before setup: err = %v", err)
	}
	MustSetup(t, db)
	if d, err := db.GateHold(t.Context()); err != nil || d != 8*time.Second {
		t.Fatalf("default: %v %v", d, err)
	}
	if err := db.SetGateHold(t.Context(), 5*time.Second, "admin"); err != nil {
		t.Fatal(err)
	}
	if d, _ := db.GateHold(t.Context()); d != 5*time.Second {
		t.Fatalf("hold %v", d)
	}
	for _, bad := range []time.Duration{0, time.Second, 61 * time.Second, -5 * time.Second} {
		if err := db.SetGateHold(t.Context(), bad, "admin"); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("%v: err = %v", bad, err)
		}
	}
}

// FuzzCheckEntrance: an accepted entrance name is short, printable text
// without surrounding space, and never holds the newline a screen's
// origin uses as its separator.
func FuzzCheckEntrance(f *testing.F) {
	for _, s := range []string{"北门", "", " 北门", "北\n门", "\xff", strings.Repeat("门", 33), "Gate A", "\u200b", "a\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if store.CheckEntrance(s) != nil {
			return
		}
		if s == "" || !utf8.ValidString(s) || utf8.RuneCountInString(s) > 32 || strings.TrimSpace(s) != s ||
			strings.ContainsAny(s, "\n\r\x00") {
			t.Fatalf("accepted %q", s)
		}
	})
}
