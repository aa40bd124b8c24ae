package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A backup taken with the CLI restores into a working appliance that
// still knows the resident and the pass issued before it.
func TestCLI_Backup(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{"PASSGATE_ADMIN_PASSWORD": "a long admin password"}
	r := runCLI(t, env, "", "issue", "--data", dir, "--name", "张三明", "--id", "610113199001011230", "--doses", "2")
	if r.code != 0 {
		t.Fatalf("issue: exit %d: %s", r.code, r.stderr)
	}
	passText := strings.TrimSpace(r.stdout)
	restored := t.TempDir()
	out := filepath.Join(restored, "passgate.db")
	if r := runCLI(t, env, "", "backup", "--data", dir, "--out", out); r.code != 0 || !strings.Contains(r.stdout, "backup written") {
		t.Fatalf("backup: exit %d: %q %q", r.code, r.stdout, r.stderr)
	}
	if r := runCLI(t, env, "", "backup", "--data", dir, "--out", out); r.code == 0 || !strings.Contains(r.stderr, "exists") {
		t.Fatalf("second backup over the first: exit %d: %q", r.code, r.stderr)
	}
	if r := runCLI(t, env, "", "backup", "--data", dir); r.code != exitError {
		t.Fatalf("backup without --out: exit %d", r.code)
	}
	if r := runCLI(t, env, "", "backup", "--data", t.TempDir(), "--out", filepath.Join(t.TempDir(), "x.db")); r.code == 0 || !strings.Contains(r.stderr, "no passgate database") {
		t.Fatalf("backup of an empty directory: exit %d: %q", r.code, r.stderr)
	}
	if _, err := os.Stat(out); err != nil {
		t.Fatal(err)
	}
	// The restored copy knows the issuer and the resident: it decides on
	// the pass issued before the backup as the original does (the default
	// policy wants a test this resident lacks).
	want := runCLI(t, env, passText, "check", "--data", dir, "-")
	got := runCLI(t, env, passText, "check", "--data", restored, "-")
	if !strings.Contains(want.stdout, `"reason":"test_missing"`) || got.code != want.code ||
		!strings.Contains(got.stdout, `"reason":"test_missing"`) || !strings.Contains(got.stdout, `"name":"张*明"`) {
		t.Fatalf("check on the restored copy: exit %d %q; original: exit %d %q", got.code, got.stdout, want.code, want.stdout)
	}
	if r := runCLI(t, env, "", "audit", "verify", "--data", restored); r.code != 0 {
		t.Fatalf("audit verify on the restored copy: exit %d: %q", r.code, r.stdout)
	}
}
