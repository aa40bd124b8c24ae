package metrics_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"passgate/check"
	"passgate/metrics"
	"passgate/scanner"
	"passgate/store"
)

func newMetrics(t testing.TB) (*metrics.Metrics, *store.DB) {
	t.Helper()
	db, err := store.Open(t.Context(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	m := metrics.New(metrics.Config{DB: db, Inputs: scanner.NewInputs(), Version: "v1.2.3"})
	db.ObserveScanCommits(m.ScanCommitted)
	return m, db
}

// TestMetrics_Lint: every series follows the Prometheus naming and help
// conventions (units in names, _total on counters).
func TestMetrics_Lint(t *testing.T) {
	t.Parallel()
	m, _ := newMetrics(t)
	m.ExportDone("scans", "csv", 3, nil)
	m.Purged("scans", 2)
	problems, err := testutil.GatherAndLint(m.Registry())
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		// The Go collector's own series are not ours to rename.
		if strings.HasPrefix(p.Metric, "passgate_") {
			t.Errorf("%s: %s", p.Metric, p.Text)
		}
	}
}

func TestMetrics_Counters(t *testing.T) {
	t.Parallel()
	m, _ := newMetrics(t)
	m.CheckDone(&check.Decision{Decision: check.Allow, Reason: check.ReasonOK}, time.Millisecond, nil)
	m.CheckDone(&check.Decision{Decision: check.Deny, Reason: check.ReasonExpired}, time.Millisecond, nil)
	m.CheckDone(&check.Decision{Decision: check.Deny, Reason: check.ReasonExpired}, time.Millisecond, nil)
	// A reason the table does not know is still counted.
	m.CheckDone(&check.Decision{Decision: check.Deny, Reason: "brand_new"}, time.Millisecond, nil)
	m.CheckDone(nil, time.Millisecond, errors.New("disk full"))
	m.ExportDone("passes", "xlsx", 10, nil)
	m.ExportDone("passes", "xlsx", 4, context.Canceled)
	m.ExportDone("passes", "xlsx", 0, errors.New("boom"))
	m.Purged("scans", 5)
	m.Purged("scans", 0)

	want := `
# HELP passgate_check_errors_total Checks that failed and were not logged (the gate showed an error).
# TYPE passgate_check_errors_total counter
passgate_check_errors_total 1
# HELP passgate_export_rows_total Rows written by completed exports, by kind.
# TYPE passgate_export_rows_total counter
passgate_export_rows_total{kind="passes"} 10
# HELP passgate_exports_total Exports run from the admin pages, by kind, format and result (done, cancelled, failed).
# TYPE passgate_exports_total counter
passgate_exports_total{format="xlsx",kind="passes",result="cancelled"} 1
passgate_exports_total{format="xlsx",kind="passes",result="done"} 1
passgate_exports_total{format="xlsx",kind="passes",result="failed"} 1
# HELP passgate_retention_purged_rows_total Rows deleted by retention purges, by what was purged.
# TYPE passgate_retention_purged_rows_total counter
passgate_retention_purged_rows_total{kind="scans"} 5
`
	if err := testutil.GatherAndCompare(m.Registry(), strings.NewReader(want),
		"passgate_check_errors_total", "passgate_export_rows_total", "passgate_exports_total", "passgate_retention_purged_rows_total"); err != nil {
		t.Error(err)
	}
	fams, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, f := range fams {
		switch f.GetName() {
		case "passgate_checks_total":
			for _, s := range f.GetMetric() {
				key := ""
				for _, l := range s.GetLabel() {
					key += l.GetValue() + "/"
				}
				got[key] = s.GetCounter().GetValue()
			}
		case "passgate_check_duration_seconds":
			if n := f.GetMetric()[0].GetHistogram().GetSampleCount(); n != 4 {
				t.Errorf("check_duration_seconds counted %d, want the 4 logged checks", n)
			}
		}
	}
	for key, want := range map[string]float64{"allow/ok/": 1, "deny/expired/": 2, "deny/brand_new/": 1, "deny/revoked/": 0} {
		if got[key] != want {
			t.Errorf("checks_total{%s} = %v, want %v", key, got[key], want)
		}
	}
	if len(got) != len(check.Reasons)+1 {
		t.Errorf("%d checks_total series, want one per reason plus the unknown one: %v", len(got), got)
	}
}

// TestMetrics_NilIgnores: code that runs without metrics (the CLI, tests)
// calls the same methods on a nil *Metrics.
func TestMetrics_NilIgnores(t *testing.T) {
	t.Parallel()
	var m *metrics.Metrics
	m.CheckDone(&check.Decision{Decision: check.Allow, Reason: check.ReasonOK}, time.Millisecond, nil)
	m.ExportDone("scans", "csv", 1, nil)
	m.Purged("scans", 1)
}

// TestMetrics_Register: later parts add collectors and scrape-time
// readings; a name taken twice is an error, not a panic.
func TestMetrics_Register(t *testing.T) {
	t.Parallel()
	m, _ := newMetrics(t)
	backlog := 7.0
	if err := m.GaugeFunc("sync_outbox_backlog", "Scans waiting to be sent to the district.", func() float64 { return backlog }); err != nil {
		t.Fatal(err)
	}
	if err := m.CounterFunc("sync_runs_total", "District syncs run.", func() float64 { return 3 }); err != nil {
		t.Fatal(err)
	}
	if err := m.GaugeFunc("sync_outbox_backlog", "again", func() float64 { return 0 }); err == nil {
		t.Error("a second gauge of the same name was registered")
	}
	c := prometheus.NewGauge(prometheus.GaugeOpts{Name: "passgate_sync_list_age_seconds", Help: "Age of the revocation list."})
	if err := m.Register(c); err != nil {
		t.Fatal(err)
	}
	c.Set(42)
	backlog = 9
	if n := testutil.CollectAndCount(m.Registry(), "passgate_sync_outbox_backlog", "passgate_sync_runs_total", "passgate_sync_list_age_seconds"); n != 3 {
		t.Fatalf("%d registered series gathered, want 3", n)
	}
	want := `
# HELP passgate_sync_outbox_backlog Scans waiting to be sent to the district.
# TYPE passgate_sync_outbox_backlog gauge
passgate_sync_outbox_backlog 9
`
	if err := testutil.GatherAndCompare(m.Registry(), strings.NewReader(want), "passgate_sync_outbox_backlog"); err != nil {
		t.Error(err)
	}
}

// BenchmarkCheckDone is what metrics add to every check: a map lookup,
// a counter add and a histogram observation.
func BenchmarkCheckDone(b *testing.B) {
	m, _ := newMetrics(b)
	d := &check.Decision{Decision: check.Deny, Reason: check.ReasonExpired}
	b.ReportAllocs()
	for b.Loop() {
		m.CheckDone(d, 80*time.Microsecond, nil)
	}
}

// TestMetrics_NewOnlyReadsTheStore: making a Metrics for a database
// (a second handler, a test) does not take its scan log reports away
// from the one the appliance wired to it.
func TestMetrics_NewOnlyReadsTheStore(t *testing.T) {
	wired, db := newMetrics(t)
	_ = metrics.New(metrics.Config{DB: db})
	if err := db.LogScan(context.Background(), &store.Scan{Source: "test", Decision: "deny", Reason: "malformed"}); err != nil {
		t.Fatal(err)
	}
	fams, err := wired.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	var commits uint64
	for _, f := range fams {
		if f.GetName() == "passgate_scan_commit_batch_size" {
			commits = f.GetMetric()[0].GetHistogram().GetSampleCount()
		}
	}
	if commits != 1 {
		t.Fatalf("the wired metrics saw %d group commits, want 1", commits)
	}
}
