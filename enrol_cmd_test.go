package main

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"passgate/store"
)

// Offline enrolment by files, as an admin does it with a USB stick.
func TestCLI_EnrolOffline(t *testing.T) {
	root := t.TempDir()
	hubDir, appDir := filepath.Join(root, "hub"), filepath.Join(root, "app")
	reqFile, respFile := filepath.Join(root, "req.json"), filepath.Join(root, "resp.bin")
	env := map[string]string{"PASSGATE_ADMIN_PASSWORD": "offline admin password"}

	r := runCLI(t, env, "", "hub", "add", "--data", hubDir, "--name", "island", "--issuer", "--valid", "2h")
	code := strings.TrimSpace(r.stdout)
	if r.code != 0 || !strings.HasPrefix(code, "PGE1-") {
		t.Fatalf("hub add: exit %d %q %s", r.code, r.stdout, r.stderr)
	}
	r = runCLI(t, env, "", "enroll", "--data", appDir, "--code", code, "--request-out", reqFile)
	if r.code != 0 {
		t.Fatalf("enrol --request-out: exit %d %s", r.code, r.stderr)
	}
	// The appliance shows its issuer key's fingerprint; the hub's admin
	// sees the same one, and that the request came by file.
	fpr := regexp.MustCompile(`issuer key SHA-256 ([0-9a-f]{64})`).FindStringSubmatch(r.stdout)
	if fpr == nil {
		t.Fatalf("enrol --request-out shows no fingerprint: %s", r.stdout)
	}
	// Until the response comes back the directory has no district.
	r = runCLI(t, env, "", "enroll", "--data", appDir, "--response", respFile)
	if r.code == 0 {
		t.Fatal("enrol --response without a response file succeeded")
	}
	r = runCLI(t, env, "", "hub", "enroll", "--data", hubDir, "--request", reqFile, "--response-out", respFile)
	if r.code != 0 || !strings.Contains(r.stdout, fpr[1]) || !strings.Contains(r.stdout, "file req.json") {
		t.Fatalf("hub enrol: exit %d %s %s", r.code, r.stdout, r.stderr)
	}
	// The same request again: the code is spent.
	r = runCLI(t, env, "", "hub", "enroll", "--data", hubDir, "--request", reqFile, "--response-out", respFile+".2")
	if r.code == 0 || !strings.Contains(r.stderr, "already used") {
		t.Fatalf("second hub enrol: exit %d %s", r.code, r.stderr)
	}

	refuseDamagedResponses(t, env, root, appDir, respFile)
	r = runCLI(t, env, "", "enroll", "--data", appDir, "--response", respFile)
	if r.code != 0 || !strings.Contains(r.stdout, `enrolled as "island"`) || !strings.Contains(r.stdout, "bundles only") {
		t.Fatalf("enrol --response: exit %d %s %s", r.code, r.stdout, r.stderr)
	}
	if _, err := os.Stat(filepath.Join(appDir, "enroll-pending.json")); !os.IsNotExist(err) {
		t.Fatalf("the pending keys were left behind: %v", err)
	}
	// The enrolled appliance issues under the district's name.
	r = runCLI(t, env, "", "issue", "--data", appDir, "--name", "张三", "--id", "E1234567",
		"--tested-at", time.Now().Add(-time.Hour).Format(time.RFC3339))
	if r.code != 0 || !strings.HasPrefix(r.stdout, "PG1:") {
		t.Fatalf("issue at the offline-enrolled appliance: exit %d %s", r.code, r.stderr)
	}
	// A check at the hub accepts it: same district, certificate from its root.
	r2 := runCLI(t, env, "", "check", "--data", hubDir, strings.TrimSpace(r.stdout))
	if r2.code != 0 {
		t.Fatalf("hub checking the appliance's pass: exit %d %s", r2.code, r2.stdout)
	}
	db, err := store.Open(context.Background(), appDir)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	h, err := db.SyncHubInfo(context.Background())
	if err != nil || h.URL != "" || h.Appliance != "island" {
		t.Fatalf("sync hub row %+v: %v", h, err)
	}
	// Given a network later, it is pointed at the hub.
	r = runCLI(t, env, "", "enroll", "--data", appDir, "--set-hub", "https://10.1.2.3:8443")
	if r.code != 0 {
		t.Fatalf("enrol --set-hub: exit %d %s", r.code, r.stderr)
	}
	withStore(t, appDir, func(db *store.DB) {
		if h, err := db.SyncHubInfo(context.Background()); err != nil || h.URL != "https://10.1.2.3:8443" {
			t.Fatalf("hub address after --set-hub: %+v %v", h, err)
		}
	})
	if r := runCLI(t, env, "", "enroll", "--data", hubDir, "--set-hub", "https://10.1.2.3:8443"); r.code == 0 ||
		!strings.Contains(r.stderr, "not enrolled") {
		t.Fatalf("--set-hub on the hub: exit %d %s", r.code, r.stderr)
	}
	// An enrolled appliance is no hub.
	r = runCLI(t, env, "", "hub", "add", "--data", appDir, "--name", "sub")
	if r.code == 0 || !strings.Contains(r.stderr, "enrolled with a hub") {
		t.Fatalf("hub add on an enrolled appliance: exit %d %s", r.code, r.stderr)
	}
	r = runCLI(t, env, "", "hub", "list", "--data", hubDir)
	if r.code != 0 || !strings.Contains(r.stdout, "island") || !strings.Contains(r.stdout, "enrolled") ||
		!strings.Contains(r.stdout, fpr[1]) || !strings.Contains(r.stdout, "file req.json") {
		t.Fatalf("hub list: %s %s", r.stdout, r.stderr)
	}
}

