package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"passgate/store"
)

// syncBuffer is a bytes.Buffer safe for a writer and a reader at once.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

type result struct {
	code   int
	stdout string
	stderr string
}

// runCLI runs the program as a user would, with environment env.
func runCLI(t *testing.T, env map[string]string, stdin string, args ...string) result {
	t.Helper()
	var out, errOut bytes.Buffer
	getenv := func(k string) string { return env[k] }
	code := run(context.Background(), args, getenv, strings.NewReader(stdin), &out, &errOut)
	return result{code, out.String(), errOut.String()}
}

func TestCLI_Session(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{"PASSGATE_ADMIN_PASSWORD": "a long admin password"}
	tested := time.Now().Add(-18 * time.Hour).Format(time.RFC3339)
	qr := filepath.Join(dir, "pass.png")

	r := runCLI(t, env, "", "issue", "--data", dir, "--name", "张三明", "--id", "610113199001011230", "--tested-at", tested, "--doses", "2", "--qr", qr)
	if r.code != 0 {
		t.Fatalf("issue: exit %d: %s", r.code, r.stderr)
	}
	text := strings.TrimSpace(r.stdout)
	if !strings.HasPrefix(text, "PG1:") || strings.Contains(text, "\n") {
		t.Fatalf("issue printed %q, want one PG1: line", r.stdout)
	}
	if !strings.Contains(r.stderr, "new standalone district") {
		t.Fatalf("first use did not announce the new district: %q", r.stderr)
	}
	if png, err := os.ReadFile(qr); err != nil || !bytes.HasPrefix(png, []byte("\x89PNG")) {
		t.Fatalf("QR file: %v", err)
	}

	check := func(wantCode int, wantDecision, wantReason string, input ...string) map[string]any {
		t.Helper()
		stdin := ""
		args := []string{"check", "--data", dir}
		if len(input) > 0 {
			stdin = input[0]
			args = append(args, "-")
		} else {
			args = append(args, text)
		}
		r := runCLI(t, env, stdin, args...)
		if r.code != wantCode {
			t.Fatalf("check: exit %d, want %d; stdout %s stderr %s", r.code, wantCode, r.stdout, r.stderr)
		}
		var d map[string]any
		if err := json.Unmarshal([]byte(r.stdout), &d); err != nil {
			t.Fatalf("check output %q: %v", r.stdout, err)
		}
		if d["decision"] != wantDecision || d["reason"] != wantReason {
			t.Fatalf("check = %v/%v, want %s/%s", d["decision"], d["reason"], wantDecision, wantReason)
		}
		return d
	}
	d := check(0, "allow", "ok")
	holder, _ := d["holder"].(map[string]any)
	if holder["name"] != "张*明" || holder["id_tail"] != "1230" || d["color"] != "green" {
		t.Fatalf("display data %v", d)
	}
	check(0, "allow", "ok", text+"\n") // from standard input, as a scanner pipe sends it

	r = runCLI(t, env, "", "status", "--data", dir, "--id", "610113199001011230", "--color", "red", "--reason", "positive test")
	if r.code != 0 {
		t.Fatalf("status: exit %d: %s", r.code, r.stderr)
	}
	check(1, "deny", "revoked")
	check(1, "deny", "not_a_pass", "hello")

	r = runCLI(t, env, "", "log", "--data", dir, "-n", "10")
	if r.code != 0 {
		t.Fatalf("log: exit %d: %s", r.code, r.stderr)
	}
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 4 {
		t.Fatalf("log has %d lines, want 4:\n%s", len(lines), r.stdout)
	}
	var last map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &last); err != nil {
		t.Fatal(err)
	}
	if last["source"] != "cli" || last["reason"] != "not_a_pass" {
		t.Fatalf("newest log line %v", last)
	}
	if strings.Contains(r.stdout, "张") || strings.Contains(r.stdout, "610113") {
		t.Fatal("the scan log shows personal data")
	}
}

func TestCLI_Policy(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{"PASSGATE_ADMIN_PASSWORD": "x"}
	r := runCLI(t, env, "", "policy", "--data", dir, "--colors", "green,yellow", "--max-test-age", "48h", "--min-doses", "2", "--repeat-window", "10m")
	if r.code != 0 {
		t.Fatalf("policy: exit %d: %s", r.code, r.stderr)
	}
	r = runCLI(t, env, "", "policy", "--data", dir)
	var p map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &p); err != nil {
		t.Fatalf("policy output %q: %v", r.stdout, err)
	}
	if p["max_test_age"] != "48h0m0s" || p["min_doses"] != float64(2) || p["repeat_window"] != "10m0s" {
		t.Fatalf("policy not saved: %v", p)
	}
	if cs, _ := p["colors"].([]any); len(cs) != 2 || cs[1] != "yellow" {
		t.Fatalf("colours not saved: %v", p["colors"])
	}
}

