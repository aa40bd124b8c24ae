package main

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func writeKeyFile(t *testing.T, dir, name string) string {
	t.Helper()
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, k, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// A data directory sealed with a key file works with it (flag, variable
// or systemd credential), and is refused with a clear message without it
// or with another key file.
func TestCLI_KeyFile(t *testing.T) {
	root := t.TempDir()
	data := filepath.Join(root, "data")
	key := writeKeyFile(t, root, "key")
	creds := filepath.Join(root, "creds")
	if err := os.Mkdir(creds, 0o700); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(key); err != nil || os.WriteFile(filepath.Join(creds, "passgate-key"), b, 0o600) != nil {
		t.Fatal(err)
	}
	tested := time.Now().Add(-18 * time.Hour).Format(time.RFC3339)
	issue := func(env map[string]string, extra ...string) result {
		args := append([]string{"issue", "--data", data, "--name", "张三明", "--id", "610113199001011230", "--tested-at", tested}, extra...)
		return runCLI(t, env, "", args...)
	}
	env := map[string]string{"PASSGATE_ADMIN_PASSWORD": "a long admin password"}
	if r := issue(env, "--key-file", key); r.code != 0 || !strings.HasPrefix(r.stdout, "PG1:") {
		t.Fatalf("issue with --key-file: %d %s", r.code, r.stderr)
	}
	if r := issue(env); r.code == 0 || !strings.Contains(r.stderr, "sealed") || !strings.Contains(r.stderr, "--key-file") {
		t.Fatalf("issue without the key file: %d %s", r.code, r.stderr)
	}
	if r := issue(env, "--key-file", writeKeyFile(t, root, "other")); r.code == 0 || !strings.Contains(r.stderr, "wrong key file") {
		t.Fatalf("issue with another key file: %d %s", r.code, r.stderr)
	}
	for name, e := range map[string]map[string]string{
		"variable":   {"PASSGATE_KEY_FILE": key},
		"credential": {"CREDENTIALS_DIRECTORY": creds},
	} {
		e["PASSGATE_ADMIN_PASSWORD"] = env["PASSGATE_ADMIN_PASSWORD"]
		if r := issue(e); r.code != 0 {
			t.Fatalf("issue with the key file as %s: %d %s", name, r.code, r.stderr)
		}
	}
	// A command without --key-file of its own reads the variable too.
	if r := runCLI(t, map[string]string{"PASSGATE_KEY_FILE": key}, "", "audit", "verify", "--data", data); r.code != 0 {
		t.Fatalf("audit verify with PASSGATE_KEY_FILE: %d %s %s", r.code, r.stdout, r.stderr)
	}
}

// A data directory made 0755 beforehand, and files readable by others,
// are made owner-only with a warning naming each.
func TestCLI_DataDirModesFixed(t *testing.T) {
	old := syscall.Umask(0o022)
	defer syscall.Umask(old)
	data := filepath.Join(t.TempDir(), "data")
	if err := os.Mkdir(data, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(data, "notes.txt"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"PASSGATE_ADMIN_PASSWORD": "a long admin password"}
	r := runCLI(t, env, "", "issue", "--data", data, "--name", "张三明", "--id", "610113199001011230",
		"--tested-at", time.Now().Add(-time.Hour).Format(time.RFC3339))
	if r.code != 0 || !strings.Contains(r.stderr, "warning: . (was 0755)") || !strings.Contains(r.stderr, "warning: notes.txt (was 0644)") {
		t.Fatalf("issue: %d %s", r.code, r.stderr)
	}
	err := filepath.Walk(data, func(p string, info os.FileInfo, err error) error {
		if err == nil && info.Mode().Perm()&0o077 != 0 {
			t.Errorf("%s is %04o", p, info.Mode().Perm())
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	r = runCLI(t, env, "", "policy", "--data", data)
	if r.code != 0 || strings.Contains(r.stderr, "warning") {
		t.Fatalf("policy: %d, warned again: %s", r.code, r.stderr)
	}
}

// An offline enrolment with a key file keeps the pending keys sealed in
// the data directory until the response arrives.
func TestCLI_EnrolOfflineSealed(t *testing.T) {
	root := t.TempDir()
	hubDir, appDir := filepath.Join(root, "hub"), filepath.Join(root, "app")
	reqFile, respFile := filepath.Join(root, "req.json"), filepath.Join(root, "resp.bin")
	key := writeKeyFile(t, root, "key")
	env := map[string]string{"PASSGATE_ADMIN_PASSWORD": "offline admin password"}
	r := runCLI(t, env, "", "hub", "add", "--data", hubDir, "--name", "island", "--issuer")
	code := strings.TrimSpace(r.stdout)
	if r.code != 0 {
		t.Fatalf("hub add: %d %s", r.code, r.stderr)
	}
	if r = runCLI(t, env, "", "enroll", "--data", appDir, "--key-file", key, "--code", code, "--request-out", reqFile); r.code != 0 {
		t.Fatalf("enrol --request-out: %d %s", r.code, r.stderr)
	}
	b, err := os.ReadFile(filepath.Join(appDir, "enroll-pending.json"))
	if err != nil {
		t.Fatal(err)
	}
	var pend struct {
		IssuerKey []byte `json:"issuer_key"`
		BundleKey []byte `json:"bundle_key"`
	}
	if err := json.Unmarshal(b, &pend); err != nil {
		t.Fatal(err)
	}
	for name, k := range map[string][]byte{"issuer": pend.IssuerKey, "bundle": pend.BundleKey} {
		if !bytes.HasPrefix(k, []byte("PGSEAL1")) {
			t.Errorf("pending %s key stored in clear", name)
		}
	}
	if r = runCLI(t, env, "", "hub", "enroll", "--data", hubDir, "--request", reqFile, "--response-out", respFile); r.code != 0 {
		t.Fatalf("hub enrol: %d %s", r.code, r.stderr)
	}
	if r = runCLI(t, env, "", "enroll", "--data", appDir, "--response", respFile); r.code == 0 || !strings.Contains(r.stderr, "sealed") {
		t.Fatalf("enrol --response without the key file: %d %s", r.code, r.stderr)
	}
	if r = runCLI(t, env, "", "enroll", "--data", appDir, "--key-file", key, "--response", respFile); r.code != 0 {
		t.Fatalf("enrol --response: %d %s", r.code, r.stderr)
	}
	r = runCLI(t, map[string]string{"PASSGATE_KEY_FILE": key}, "", "issue", "--data", appDir, "--name", "张三", "--id", "E1234567",
		"--tested-at", time.Now().Add(-time.Hour).Format(time.RFC3339))
	if r.code != 0 || !strings.HasPrefix(r.stdout, "PG1:") {
		t.Fatalf("issue at the sealed appliance: %d %s", r.code, r.stderr)
	}
}