func TestCLI_EnrolUsage(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{"PASSGATE_ADMIN_PASSWORD": "usage admin password"}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"enroll", "--data", dir}, "--code is required"},
		{[]string{"enrol", "--data", dir}, "--code is required"},
		{[]string{"enrol", "--data", dir, "--code", "PGE1-AAAA"}, "give --hub"},
		{[]string{"hub", "enrol", "--data", dir}, "--request and --response-out"},
		{[]string{"enroll", "--data", dir, "--code", "PGE1-AAAA"}, "give --hub"},
		{[]string{"enroll", "--data", dir, "--hub", "http://x:1", "--code", "PGE1-AAAA"}, "want https://HOST:PORT"},
		{[]string{"enroll", "--data", dir, "--hub", "https://127.0.0.1:1", "--code", "hello"}, "not a valid enrolment code"},
		{[]string{"enroll", "--data", dir, "--response", "f", "--code", "x"}, "without --code"},
		{[]string{"enroll", "--data", dir, "--set-hub", "https://h:1", "--code", "x"}, "--set-hub goes alone"},
		{[]string{"enroll", "--data", dir, "--set-hub", "http://h:1"}, "want https://HOST:PORT"},
		{[]string{"hub"}, "want a subcommand"},
		{[]string{"hub", "frobnicate"}, "unknown subcommand"},
		{[]string{"hub", "add", "--data", dir}, "--name"},
		{[]string{"hub", "add", "--data", dir, "--name", " padded"}, "--name"},
		{[]string{"hub", "add", "--data", dir, "--name", "x", "--valid", "-1h"}, "--valid"},
		{[]string{"hub", "enroll", "--data", dir}, "--request and --response-out"},
		{[]string{"hub", "retire", "--data", dir}, "--name is required"},
		{[]string{"hub", "retire", "--data", dir, "--name", "nobody"}, "no appliance named"},
	} {
		r := runCLI(t, env, "", c.args...)
		if r.code == 0 || !strings.Contains(r.stderr, c.want) {
			t.Errorf("%v: exit %d, stderr %q, want %q", c.args, r.code, r.stderr, c.want)
		}
	}
	// Any standalone passgate becomes a hub by adding an appliance.
	r := runCLI(t, env, "", "hub", "add", "--data", dir, "--name", "first")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "PGE1-") {
		t.Fatalf("hub add on a standalone: %s", r.stderr)
	}
}

// refuseDamagedResponses offers the appliance in appDir damaged copies
// of the good response file: each is refused as such.
func refuseDamagedResponses(t *testing.T, env map[string]string, root, appDir, respFile string) {
	t.Helper()
	good, err := os.ReadFile(respFile)
	if err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string][]byte{
		"tampered":  append(append([]byte(nil), good[:len(good)/2]...), append([]byte{good[len(good)/2] ^ 0x40}, good[len(good)/2+1:]...)...),
		"truncated": good[:len(good)-10],
		"not one":   []byte("hello"),
	} {
		bad := filepath.Join(root, "bad-"+name)
		if err := os.WriteFile(bad, b, 0o600); err != nil {
			t.Fatal(err)
		}
		r := runCLI(t, env, "", "enroll", "--data", appDir, "--response", bad)
		if r.code == 0 || !strings.Contains(r.stderr, "enrolment response refused") {
			t.Fatalf("%s response: exit %d %s", name, r.code, r.stderr)
		}
	}
}
