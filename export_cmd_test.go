package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"passgate/store"
)

// runExport calls cmdExport as the CLI would.
func runExport(t *testing.T, vars map[string]string, args ...string) result {
	t.Helper()
	var out, errOut bytes.Buffer
	e := &env{getenv: func(k string) string { return vars[k] }, stdin: strings.NewReader(""), stdout: &out, stderr: &errOut}
	code := cmdExport(context.Background(), e, args)
	return result{code, out.String(), errOut.String()}
}

func TestCLI_Export(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{"PASSGATE_ADMIN_PASSWORD": "a long admin password", "PASSGATE_DISTRICT_NAME": "雁塔区"}
	// Set the district up through the CLI, then log scans directly.
	if r := runExport(t, env, "--data", dir, "--out", filepath.Join(dir, "empty.csv")); r.code != 0 {
		t.Fatalf("first export: exit %d: %s", r.code, r.stderr)
	}
	ctx := context.Background()
	db, err := store.Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	day := time.Date(2026, 11, 2, 9, 0, 0, 0, time.Local)
	for i, src := range []string{"东门", "=西门", "东门"} {
		if err := db.LogScan(ctx, &store.Scan{At: day.Add(time.Duration(i) * time.Minute), Source: src, Decision: "allow", Reason: "ok"}); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()

	out := filepath.Join(dir, "x.csv")
	r := runExport(t, env, "--data", dir, "--kind", "scans", "--format", "csv", "--from", "2026-11-01", "--to", "2026-12-01", "--source", "东门", "--out", out)
	if r.code != 0 {
		t.Fatalf("export: exit %d: %s", r.code, r.stderr)
	}
	// Every export is in the audit trail, with its filter and row count.
	adb, err := store.Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	var exports []*store.AuditRecord
	var order []string
	err = adb.FindAudit(ctx, store.AuditFilter{}, func(a *store.AuditRecord) error {
		switch a.Action {
		case store.AuditExport:
			c := *a // a is reused by FindAudit
			exports = append(exports, &c)
			order = append(order, "done")
		case store.AuditExportStarted:
			order = append(order, "started")
		}
		return nil
	})
	adb.Close()
	if err != nil {
		t.Fatal(err)
	}
	// Each export is on record when it starts, before its rows leave.
	if strings.Join(order, ",") != "started,done,started,done" {
		t.Fatalf("export records in order: %v", order)
	}
	if len(exports) != 2 || exports[1].Actor != cliActor() || !strings.HasPrefix(string(exports[1].Actor), "cli:") || exports[1].Subject != "scans" ||
		!strings.Contains(string(exports[1].Detail), `"rows":2`) || !strings.Contains(string(exports[1].Detail), `"source":"东门"`) {
		t.Fatalf("audited exports %+v", exports)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(b, []byte("\xef\xbb\xbf")) {
		t.Error("no BOM")
	}
	recs, err := csv.NewReader(bytes.NewReader(b[3:])).ReadAll()
	if err != nil || len(recs) != 3 || recs[1][1] != "东门" {
		t.Errorf("export read back %q, %v", recs, err)
	}
	if !strings.Contains(r.stderr, "exported 2 rows") {
		t.Errorf("stderr %q", r.stderr)
	}

	// stdout, JSON Lines.
	r = runExport(t, env, "--data", dir, "--format", "jsonl", "--from", "2026-11-01", "--to", "2026-12-01", "--out", "-")
	if r.code != 0 || strings.Count(r.stdout, "\n") != 3 || !strings.Contains(r.stdout, `"source":"=西门"`) {
		t.Errorf("jsonl to stdout: exit %d, %q, %s", r.code, r.stdout, r.stderr)
	}

	// The default name carries the district, kind and range.
	t.Chdir(t.TempDir())
	r = runExport(t, env, "--data", dir, "--format", "xlsx", "--from", "2026-11-01", "--to", "2026-12-01")
	if r.code != 0 {
		t.Fatalf("xlsx: exit %d: %s", r.code, r.stderr)
	}
	if _, err := os.Stat("雁塔区_scans_20261101-20261130.xlsx"); err != nil {
		t.Error(err)
	}
	if m, _ := filepath.Glob(".*.tmp"); len(m) != 0 {
		t.Errorf("temporary files left: %v", m)
	}
}

func TestCLI_ExportBadInput(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{"PASSGATE_ADMIN_PASSWORD": "a long admin password"}
	base := []string{"--data", dir, "--out", filepath.Join(dir, "out")}
	for name, args := range map[string][]string{
		"bad date":      {"--from", "2026-02-30", "--to", "2026-03-01"},
		"bad time":      {"--from", "yesterday"},
		"reversed":      {"--from", "2026-12-01", "--to", "2026-11-01"},
		"absurd window": {"--from", "2020-01-01", "--to", "2026-01-01"},
		"unknown kind":  {"--kind", "people", "--from", "2026-11-01", "--to", "2026-12-01"},
		"unknown fmt":   {"--format", "xls", "--from", "2026-11-01", "--to", "2026-12-01"},
		"bad decision":  {"--decision", "maybe", "--from", "2026-11-01", "--to", "2026-12-01"},
		"source filter": {"--kind", "passes", "--source", "x", "--from", "2026-11-01", "--to", "2026-12-01"},
		"extra arg":     {"--from", "2026-11-01", "--to", "2026-12-01", "extra"},
	} {
		r := runExport(t, env, append(append([]string{}, base...), args...)...)
		lines := strings.Count(strings.TrimSpace(r.stderr), "\n") + 1
		if r.code != exitError || lines != 1 || !strings.HasPrefix(r.stderr, "passgate export: ") {
			t.Errorf("%s: exit %d, stderr %q; want exit 2 and one line", name, r.code, r.stderr)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, store.FileName)); err == nil {
		t.Error("a rejected export opened the database")
	}
}

// TestCLI_ExportAudit exports the audit trail filtered by action: the
// file holds the earlier exports' records, and the audit export is
// itself recorded.
func TestCLI_ExportAudit(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{"PASSGATE_ADMIN_PASSWORD": "a long admin password", "PASSGATE_DISTRICT_NAME": "雁塔区"}
	for i := range 2 {
		if r := runExport(t, env, "--data", dir, "--out", filepath.Join(dir, "scans.csv")); r.code != 0 {
			t.Fatalf("export %d: exit %d: %s", i, r.code, r.stderr)
		}
	}
	out := filepath.Join(dir, "audit.csv")
	if r := runExport(t, env, "--data", dir, "--kind", "audit", "--reason", "export", "--out", out); r.code != 0 {
		t.Fatalf("audit export: exit %d: %s", r.code, r.stderr)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(bytes.NewReader(bytes.TrimPrefix(b, []byte("\xef\xbb\xbf")))).ReadAll()
	if err != nil || len(recs) != 3 || strings.Join(recs[0], ",") != "seq,time,actor,action,subject,detail,hash,appliance" ||
		recs[1][3] != "export" || recs[2][4] != "scans" || len(recs[2][6]) != 64 {
		t.Fatalf("audit CSV %q, %v", recs, err)
	}
	db, err := store.Open(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var last store.AuditRecord
	if err := db.FindAudit(context.Background(), store.AuditFilter{Last: 1}, func(a *store.AuditRecord) error { last = *a; return nil }); err != nil {
		t.Fatal(err)
	}
	if last.Action != store.AuditExport || last.Subject != "audit" || !strings.Contains(string(last.Detail), `"rows":2`) {
		t.Errorf("last audit record %+v %s", last, last.Detail)
	}
	if r := runExport(t, env, "--data", dir, "--kind", "audit", "--reason", "nonsense"); r.code != 2 || !strings.Contains(r.stderr, "unknown audit action") {
		t.Errorf("bad action: exit %d: %s", r.code, r.stderr)
	}
}
