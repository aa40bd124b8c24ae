package store_test

import (
	"errors"
	"testing"
	"time"

	"passgate/pass"
	"passgate/store"
)

// A snapshot counts and iterates one state of the scan log: scans logged
// after it began are in neither, and the iteration yields exactly the
// counted rows, oldest first.
func TestSnapshotIsolation(t *testing.T) {
	t.Parallel()
	db := MustOpenDB(t)
	for i := range 10 {
		if err := db.LogScan(t.Context(), &store.Scan{At: ms(time.Duration(10-i) * time.Second), Source: "东门", Decision: "allow", Reason: "ok", PassID: passID(uint16(i + 1))}); err != nil {
			t.Fatal(err)
		}
	}
	snap, err := db.BeginSnapshot(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer snap.Close()
	for range 5 {
		if err := db.LogScan(t.Context(), &store.Scan{At: ms(time.Second), Source: "东门", Decision: "allow", Reason: "ok"}); err != nil {
			t.Fatal(err)
		}
	}
	f := store.ExportFilter{Since: t0, Until: t0.Add(time.Hour)}
	n, err := snap.CountScans(t.Context(), f)
	if err != nil || n != 10 {
		t.Fatalf("CountScans = %d, %v; want 10", n, err)
	}
	var got []time.Time
	if err := snap.EachScan(t.Context(), f, func(s *store.Scan) error {
		got = append(got, s.At)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(got) != 10 {
		t.Fatalf("EachScan visited %d scans, want 10", len(got))
	}
	for i := 1; i < len(got); i++ {
		if got[i].Before(got[i-1]) {
			t.Fatalf("not oldest first: %v", got)
		}
	}
	// Filters narrow both alike.
	f.Source, f.Decision, f.Reason = "东门", "deny", "ok"
	if n, err := snap.CountScans(t.Context(), f); err != nil || n != 0 {
		t.Errorf("filtered count %d, %v", n, err)
	}
}

func TestSnapshotKinds(t *testing.T) {
	t.Parallel()
	db := MustOpenDB(t)
	_, issuer := MustSetup(t, db)
	p := MustSavePerson(t, db, 1)
	if err := db.CreatePass(t.Context(), &store.IssuedPass{ID: passID(1), Subject: p.Subject, KID: issuer.KID, Kind: pass.Phone, Color: pass.Green,
		IssuedAt: t0, ExpiresAt: t0.Add(24 * time.Hour), Actor: "issuer1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.SetStatus(t.Context(), p.Subject, pass.Red, "密接", "admin"); err != nil {
		t.Fatal(err)
	}
	snap, err := db.BeginSnapshot(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer snap.Close()
	f := store.ExportFilter{Since: t0.Add(-time.Hour), Until: t0.Add(time.Hour)}
	var passes []store.IssuedPass
	if err := snap.EachPass(t.Context(), f, func(ip *store.IssuedPass) error { passes = append(passes, *ip); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(passes) != 1 || passes[0].ID != passID(1) || passes[0].KID != issuer.KID || passes[0].Actor != "issuer1" || passes[0].Kind != pass.Phone {
		t.Errorf("passes %+v", passes)
	}
	var changes []store.StatusChange
	if err := snap.EachStatusChange(t.Context(), f, func(c *store.StatusChange) error { changes = append(changes, *c); return nil }); err != nil {
		t.Fatal(err)
	}
	last := changes[len(changes)-1]
	if last.To != pass.Red || last.From != pass.Green || last.Reason != "密接" || last.Actor != "admin" {
		t.Errorf("status changes %+v", changes)
	}
	if n, err := snap.CountStatusChanges(t.Context(), f); err != nil || n != int64(len(changes)) {
		t.Errorf("CountStatusChanges = %d, %v; want %d", n, err, len(changes))
	}
	// A filter a table has no column for is refused.
	if _, err := snap.CountPasses(t.Context(), store.ExportFilter{Source: "x"}); !errors.Is(err, store.ErrInvalid) {
		t.Errorf("source filter on passes: %v", err)
	}
	if err := snap.EachStatusChange(t.Context(), store.ExportFilter{Decision: "allow"}, func(*store.StatusChange) error { return nil }); !errors.Is(err, store.ErrInvalid) {
		t.Errorf("decision filter on status changes: %v", err)
	}
}
