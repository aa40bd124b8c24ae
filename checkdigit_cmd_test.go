package main

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"passgate/store"
)

// TestCLI_CheckDigit: a mainland ID number with a wrong GB 11643 check
// digit is refused by issue, status and trace alike, each saying how to
// accept a legacy one; accepted with --allow-bad-check-digit, the person
// can be issued a pass, given a status and traced.
func TestCLI_CheckDigit(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{"PASSGATE_ADMIN_PASSWORD": "a long admin password"}
	const bad = "610113199001011234" // the right check digit is 0
	// Dates are read in the district's zone, not this machine's: from the
	// day before to the day after there, whatever the hour here.
	zone, err := time.LoadLocation(store.DefaultTimeZone)
	if err != nil {
		t.Fatal(err)
	}
	day := time.Now().In(zone).AddDate(0, 0, -1).Format("2006-01-02")
	tomorrow := time.Now().In(zone).AddDate(0, 0, 1).Format("2006-01-02")
	tested := time.Now().Add(-2 * time.Hour).Format(time.RFC3339)

	refused := func(what string, r result) {
		t.Helper()
		if r.code != exitError || r.stdout != "" {
			t.Fatalf("%s: exit %d, stdout %q; want refused", what, r.code, r.stdout)
		}
		// One line says it all (the first run also announces the new
		// district before it).
		lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
		if last := lines[len(lines)-1]; !strings.Contains(last, "check digit") || !strings.Contains(last, "--allow-bad-check-digit") {
			t.Fatalf("%s: stderr %q", what, r.stderr)
		}
	}
	refused("issue", runCLI(t, env, "", "issue", "--data", dir, "--name", "张三明", "--id", bad, "--tested-at", tested))

	r := runCLI(t, env, "", "issue", "--data", dir, "--name", "张三明", "--id", bad, "--tested-at", tested, "--allow-bad-check-digit")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "PG1:") {
		t.Fatalf("issue with the flag: exit %d: %s", r.code, r.stderr)
	}
	if strings.Contains(r.stderr, "refused") {
		t.Fatalf("a tested resident's pass is warned about: %q", r.stderr)
	}
	if c := runCLI(t, env, "", "check", "--data", dir, strings.TrimSpace(r.stdout)); c.code != 0 {
		t.Fatalf("check: exit %d: %s %s", c.code, c.stdout, c.stderr)
	}

	refused("status", runCLI(t, env, "", "status", "--data", dir, "--id", bad, "--color", "yellow", "--reason", "contact"))
	if r := runCLI(t, env, "", "status", "--data", dir, "--id", bad, "--color", "yellow", "--reason", "contact", "--allow-bad-check-digit"); r.code != 0 ||
		r.stdout != "status changed from green to yellow; earlier passes are void\n" {
		t.Fatalf("status with the flag: exit %d: %q %s", r.code, r.stdout, r.stderr)
	}
	// The same colour again voids the passes (a lost card) and says just that.
	if r := runCLI(t, env, "", "status", "--data", dir, "--id", bad, "--color", "yellow", "--reason", "card lost", "--allow-bad-check-digit"); r.code != 0 ||
		r.stdout != "status stays yellow; earlier passes are void\n" {
		t.Fatalf("same colour: exit %d: %q %s", r.code, r.stdout, r.stderr)
	}

	out := filepath.Join(dir, "trace.csv")
	refused("trace", runCLI(t, env, "", "trace", "--data", dir, "--id", bad, "--from", day, "--to", tomorrow, "--out", out))
	r = runCLI(t, env, "", "trace", "--data", dir, "--id", bad, "--from", day, "--to", tomorrow, "--out", out, "--allow-bad-check-digit")
	if r.code != 0 || !strings.Contains(r.stderr, "1 checks") {
		t.Fatalf("trace with the flag: exit %d: %s", r.code, r.stderr)
	}
}

// TestCLI_IssueWarnsOfRefusal: under the default policy (a negative test
// within 72 h) a pass for a resident with no test is issued, and stderr
// says plainly that the gate here will refuse it and why.
func TestCLI_IssueWarnsOfRefusal(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{"PASSGATE_ADMIN_PASSWORD": "a long admin password"}
	r := runCLI(t, env, "", "issue", "--data", dir, "--name", "李四", "--id", "11010519491231002X")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "PG1:") {
		t.Fatalf("issue: exit %d: %s", r.code, r.stderr)
	}
	for _, want := range []string{"此码在本场所将被拒绝：无核酸检测记录", "This pass will be refused here: No negative test", "(test_missing)", "--tested-at"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr lacks %q: %q", want, r.stderr)
		}
	}
	if c := runCLI(t, env, "", "check", "--data", dir, strings.TrimSpace(r.stdout)); c.code != exitDeny || !strings.Contains(c.stdout, `"test_missing"`) {
		t.Fatalf("the gate answered otherwise than warned: exit %d %s", c.code, c.stdout)
	}
	old := time.Now().Add(-80 * time.Hour).Format(time.RFC3339)
	r = runCLI(t, env, "", "issue", "--data", dir, "--id", "11010519491231002X", "--tested-at", old)
	if r.code != 0 || !strings.Contains(r.stderr, "(test_too_old)") {
		t.Fatalf("old test: exit %d: %q", r.code, r.stderr)
	}
}
