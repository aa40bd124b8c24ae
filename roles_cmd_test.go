package main

import (
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A gate enrolled with `hub add --role gate` is listed as one, and the
// commands that register, issue, change statuses or trace by ID number
// fail on it with one line that says why.
func TestCLI_GateRefusesOfficeCommands(t *testing.T) {
	root := t.TempDir()
	hubDir, gateDir := filepath.Join(root, "hub"), filepath.Join(root, "gate")
	reqFile, respFile := filepath.Join(root, "req.json"), filepath.Join(root, "resp.bin")
	env := map[string]string{"PASSGATE_ADMIN_PASSWORD": "gate admin password"}
	must := func(r result, what string) string {
		t.Helper()
		if r.code != 0 {
			t.Fatalf("%s: exit %d\n%s%s", what, r.code, r.stdout, r.stderr)
		}
		return strings.TrimSpace(r.stdout)
	}
	if r := runCLI(t, env, "", "hub", "add", "--data", hubDir, "--name", "x", "--role", "door"); r.code != 2 {
		t.Fatalf("hub add --role door: exit %d %s", r.code, r.stderr)
	}
	if r := runCLI(t, env, "", "hub", "add", "--data", hubDir, "--name", "x", "--role", "gate", "--issuer"); r.code != 2 {
		t.Fatalf("hub add --role gate --issuer: exit %d %s", r.code, r.stderr)
	}
	code := must(runCLI(t, env, "", "hub", "add", "--data", hubDir, "--name", "north-gate", "--role", "gate"), "hub add")
	must(runCLI(t, env, "", "hub", "add", "--data", hubDir, "--name", "clinic", "--issuer"), "hub add --issuer")
	list := must(runCLI(t, env, "", "hub", "list", "--data", hubDir), "hub list")
	if !lineHas(list, "north-gate", "gate") || !lineHas(list, "clinic", "office") {
		t.Fatalf("hub list does not show the roles:\n%s", list)
	}
	// The admin changes a role: an office becomes a gate, never the reverse in place.
	must(runCLI(t, env, "", "hub", "set-role", "--data", hubDir, "--name", "clinic", "--role", "gate"), "hub set-role")
	if r := runCLI(t, env, "", "hub", "set-role", "--data", hubDir, "--name", "clinic", "--role", "office"); r.code == 0 ||
		!strings.Contains(r.stderr, "enrol it again") {
		t.Fatalf("a gate made an office: exit %d %s", r.code, r.stderr)
	}
	if list := must(runCLI(t, env, "", "hub", "list", "--data", hubDir), "hub list"); !lineHas(list, "clinic", "gate") {
		t.Fatalf("hub list after set-role:\n%s", list)
	}
	must(runCLI(t, env, "", "enroll", "--data", gateDir, "--code", code, "--request-out", reqFile), "enrol --request-out")
	must(runCLI(t, env, "", "hub", "enroll", "--data", hubDir, "--request", reqFile, "--response-out", respFile), "hub enrol")
	out := must(runCLI(t, env, "", "enroll", "--data", gateDir, "--response", respFile), "enrol --response")
	if !strings.Contains(out, "is a gate") {
		t.Fatalf("enrol said %q", out)
	}
	tested := time.Now().Add(-time.Hour).Format(time.RFC3339)
	for _, args := range [][]string{
		{"issue", "--data", gateDir, "--name", "张三", "--id", "11010519491231002X", "--tested-at", tested},
		{"status", "--data", gateDir, "--id", "11010519491231002X", "--color", "red", "--reason", "positive"},
		{"trace", "--data", gateDir, "--id", "11010519491231002X", "--from", "2026-01-01", "--to", "2026-02-01"},
	} {
		r := runCLI(t, env, "", args...)
		msg := strings.TrimRight(r.stderr, "\n")
		if r.code == 0 || strings.Contains(msg, "\n") || !strings.Contains(msg, "this appliance is a gate") {
			t.Errorf("%s on a gate: exit %d, stderr %q; want one line saying it is a gate", args[0], r.code, r.stderr)
		}
	}
}

// lineHas reports whether a line of text starts with a and has b.
func lineHas(text, a, b string) bool {
	for _, l := range strings.Split(text, "\n") {
		f := strings.Fields(l)
		if len(f) > 2 && f[0] == a && strings.Contains(l, " "+b+" ") {
			return true
		}
	}
	return false
}
