package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fingerprintIn finds the fingerprint `trust export` printed.
func fingerprintIn(t *testing.T, stderr string) string {
	t.Helper()
	_, fp, ok := strings.Cut(stderr, "fingerprint: ")
	if !ok {
		t.Fatalf("no fingerprint in %q", stderr)
	}
	fp, _, _ = strings.Cut(fp, "\n")
	return fp
}

// Two standalone districts: B trusts A's root only after the
// fingerprint, read out of band, matches; then B's gate allows A's pass.
func TestCLI_TrustExportImport(t *testing.T) {
	dirA, dirB := t.TempDir(), t.TempDir()
	env, check := twoDistricts(t, dirA, dirB)
	check("unknown_issuer")

	file := filepath.Join(t.TempDir(), "a.anchor")
	r := runCLI(t, env, "", "trust", "export", "--data", dirA, "--out", file)
	if r.code != 0 {
		t.Fatalf("export: %s", r.stderr)
	}
	fp := fingerprintIn(t, r.stderr)
	if b, _ := os.ReadFile(file); !strings.Contains(string(b), "passgate-trust-anchor 1\n") {
		t.Fatalf("file:\n%s", b)
	}
	// To standard output, the same content.
	if r := runCLI(t, env, "", "trust", "export", "--data", dirA); !strings.Contains(r.stdout, "fingerprint "+strings.ReplaceAll(fp, " ", "")) {
		t.Fatalf("export to stdout: %q", r.stdout)
	}

	// Refused: no fingerprint, a wrong one, a damaged file, B's own file.
	if r := runCLI(t, env, "", "trust", "import", "--data", dirB, file); r.code == 0 || !strings.Contains(r.stderr, "--fingerprint is required") {
		t.Fatalf("import without fingerprint: %d %s", r.code, r.stderr)
	}
	wrong := strings.Replace(fp, fp[:4], "0000", 1)
	if r := runCLI(t, env, "", "trust", "import", "--data", dirB, file, "--fingerprint", wrong); r.code == 0 || !strings.Contains(r.stderr, "does not match") {
		t.Fatalf("import with a wrong fingerprint: %d %s", r.code, r.stderr)
	}
	b, _ := os.ReadFile(file)
	damaged := filepath.Join(t.TempDir(), "damaged")
	os.WriteFile(damaged, []byte(strings.Replace(string(b), "\ndistrict ", "\ndistrict 9", 1)), 0o600)
	if r := runCLI(t, env, "", "trust", "import", "--data", dirB, damaged, "--fingerprint", fp); r.code == 0 {
		t.Fatal("damaged file imported")
	}
	own := filepath.Join(t.TempDir(), "b.anchor")
	rb := runCLI(t, env, "", "trust", "export", "--data", dirB, "--out", own)
	if r := runCLI(t, env, "", "trust", "import", "--data", dirB, own, "--fingerprint", fingerprintIn(t, rb.stderr)); r.code == 0 {
		t.Fatal("a district imported its own anchor")
	}
	check("unknown_issuer")

	r = runCLI(t, env, "", "trust", "import", "--data", dirB, file, "--fingerprint", fp)
	if r.code != 0 || !strings.Contains(r.stdout, "1 root(s) added") {
		t.Fatalf("import: %d %s %s", r.code, r.stdout, r.stderr)
	}
	check("ok")
	if r := runCLI(t, env, "", "trust", "import", "--data", dirB, "--fingerprint", fp, file); r.code != 0 || !strings.Contains(r.stdout, "trusted already") {
		t.Fatalf("second import: %d %s %s", r.code, r.stdout, r.stderr)
	}

	r = runCLI(t, env, "", "trust", "list", "--data", dirB)
	if r.code != 0 || strings.Count(r.stdout, "fingerprint ") != 2 || !strings.Contains(r.stdout, fp) || !strings.Contains(r.stdout, " other ") {
		t.Fatalf("list: %s %s", r.stdout, r.stderr)
	}
	r = runCLI(t, env, "", "audit", "list", "--data", dirB, "-n", "0")
	if strings.Count(r.stdout, `"action":"root_import_refused"`) != 3 || strings.Count(r.stdout, `"action":"root_trusted"`) != 1 {
		t.Fatalf("audit:\n%s", r.stdout)
	}
}

// `root rotate` on a standalone district: passes under the old root and
// the new both check; the trust anchor then lists both roots.
func TestCLI_RootRotate(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{"PASSGATE_ADMIN_PASSWORD": "a long admin password"}
	tested := time.Now().Add(-18 * time.Hour).Format(time.RFC3339)
	issue := func(id string) string {
		t.Helper()
		r := runCLI(t, env, "", "issue", "--data", dir, "--name", "张三明", "--id", id, "--tested-at", tested, "--doses", "2")
		if r.code != 0 {
			t.Fatalf("issue: %s", r.stderr)
		}
		return strings.TrimSpace(r.stdout)
	}
	before := issue("610113199001011230")
	r := runCLI(t, env, "", "root", "rotate", "--data", dir)
	if r.code != 0 || !strings.Contains(r.stdout, "1 issuer certificate(s) issued again") {
		t.Fatalf("rotate: %d %s %s", r.code, r.stdout, r.stderr)
	}
	after := issue("P1234567")
	for _, text := range []string{before, after} {
		r := runCLI(t, env, "", "check", "--data", dir, text)
		if r.code != 0 {
			t.Fatalf("check after rotation: %s %s", r.stdout, r.stderr)
		}
	}
	r = runCLI(t, env, "", "trust", "export", "--data", dir)
	if strings.Count(r.stdout, "\nroot ") != 2 || strings.Count(r.stdout, "\nsignature ") != 2 {
		t.Fatalf("anchor after rotation:\n%s", r.stdout)
	}
	if r := runCLI(t, env, "", "root", "nothing", "--data", dir); r.code == 0 {
		t.Fatal("unknown subcommand accepted")
	}
}

// twoDistricts sets up standalone districts in dirA and dirB, each with
// a resident and a pass, and returns the CLI's environment and a check,
// at B, of A's pass that fails the test unless its reason is want.
func twoDistricts(t *testing.T, dirA, dirB string) (env map[string]string, checkAtB func(want string)) {
	t.Helper()
	env = map[string]string{"PASSGATE_ADMIN_PASSWORD": "a long admin password"}
	tested := time.Now().Add(-18 * time.Hour).Format(time.RFC3339)
	r := runCLI(t, env, "", "issue", "--data", dirA, "--name", "张三明", "--id", "610113199001011230", "--tested-at", tested, "--doses", "2")
	if r.code != 0 {
		t.Fatalf("issue: %s", r.stderr)
	}
	text := strings.TrimSpace(r.stdout)
	if r := runCLI(t, env, "", "issue", "--data", dirB, "--name", "李四", "--id", "P1234567", "--tested-at", tested, "--doses", "2"); r.code != 0 {
		t.Fatalf("issue at B: %s", r.stderr)
	}
	checkAtB = func(want string) {
		t.Helper()
		r := runCLI(t, env, "", "check", "--data", dirB, text)
		var d map[string]any
		if err := json.Unmarshal([]byte(r.stdout), &d); err != nil || d["reason"] != want {
			t.Fatalf("check at B = %v (%s), want %s", d["reason"], r.stderr, want)
		}
	}
	return env, checkAtB
}
