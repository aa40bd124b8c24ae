package main

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"passgate/district"
	"passgate/internal/utctest"
	"passgate/store"
)

// TestMain runs the package's tests as on a machine set to UTC,
// whatever this machine's zone, where "local midnight" is 08:00 in the
// district (utctest: a child of the test binary with TZ=UTC, as the zone
// must not be written while the city cluster's servers run).
func TestMain(m *testing.M) {
	if code, ran := utctest.Run(); ran {
		os.Exit(code)
	}
	os.Exit(m.Run())
}

// onUTCMachine checks that the test runs as on a machine set to UTC.
func onUTCMachine(t *testing.T) {
	t.Helper()
	utctest.Require(t)
}

// On a machine set to UTC, --from 2026-12-04 still means midnight in
// the district (Asia/Shanghai): a scan at 2026-12-03T16:30Z (00:30 there)
// is in, one at 15:30Z (23:30 the day before) is out, in exports and
// traces alike; the times in the file carry the district's offset.
func TestCLI_DatesInDistrictZone(t *testing.T) {
	onUTCMachine(t)
	dir := t.TempDir()
	env := map[string]string{"PASSGATE_ADMIN_PASSWORD": "a long admin password"}
	const id = "11010519491231002X"
	if r := runCLI(t, env, "", "policy", "--data", dir); r.code != 0 {
		t.Fatalf("setup: exit %d: %s", r.code, r.stderr)
	}
	ctx := context.Background()
	db, err := store.Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	person, err := district.SubjectOf(ctx, db, id)
	if err != nil {
		t.Fatal(err)
	}
	in := time.Date(2026, 12, 3, 16, 30, 0, 0, time.UTC)
	out := time.Date(2026, 12, 3, 15, 30, 0, 0, time.UTC)
	for _, at := range []time.Time{in, out} {
		if err := db.LogScan(ctx, &store.Scan{At: at, Source: "东门", Decision: "allow", Reason: "ok", Subject: person}); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()

	r := runCLI(t, env, "", "export", "--data", dir, "--kind", "scans", "--format", "jsonl", "--from", "2026-12-04", "--to", "2026-12-05", "--out", "-")
	if r.code != 0 {
		t.Fatalf("export: exit %d: %s", r.code, r.stderr)
	}
	if strings.Count(r.stdout, "\n") != 1 || !strings.Contains(r.stdout, "2026-12-04T00:30:00.000+08:00") {
		t.Fatalf("export from 2026-12-04 wrote %q, want only the scan at 00:30+08:00", r.stdout)
	}
	r = runCLI(t, env, "", "trace", "--data", dir, "--id", id, "--from", "2026-12-04", "--to", "2026-12-05", "--format", "jsonl")
	if r.code != 0 || !strings.Contains(r.stderr, "1 checks") || !strings.Contains(r.stdout, "2026-12-04T00:30:00.000+08:00") {
		t.Fatalf("trace from 2026-12-04: exit %d, %q, %s", r.code, r.stdout, r.stderr)
	}

	// Another zone moves the day: in UTC, both scans fall on 2026-12-03.
	if r := runCLI(t, env, "", "policy", "--data", dir, "--time-zone", "UTC"); r.code != 0 || !strings.Contains(r.stdout, `"time_zone": "UTC"`) {
		t.Fatalf("policy --time-zone UTC: exit %d: %s %s", r.code, r.stdout, r.stderr)
	}
	r = runCLI(t, env, "", "export", "--data", dir, "--kind", "scans", "--format", "jsonl", "--from", "2026-12-03", "--to", "2026-12-04", "--out", "-")
	if r.code != 0 || strings.Count(r.stdout, "\n") != 2 {
		t.Fatalf("export of 2026-12-03 in UTC: exit %d, %q", r.code, r.stdout)
	}
}
