package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"passgate/store"
)

// TestCLI_Bundle drives the by-file sync as an admin would: enrol an
// appliance offline, carry its bundle to the hub and the hub's answer
// back, and see replays and damaged files refused.
func TestCLI_Bundle(t *testing.T) {
	env := map[string]string{"PASSGATE_ADMIN_PASSWORD": "a long admin password"}
	hubDir, appDir, files := t.TempDir(), filepath.Join(t.TempDir(), "app"), t.TempDir()
	file := func(name string) string { return filepath.Join(files, name) }
	mustRun := func(args ...string) result {
		t.Helper()
		r := runCLI(t, env, "", args...)
		if r.code != 0 {
			t.Fatalf("%s: exit %d: %s%s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
		}
		return r
	}

	enrolByFiles(mustRun, hubDir, appDir, file("req"), file("resp"))

	// Checks at the appliance (logged with exit 1: denied).
	for range 3 {
		if r := runCLI(t, env, "", "check", "--data", appDir, "not a pass"); r.code != exitDeny {
			t.Fatalf("check: exit %d: %s", r.code, r.stderr)
		}
	}

	r := mustRun("bundle", "export", "--data", appDir, "--out", file("up1"))
	if !strings.Contains(r.stdout, "bundle 1 of \"gate-a\" for the hub") {
		t.Fatalf("export: %s", r.stdout)
	}
	if st, err := os.Stat(file("up1")); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("bundle file: %v %v", st, err)
	}
	r = mustRun("bundle", "import", "--data", hubDir, file("up1"))
	// Three scans and the appliance's audit records of its first admin
	// and its enrolment.
	if !strings.Contains(r.stdout, "5 records stored, 0 already held") {
		t.Fatalf("import at the hub: %s", r.stdout)
	}
	r = runCLI(t, env, "", "bundle", "import", "--data", hubDir, file("up1"))
	if r.code != exitError || !strings.Contains(r.stderr, "already imported") || !strings.Contains(r.stderr, "nothing changed") {
		t.Fatalf("second import: exit %d: %s", r.code, r.stderr)
	}
	// Truncated in the carrying: refused as such.
	raw, err := os.ReadFile(file("up1"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file("cut"), raw[:len(raw)-10], 0o600); err != nil {
		t.Fatal(err)
	}
	r = runCLI(t, env, "", "bundle", "import", "--data", hubDir, file("cut"))
	if r.code != exitError || !strings.Contains(r.stderr, "truncated") {
		t.Fatalf("truncated import: exit %d: %s", r.code, r.stderr)
	}

	// Back to the appliance.
	if r := runCLI(t, env, "", "bundle", "export", "--data", hubDir, "--out", file("down1")); r.code != exitError || !strings.Contains(r.stderr, "--for") {
		t.Fatalf("hub export without --for: exit %d: %s", r.code, r.stderr)
	}
	if r := runCLI(t, env, "", "bundle", "export", "--data", hubDir, "--for", "gate-z", "--out", file("down1")); r.code != exitError || !strings.Contains(r.stderr, "gate-z") {
		t.Fatalf("hub export for an unknown appliance: exit %d: %s", r.code, r.stderr)
	}
	if left, _ := filepath.Glob(filepath.Join(files, "*down1*")); len(left) > 0 {
		t.Fatalf("a failed export left files: %v", left)
	}
	mustRun("bundle", "export", "--data", hubDir, "--for", "gate-a", "--out", file("down1"))
	r = mustRun("bundle", "import", "--data", appDir, file("down1"))
	if !strings.Contains(r.stdout, "imported bundle 1 from the hub") {
		t.Fatalf("import at the appliance: %s", r.stdout)
	}
	r = runCLI(t, env, "", "bundle", "import", "--data", appDir, file("down1"))
	if r.code != exitError || !strings.Contains(r.stderr, "already imported") {
		t.Fatalf("second import at the appliance: exit %d: %s", r.code, r.stderr)
	}
	if r := runCLI(t, env, "", "bundle", "export", "--data", appDir, "--for", "gate-a", "--out", file("x")); r.code != exitError {
		t.Fatalf("appliance export with --for: exit %d", r.code)
	}
	if r := runCLI(t, env, "", "bundle", "import", "--data", t.TempDir(), file("down1")); r.code != exitError || !strings.Contains(r.stderr, "no passgate data") {
		t.Fatalf("import into an empty directory: exit %d: %s", r.code, r.stderr)
	}

	// The hub holds the three checks once; the appliance knows it.
	ctx := context.Background()
	db, err := store.Open(ctx, hubDir)
	if err != nil {
		t.Fatal(err)
	}
	held, _, err := db.DistrictScans(ctx, "gate-a", 0, 0)
	db.Close()
	if err != nil || len(held) != 3 {
		t.Fatalf("hub holds %d scans (%v), want 3", len(held), err)
	}
	app, err := store.Open(ctx, appDir)
	if err != nil {
		t.Fatal(err)
	}
	defer app.Close()
	if acked, _, err := app.ScansAcked(ctx); err != nil || acked != 3 {
		t.Fatalf("appliance: scans acknowledged %d (%v), want 3", acked, err)
	}
}

// enrolByFiles enrols the appliance in appDir as an office named gate-a
// with the hub in hubDir, offline, through the request and response
// files.
func enrolByFiles(mustRun func(...string) result, hubDir, appDir, req, resp string) {
	r := mustRun("hub", "add", "--data", hubDir, "--name", "gate-a", "--issuer")
	code := strings.TrimSpace(r.stdout)
	mustRun("enroll", "--data", appDir, "--code", code, "--request-out", req)
	mustRun("hub", "enroll", "--data", hubDir, "--request", req, "--response-out", resp)
	mustRun("enroll", "--data", appDir, "--response", resp)
}
