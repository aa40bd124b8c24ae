package store_test

import (
	"fmt"
	"regexp"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"passgate/pass"
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
		}{{day, day, time.Minute}, {to, day, time.Minute}, {day, to, 0}, {day, to, time.Millisecond}, {day, to, 7 * time.Minute},
			{day.Add(time.Minute), to, 10 * time.Minute}} {
			if _, err := db.ChecksPerBucket(ctxb(), c.from, c.to, c.step); err == nil {
				t.Errorf("ChecksPerBucket(%v, %v, %v): no error", c.from, c.to, c.step)
			}
		}
	})
}

// TestDB_PurgeScanCounts: purging the scans of past days purges their
// counts too, and keeps today's.
func TestDB_PurgeScanCounts(t *testing.T) {
	db := MustOpenDB(t)
	day := time.Date(2026, 12, 4, 0, 0, 0, 0, time.UTC)
	for _, at := range []time.Time{day.Add(-48 * time.Hour), day.Add(time.Hour)} {
		if err := db.LogScan(ctxb(), &store.Scan{At: at, Source: "gate-1", Decision: "allow", Reason: "ok"}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.PurgeScans(ctxb(), day.Add(-24*time.Hour), 100, "admin"); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		from time.Time
		want int
	}{{day.Add(-72 * time.Hour), 0}, {day, 1}} {
		sources, err := db.ChecksPerSource(ctxb(), c.from, c.from.Add(24*time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, s := range sources {
			n += int(s.Total())
		}
		if n != c.want {
			t.Errorf("checks counted from %s after the purge: %d, want %d", c.from, n, c.want)
		}
		buckets, err := db.ChecksPerBucket(ctxb(), c.from, c.from.Add(24*time.Hour), time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		n = 0
		for _, b := range buckets {
			n += int(b.Total())
		}
		if n != c.want {
			t.Errorf("checks per hour from %s after the purge: %d, want %d", c.from, n, c.want)
		}
	}
}

// TestDB_DashboardPlans proves that every dashboard query reads only the
// window's range of its counts' primary key, and never the scan logs.
func TestDB_DashboardPlans(t *testing.T) {
	db := MustOpenDB(t)
	plans, err := db.DashboardPlans(ctxb())
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{
		"buckets": "SEARCH scan_counts_time USING PRIMARY KEY (bucket_ms>? AND bucket_ms<?)",
		"reasons": "SEARCH scan_counts_time USING PRIMARY KEY (bucket_ms>? AND bucket_ms<?)",
		"sources": "SEARCH scan_counts_source USING PRIMARY KEY (bucket_ms>? AND bucket_ms<?)",
		"places":  "SEARCH c USING PRIMARY KEY (bucket_ms>? AND bucket_ms<?)",
	} {
		p := plans[name]
		if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(want) + `$`).MatchString(p) {
			t.Errorf("%s: plan lacks %q:\n%s", name, want, p)
		}
		if regexp.MustCompile(`\b(scans|district_scans)\b|SCAN scan_counts`).MatchString(p) {
			t.Errorf("%s: plan reads the scan log or all counts:\n%s", name, p)
		}
	}
}

// BenchmarkLogScanCounts measures what the dashboard's counts cost the
// check path: the group-commit writer with and without the triggers that
// keep them, on a log of 200,000 scans.
func BenchmarkLogScanCounts(b *testing.B) {
	for _, counted := range []bool{true, false} {
		b.Run(map[bool]string{true: "counted", false: "uncounted"}[counted], func(b *testing.B) {
			db := MustOpenDB(b)
			fillScans(b, db, 200_000, t0, 24*time.Hour, false)
			if !counted {
				for _, q := range []string{"DROP TRIGGER scans_count", "DROP TRIGGER district_scans_count"} {
					if err := db.ExecWrite(ctxb(), q); err != nil {
						b.Fatal(err)
					}
				}
			}
			var n atomic.Uint32
			b.SetParallelism(32)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					i := n.Add(1)
					s := &store.Scan{At: t0.Add(time.Duration(i) * time.Millisecond), Source: fmt.Sprintf("gate-%d", i%200), Decision: "allow", Reason: "ok",
						PassID: pass.ID{0xbb, byte(i >> 24), byte(i >> 16), byte(i >> 8), byte(i)}, Subject: pass.Subject{0x5c, byte(i >> 16), byte(i >> 8), byte(i)}, KID: kid(1)}
					if err := db.LogScan(ctxb(), s); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "scans/s")
		})
	}
}
