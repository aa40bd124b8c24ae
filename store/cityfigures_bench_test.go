package store_test

import (
	"os"
	"sort"
	"strconv"
	"testing"
	"time"

	"passgate/store"
)

// TestHubFiguresMillion measures what one city dashboard request costs a
// busy district hub: a million scans of its appliances over the last
// week, 4,000 appliances and 100,000 revocations. Run with
//
//	PASSGATE_FIGURES_BENCH=1 go test -run TestHubFiguresMillion -v ./store
//
// It reports the median and worst time of HubFigures over 200 calls.
func TestHubFiguresMillion(t *testing.T) {
	if os.Getenv("PASSGATE_FIGURES_BENCH") != "1" {
		t.Skip("set PASSGATE_FIGURES_BENCH=1 to read the figures of a hub with a million scans")
	}
	ctx := t.Context()
	dir := t.TempDir()
	db, err := store.Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	MustSetup(t, db)
	path := db.Path()
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	start := time.Now()
	fillOld(t, path, 4000, now, `INSERT INTO appliances (name, may_issue, created_ms, enrolled_ms, last_contact_ms) VALUES (?, 0, ?, ?, ?)`,
		func(i int, at int64, _, _, _ []byte) []any {
			return []any{"gate-" + strconv.Itoa(i), at, at, now.UnixMilli() - int64(i%600)*1000}
		})
	fillOld(t, path, 1_000_000, now, `INSERT INTO district_scans (appliance_id, seq, at_ms, source, decision, reason, repeat, pass_id, subject, kid, received_ms)
		VALUES (?, ?, ?, ?, ?, ?, 0, ?, ?, ?, ?)`,
		func(i int, at int64, pid, subj, kid []byte) []any {
			dec, reason := "allow", "ok"
			if i%9 == 0 {
				dec, reason = "deny", "revoked"
			}
			return []any{1 + i%4000, i, at, "gate-" + strconv.Itoa(i%4), dec, reason, pid, subj, kid, at}
		})
	fillOld(t, path, 100_000, now, `INSERT INTO revocations (kind, target, reason, at_ms) VALUES (2, ?, 'test', ?)`,
		func(_ int, at int64, pid, _, _ []byte) []any { return []any{append([]byte(nil), pid...), at} })
	t.Logf("filled in %v", time.Since(start).Round(time.Millisecond))

	db, err = store.Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	day := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, now.Location())
	var took []time.Duration
	var f *store.HubFigures
	for range 200 {
		s := time.Now()
		if f, err = db.HubFigures(ctx, now, day); err != nil {
			t.Fatal(err)
		}
		took = append(took, time.Since(s))
	}
	sort.Slice(took, func(i, j int) bool { return took[i] < took[j] })
	if f.Appliances != 4000 || f.Revocations != 100_000 || f.ScansHour == 0 {
		t.Fatalf("figures %+v", f)
	}
	t.Logf("RESULT hub figures: median %v, worst %v over %d calls (1M scans, 4,000 appliances, 100,000 revocations); today %d scans, last hour %d",
		took[len(took)/2], took[len(took)-1], len(took), f.AllowToday+f.DenyToday, f.ScansHour)
}
