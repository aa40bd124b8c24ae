package store_test

import (
	"fmt"
	"regexp"
	"slices"
	"testing"
	"time"

	"passgate/store"
)

// TestDB_Dashboard logs a known day on an appliance and at its hub and
// checks each chart's numbers against counts made here.
func TestDB_Dashboard(t *testing.T) {
	db := MustOpenDB(t)
	day := time.Date(2026, 12, 4, 0, 0, 0, 0, time.UTC)
	type scan struct {
		min              int // minutes after midnight
		source, decision string
		reason           string
	}
	scans := []scan{
		{-1, "gate-1", "allow", "ok"}, // the day before: not counted
		{0, "gate-1", "allow", "ok"},
		{9, "gate-1", "deny", "expired"},
		{10, "gate-2", "allow", "ok"},
		{25, "gate-2", "deny", "status_red"},
		{25, "gate-2", "deny", "expired"},
		{61, "gate-1", "deny", "expired"},
		{24 * 60, "gate-1", "allow", "ok"}, // the next day: not counted
	}
	for _, s := range scans {
		err := db.LogScan(ctxb(), &store.Scan{At: day.Add(time.Duration(s.min) * time.Minute), Source: s.source, Decision: s.decision, Reason: s.reason})
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := db.SetEntrance(ctxb(), "gate-2", "东门", "admin"); err != nil {
		t.Fatal(err)
	}
	// Two scans an enrolled appliance sent to this hub.
	for _, q := range []string{
		`INSERT INTO appliances (id, name, may_issue, created_ms) VALUES (7, 'north', 0, 0)`,
		fmt.Sprintf(`INSERT INTO district_scans (appliance_id, seq, at_ms, source, decision, reason, repeat, received_ms)
			VALUES (7, 1, %d, 'gate-1', 'deny', 'revoked', 0, 0), (7, 2, %d, 'gate-1', 'allow', 'ok', 0, 0)`,
			day.Add(12*time.Minute).UnixMilli(), day.Add(12*time.Minute).UnixMilli()),
	} {
		if err := db.ExecWrite(ctxb(), q); err != nil {
			t.Fatal(err)
		}
	}
	to := day.Add(24 * time.Hour)

	buckets, err := db.ChecksPerBucket(ctxb(), day, to, 10*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	want := make([]store.DecisionCount, 144)
	want[0] = store.DecisionCount{Allow: 1, Deny: 1}
	want[1] = store.DecisionCount{Allow: 2, Deny: 1}
	want[2] = store.DecisionCount{Deny: 2}
	want[6] = store.DecisionCount{Deny: 1}
	if !slices.Equal(buckets, want) {
		t.Errorf("buckets = %v, want %v", buckets, want)
	}

	reasons, err := db.DenyReasons(ctxb(), day, to)
	if err != nil {
		t.Fatal(err)
	}
	wantReasons := []store.ReasonCount{{"expired", 3}, {"revoked", 1}, {"status_red", 1}}
	if !slices.Equal(reasons, wantReasons) {
		t.Errorf("reasons = %v, want %v", reasons, wantReasons)
	}

	sources, err := db.ChecksPerSource(ctxb(), day, to)
	if err != nil {
		t.Fatal(err)
	}
	wantSources := []store.SourceCount{
		{Appliance: "", Source: "gate-1", DecisionCount: store.DecisionCount{Allow: 1, Deny: 2}},
		{Appliance: "", Source: "gate-2", DecisionCount: store.DecisionCount{Allow: 1, Deny: 2}},
		{Appliance: "north", Source: "gate-1", DecisionCount: store.DecisionCount{Allow: 1, Deny: 1}},
	}
	if !slices.Equal(sources, wantSources) {
		t.Errorf("sources = %v, want %v", sources, wantSources)
	}

	places, err := db.BusiestPlaces(ctxb(), day, to, 2)
	if err != nil {
		t.Fatal(err)
	}
	wantPlaces := []store.PlaceCount{{"", "gate-1", 3}, {"", "东门", 3}}
	if !slices.Equal(places, wantPlaces) {
		t.Errorf("places = %v, want %v", places, wantPlaces)
	}

	t.Run("ErrInvalid", func(t *testing.T) {
		for _, c := range []struct {
			from, to time.Time
			step     time.Duration
		}{{day, day, time.Minute}, {to, day, time.Minute}, {day, to, 0}, {day, to, time.Millisecond}} {
			if _, err := db.ChecksPerBucket(ctxb(), c.from, c.to, c.step); err == nil {
				t.Errorf("ChecksPerBucket(%v, %v, %v): no error", c.from, c.to, c.step)
			}
		}
	})
}

// TestDB_DashboardPlans proves that every dashboard query reads the scan
// logs through their time index and never scans a whole table.
func TestDB_DashboardPlans(t *testing.T) {
	db := MustOpenDB(t)
	plans, err := db.DashboardPlans(ctxb())
	if err != nil {
		t.Fatal(err)
	}
	fullScan := regexp.MustCompile(`(?m)^SCAN (scans|district_scans)\b`)
	for _, name := range []string{"buckets", "reasons", "sources", "places"} {
		p := plans[name]
		for _, want := range []string{
			"SEARCH scans USING COVERING INDEX scans_at (at_ms>? AND at_ms<?)",
			"SEARCH district_scans USING COVERING INDEX district_scans_at (at_ms>? AND at_ms<?)",
		} {
			if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(want) + `$`).MatchString(p) {
				t.Errorf("%s: plan lacks %q:\n%s", name, want, p)
			}
		}
		if fullScan.MatchString(p) {
			t.Errorf("%s: plan scans a whole table:\n%s", name, p)
		}
	}
}
