package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"passgate/store"
)

// runAudit calls cmdAudit as the command line would.
func runAudit(t *testing.T, args ...string) result {
	t.Helper()
	var out, errOut bytes.Buffer
	e := &env{getenv: func(string) string { return "" }, stdin: strings.NewReader(""), stdout: &out, stderr: &errOut}
	code := cmdAudit(context.Background(), e, args)
	return result{code, out.String(), errOut.String()}
}

func TestCLI_Audit(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{"PASSGATE_ADMIN_PASSWORD": "a long admin password"}
	for _, args := range [][]string{
		{"issue", "--data", dir, "--name", "张三明", "--id", "610113199001011230", "--doses", "2"},
		{"status", "--data", dir, "--id", "610113199001011230", "--color", "yellow", "--reason", "close contact"},
		{"policy", "--data", dir, "--min-doses", "3"},
	} {
		if r := runCLI(t, env, "", args...); r.code != 0 {
			t.Fatalf("%s: exit %d: %s", args[0], r.code, r.stderr)
		}
	}

	r := runAudit(t, "verify", "--data", dir)
	if r.code != exitOK || !strings.HasPrefix(r.stdout, "audit trail intact: 5 records, 2 status changes match") {
		t.Fatalf("verify: exit %d, %q %q", r.code, r.stdout, r.stderr)
	}

	r = runAudit(t, "list", "--data", dir, "-n", "0")
	if r.code != exitOK {
		t.Fatalf("list: exit %d: %s", r.code, r.stderr)
	}
	var got []string
	for _, line := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
		var l auditLine
		if err := json.Unmarshal([]byte(line), &l); err != nil {
			t.Fatalf("list line %q: %v", line, err)
		}
		got = append(got, l.Actor+" "+l.Action)
	}
	// setup's first admin; issue: registration (first status) and the
	// pass; then the status change and the policy change, all by the CLI
	// named with the OS user running it.
	cli := string(cliActor())
	want := "setup first_admin|" + cli + " status_changed|" + cli + " pass_issued|" + cli + " status_changed|" + cli + " policy_changed"
	if strings.Join(got, "|") != want {
		t.Fatalf("list: %s\nwant %s", strings.Join(got, "|"), want)
	}
	if r := runAudit(t, "list", "--data", dir, "-n", "1"); strings.Count(r.stdout, "\n") != 1 || !strings.Contains(r.stdout, `"policy_changed"`) {
		t.Fatalf("list -n 1: %q", r.stdout)
	}

	// Tamper with the second record directly in the file.
	raw, err := sql.Open("sqlite", filepath.Join(dir, store.FileName))
	if err != nil {
		t.Fatal(err)
	}
	raw.SetMaxOpenConns(1)
	for _, q := range []string{`DROP TRIGGER audit_no_update`, `UPDATE audit SET actor = 'someone' WHERE seq = 3`} {
		if _, err := raw.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	raw.Close()
	r = runAudit(t, "verify", "--data", dir)
	if r.code != exitBroken || !strings.Contains(r.stdout, "record 3") || !strings.Contains(r.stdout, "altered") {
		t.Fatalf("verify after tampering: exit %d, %q %q", r.code, r.stdout, r.stderr)
	}
}

func TestCLI_AuditUsage(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "none")
	for _, args := range [][]string{
		nil,
		{"frobnicate"},
		{"verify", "--data", missing},
		{"verify", "--data", t.TempDir(), "extra"},
		{"list", "--data", t.TempDir(), "-n", "-3"},
		{"verify", "--bogus"},
	} {
		if r := runAudit(t, args...); r.code != exitError {
			t.Errorf("audit %q: exit %d, want %d (%s)", args, r.code, exitError, r.stderr)
		}
	}
	if r := runAudit(t, "verify", "-h"); r.code != exitOK {
		t.Errorf("verify -h: exit %d", r.code)
	}
}
