package store_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"passgate/store"
)

func TestDB_SetPolicyRetention(t *testing.T) {
	t.Parallel()
	day := 24 * time.Hour
	t.Run("OK", func(t *testing.T) {
		db := MustOpenDB(t)
		MustSetup(t, db)
		got, err := db.Policy(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if got.PassRetention != store.DefaultPassRetention || got.AuditRetention != store.DefaultAuditRetention {
			t.Fatalf("new district: pass %v audit %v, want the defaults", got.PassRetention, got.AuditRetention)
		}
		for _, c := range []struct{ pass, audit time.Duration }{
			{day, 30 * day},          // the minimums
			{3650 * day, 3650 * day}, // the maximums
			{7*day + time.Millisecond, 400*day + 1500*time.Microsecond}, // kept to the millisecond
		} {
			p := store.DefaultPolicy()
			p.PassRetention, p.AuditRetention = c.pass, c.audit
			if err := db.ChangePolicy(t.Context(), &p, "admin"); err != nil {
				t.Fatalf("%v/%v: %v", c.pass, c.audit, err)
			}
			got, err := db.Policy(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			wantAudit := c.audit.Truncate(time.Millisecond)
			if got.PassRetention != c.pass || got.AuditRetention != wantAudit || p.AuditRetention != wantAudit {
				t.Errorf("set %v/%v, read back %v/%v (argument %v)", c.pass, c.audit, got.PassRetention, got.AuditRetention, p.AuditRetention)
			}
		}
	})
	t.Run("ZeroIsDefault", func(t *testing.T) {
		db := MustOpenDB(t)
		MustSetup(t, db)
		p := store.DefaultPolicy()
		p.PassRetention, p.AuditRetention = 5*day, 50*day
		if err := db.ChangePolicy(t.Context(), &p, "admin"); err != nil {
			t.Fatal(err)
		}
		p.PassRetention, p.AuditRetention = 0, 0
		if err := db.ChangePolicy(t.Context(), &p, "admin"); err != nil {
			t.Fatal(err)
		}
		got, _ := db.Policy(t.Context())
		if got.PassRetention != store.DefaultPassRetention || got.AuditRetention != store.DefaultAuditRetention ||
			p.PassRetention != store.DefaultPassRetention {
			t.Fatalf("zero saved as %v/%v, want the defaults", got.PassRetention, got.AuditRetention)
		}
	})
	t.Run("ErrInvalid", func(t *testing.T) {
		db := MustOpenDB(t)
		MustSetup(t, db)
		for _, c := range []struct {
			pass, audit time.Duration
			want        string
		}{
			{day - time.Millisecond, 0, "pass retention"},
			{-day, 0, "pass retention"},
			{3651 * day, 0, "pass retention"},
			{0, 30*day - time.Millisecond, "audit retention"},
			{0, -30 * day, "audit retention"},
			{0, 3651 * day, "audit retention"},
		} {
			p := store.DefaultPolicy()
			p.PassRetention, p.AuditRetention = c.pass, c.audit
			err := db.ChangePolicy(t.Context(), &p, "admin")
			if !errors.Is(err, store.ErrInvalid) || !strings.Contains(err.Error(), c.want) {
				t.Errorf("%v/%v: err = %v, want ErrInvalid about %s", c.pass, c.audit, err, c.want)
			}
		}
		if got, _ := db.Policy(t.Context()); got.UpdatedBy != "setup" {
			t.Fatalf("a refused policy was stored: %+v", got)
		}
	})
	t.Run("Audited", func(t *testing.T) {
		db := MustOpenDB(t)
		MustSetup(t, db)
		p, _ := db.Policy(t.Context())
		p.AuditRetention = 60 * day
		if err := db.ChangePolicy(t.Context(), p, "admin"); err != nil {
			t.Fatal(err)
		}
		recs := purgeRecords(t, db, store.AuditPolicyChanged)
		if len(recs) != 1 {
			t.Fatalf("%d policy records, want 1", len(recs))
		}
		var d struct{ Old, New map[string]any }
		if err := json.Unmarshal(recs[0].Detail, &d); err != nil {
			t.Fatal(err)
		}
		if d.Old["audit_retention"] != "8760h0m0s" || d.New["audit_retention"] != "1440h0m0s" {
			t.Fatalf("policy record %s", recs[0].Detail)
		}
	})
}

// purgeRecords returns the audit records with action.
func purgeRecords(t *testing.T, db *store.DB, action string) []*store.AuditRecord {
	t.Helper()
	var out []*store.AuditRecord
	if err := db.FindAudit(t.Context(), store.AuditFilter{}, func(a *store.AuditRecord) error {
		if a.Action == action {
			c := *a
			out = append(out, &c)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// purgeBoundary is the expiry time TestDB_PurgePasses purges before.
var purgeBoundary = t0.Add(30 * 24 * time.Hour)

// passesAroundBoundary opens a district with twelve passes expiring
// around purgeBoundary.
func passesAroundBoundary(t *testing.T) *store.DB {
	boundary := purgeBoundary
	db := MustOpenDB(t)
	_, issuer := MustSetup(t, db)
	MustSavePerson(t, db, 1)
	// Ten passes expiring one hour apart, the last just before the
	// boundary; then one at the boundary and one just after it.
	expiries := []time.Time{}
	for i := range 10 {
		expiries = append(expiries, boundary.Add(-time.Duration(10-i)*time.Hour+time.Hour-time.Millisecond))
	}
	expiries = append(expiries, boundary, boundary.Add(time.Millisecond))
	for i, exp := range expiries {
		p := newPass(uint16(100-i), issuer) // IDs in the opposite order to expiry
		p.ExpiresAt = exp
		if err := db.CreatePass(t.Context(), p); err != nil {
			t.Fatal(err)
		}
	}
	return db
}

func TestDB_PurgePasses(t *testing.T) {
	t.Parallel()
	boundary := purgeBoundary
	setup := passesAroundBoundary
	t.Run("OK", testPurgePassesOK)
	t.Run("BatchOfOne", func(t *testing.T) {
		db := setup(t)
		if n, err := db.PurgePasses(t.Context(), boundary.Add(time.Millisecond), 1, "retention"); err != nil || n != 11 {
			t.Fatalf("purged %d: %v, want 11 (the one at the boundary too)", n, err)
		}
	})
	t.Run("Cancelled", func(t *testing.T) {
		db := setup(t)
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		n, err := db.PurgePasses(ctx, boundary, 3, "retention")
		if !errors.Is(err, context.Canceled) || n != 0 {
			t.Fatalf("cancelled purge: %d %v", n, err)
		}
		if _, err := db.VerifyAudit(t.Context()); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("ErrInvalid", func(t *testing.T) {
		db := setup(t)
		if _, err := db.PurgePasses(t.Context(), boundary, 3, ""); !errors.Is(err, store.ErrInvalid) {
			t.Fatalf("no actor: %v", err)
		}
	})
	t.Run("ExportSnapshot", func(t *testing.T) {
		// An export that took its snapshot before the purge still streams
		// every row it counted.
		db := setup(t)
		snap, err := db.BeginSnapshot(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		defer snap.Close()
		if n, err := db.PurgePasses(t.Context(), boundary, 3, "retention"); err != nil || n != 10 {
			t.Fatalf("purged %d: %v", n, err)
		}
		count, err := snap.CountPasses(t.Context(), store.ExportFilter{})
		if err != nil {
			t.Fatal(err)
		}
		seen := 0
		if err := snap.EachPass(t.Context(), store.ExportFilter{}, func(*store.IssuedPass) error { seen++; return nil }); err != nil {
			t.Fatal(err)
		}
		if count != 12 || seen != 12 {
			t.Fatalf("snapshot counted %d and streamed %d passes, want 12", count, seen)
		}
	})
}

func testPurgePassesOK(t *testing.T) {
	boundary := purgeBoundary
	db := passesAroundBoundary(t)
	// Batches of 3 take four transactions for the 10 expired passes.
	n, err := db.PurgePasses(t.Context(), boundary, 3, "retention")
	if err != nil || n != 10 {
		t.Fatalf("purged %d: %v, want 10", n, err)
	}
	for i := range 12 {
		_, err := db.FindPass(t.Context(), passID(uint16(100-i)))
		if kept := err == nil; kept != (i >= 10) {
			t.Errorf("pass %d (expiry #%d): kept=%v, err %v", 100-i, i, kept, err)
		}
	}
	recs := purgeRecords(t, db, store.AuditPurge)
	if len(recs) != 1 || recs[0].Actor != "retention" || recs[0].Subject != "passes" {
		t.Fatalf("purge records %+v", recs)
	}
	var d struct {
		Kind          string
		Rows          int64
		ExpiredBefore int64 `json:"expired_before_ms"`
	}
	if err := json.Unmarshal(recs[0].Detail, &d); err != nil || d.Kind != "passes" || d.Rows != 10 || d.ExpiredBefore != boundary.UnixMilli() {
		t.Fatalf("purge detail %s: %v", recs[0].Detail, err)
	}
	if _, err := db.VerifyAudit(t.Context()); err != nil {
		t.Fatalf("audit trail after the purge: %v", err)
	}
	// Nothing left to purge: nothing deleted, nothing audited.
	if n, err := db.PurgePasses(t.Context(), boundary, 3, "retention"); err != nil || n != 0 {
		t.Fatalf("second purge: %d %v", n, err)
	}
	if recs := purgeRecords(t, db, store.AuditPurge); len(recs) != 1 {
		t.Fatalf("an empty purge was audited: %d records", len(recs))
	}
	// The pass_issued records stay under the audit retention.
	if recs := purgeRecords(t, db, store.AuditPassIssued); len(recs) != 12 {
		t.Fatalf("%d pass_issued records, want 12", len(recs))
	}
	if _, err := db.VerifyAudit(t.Context()); err != nil {
		t.Fatalf("audit trail after the second purge: %v", err)
	}
}

// Retention's audit purge moves the base first; records after it stay
// protected by the audit_no_delete trigger.
func TestDB_PurgeAuditBase(t *testing.T) {
	t.Parallel()
	db := MustOpenDB(t)
	MustSetup(t, db)
	for i := range 20 {
		db.Now = func() time.Time { return t0.Add(time.Duration(i) * time.Hour) }
		if err := db.Audit(t.Context(), &store.AuditRecord{Actor: "a", Action: store.AuditLogin}); err != nil {
			t.Fatal(err)
		}
	}
	db.Now = func() time.Time { return t0.Add(24 * time.Hour) }
	n, err := db.PurgeAudit(t.Context(), t0.Add(10*time.Hour), "retention")
	if err != nil || n == 0 {
		t.Fatalf("PurgeAudit = %d, %v", n, err)
	}
	if _, err := db.VerifyAudit(t.Context()); err != nil {
		t.Fatalf("VerifyAudit after the purge: %v", err)
	}
	w, _ := db.Pools()
	var base, first int64
	if err := w.QueryRowContext(t.Context(), `SELECT seq FROM audit_base`).Scan(&base); err != nil {
		t.Fatal(err)
	}
	if err := w.QueryRowContext(t.Context(), `SELECT min(seq) FROM audit`).Scan(&first); err != nil || first != base+1 {
		t.Fatalf("first record %d after base %d: %v", first, base, err)
	}
	if _, err := w.ExecContext(t.Context(), `DELETE FROM audit WHERE seq = ?`, first); err == nil {
		t.Fatal("deleted the first record after the base")
	}
}