func TestCLI_UsageErrors(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{"PASSGATE_ADMIN_PASSWORD": "x"}
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"unknown command", []string{"frobnicate"}, "unknown command"},
		{"bad colour", []string{"issue", "--data", dir, "--name", "a", "--id", "12345", "--color", "blue"}, "unknown colour"},
		{"bad kind", []string{"issue", "--data", dir, "--name", "a", "--id", "12345", "--kind", "card"}, "unknown pass kind"},
		{"bad test time", []string{"issue", "--data", dir, "--name", "a", "--id", "12345", "--tested-at", "yesterday"}, "RFC 3339"},
		{"missing id", []string{"issue", "--data", dir, "--name", "a"}, "ID number is required"},
		{"missing name", []string{"issue", "--data", dir, "--id", "610113199001011230"}, "name is required"},
		{"bad id", []string{"issue", "--data", dir, "--name", "a", "--id", "12-34-56"}, "only letters and digits"},
		{"unknown flag", []string{"issue", "--data", dir, "--nmae", "a"}, "flag provided but not defined"},
		{"status without reason", []string{"status", "--data", dir, "--id", "12345", "--color", "red"}, "reason is required"},
		{"status of a stranger", []string{"status", "--data", dir, "--id", "99999", "--color", "red", "--reason", "x"}, "no resident"},
		{"bad duration", []string{"policy", "--data", dir, "--max-test-age", "2 days"}, "not a duration"},
		{"negative doses", []string{"policy", "--data", dir, "--min-doses", "-1"}, "0 to 255"},
		{"two payloads", []string{"check", "--data", dir, "a", "b"}, "one payload"},
		{"device without name", []string{"device", "add", "--data", dir}, "device name"},
		{"serve on a bad address", []string{"serve", "--data", dir, "--addr", "256.0.0.1:99999"}, "listen"},
		{"serial scanner without a path", []string{"serve", "--data", dir, "--serial", "gate-1=tty0"}, "--serial"},
		{"evdev scanner outside /dev/input", []string{"serve", "--data", dir, "--evdev", "kiosk=/etc/passwd"}, "--evdev"},
		{"two inputs of one name", []string{"serve", "--data", dir, "--serial", "g=/dev/ttyACM0", "--evdev", "g=/dev/input/event3"}, "two inputs"},
	}
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			r := runCLI(t, env, "", tt.args...)
			if r.code != 2 {
				t.Fatalf("exit %d, want 2 (stderr %q)", r.code, r.stderr)
			}
			if !strings.Contains(r.stderr, tt.want) {
				t.Fatalf("stderr %q does not say %q", r.stderr, tt.want)
			}
			if strings.Contains(r.stderr, "goroutine ") || strings.Contains(r.stderr, "panic") {
				t.Fatalf("stack trace on stderr: %s", r.stderr)
			}
		})
	}
}

func TestCLI_DeviceAndServe(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{}
	r := runCLI(t, env, "", "device", "add", "--data", dir, "gate-1")
	if r.code != 0 {
		t.Fatalf("device add: exit %d: %s", r.code, r.stderr)
	}
	token := strings.TrimSpace(r.stdout)
	if m := regexp.MustCompile(`user "admin", password "([^"]+)"`).FindStringSubmatch(r.stderr); m == nil || len(m[1]) < 12 {
		t.Fatalf("generated admin password not printed once: %q", r.stderr)
	}
	if r2 := runCLI(t, env, "", "device", "add", "--data", dir, "gate-1"); r2.code != 2 || !strings.Contains(r2.stderr, "exists") {
		t.Fatalf("duplicate device: exit %d %q", r2.code, r2.stderr)
	}
	text := strings.TrimSpace(runCLI(t, env, "", "issue", "--data", dir, "--name", "李四", "--id", "G12345678", "--tested-at", time.Now().Add(-time.Hour).Format(time.RFC3339)).stdout)

	srv := start(t, procOpts{inProcess: true, args: []string{"--data", dir, "--addr", "127.0.0.1:0"}})
	base := srv.http
	if strings.Contains(srv.out.String(), "password") {
		t.Fatal("the admin password was printed again on a later start")
	}
	scan := func(payload string) map[string]any {
		t.Helper()
		req, _ := http.NewRequest("POST", base+"/api/v1/scans", strings.NewReader(`{"payload":"`+payload+`"}`))
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var d map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&d); err != nil || resp.StatusCode != 200 {
			t.Fatalf("scan API: %d %v %v", resp.StatusCode, d, err)
		}
		return d
	}
	if d := scan(text); d["decision"] != "allow" {
		t.Fatalf("scan API: %v", d)
	}

	// The CLI works on the directory while the server runs, and the
	// server sees its status change within a second or two.
	r = runCLI(t, env, "", "issue", "--data", dir, "--name", "赵六", "--id", "N7654321", "--tested-at", time.Now().Add(-time.Hour).Format(time.RFC3339))
	if r.code != 0 {
		t.Fatalf("issue while serving: exit %d: %s", r.code, r.stderr)
	}
	text2 := strings.TrimSpace(r.stdout)
	if d := scan(text2); d["decision"] != "allow" {
		t.Fatalf("pass issued while serving: %v", d)
	}
	if r := runCLI(t, env, "", "status", "--data", dir, "--id", "N7654321", "--color", "red", "--reason", "positive test"); r.code != 0 {
		t.Fatalf("status while serving: exit %d: %s", r.code, r.stderr)
	}
	var d map[string]any
	for deadline := time.Now().Add(5 * time.Second); ; {
		if d = scan(text2); d["reason"] == "revoked" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the server did not see the status change: %v", d)
		}
		time.Sleep(100 * time.Millisecond)
	}
	d = scan(text)
	if err := srv.stop(); err != nil {
		t.Fatalf("serve exited %v: %s", err, srv.logs)
	}
	db, err := store.Open(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	scans, err := db.FindScans(context.Background(), store.ScanFilter{Limit: 1})
	if err != nil || len(scans) != 1 || scans[0].Source != "gate-1" || int64(d["scan_id"].(float64)) != scans[0].ID {
		t.Fatalf("last logged scan %v %v, want the last API scan from gate-1", scans, err)
	}
}
