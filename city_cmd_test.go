package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The city's commands end to end: a city root made offline certifies
// district A's root; district B trusts the city root (fingerprint
// compared) and imports the certificate; A's pass, refused at B before,
// is allowed at B after, and refused again once the city retires A's
// root.
func TestCLI_CityCertifyAndRetire(t *testing.T) {
	dirA, dirB, cityDir, files := t.TempDir(), t.TempDir(), filepath.Join(t.TempDir(), "city"), t.TempDir()
	env, checkAtB := twoDistricts(t, dirA, dirB)
	checkAtB("unknown_issuer")

	r := runCLI(t, nil, "", "city", "init", "--out", cityDir, "--city", "xian")
	if r.code != 0 {
		t.Fatalf("city init: %s", r.stderr)
	}
	cityFP := fingerprintIn(t, r.stdout)
	keyFile, anchor := filepath.Join(cityDir, "city-root.key"), filepath.Join(cityDir, "city-root.anchor")
	if st, err := os.Stat(keyFile); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", st.Mode(), err)
	}
	key, _ := os.ReadFile(keyFile)
	if r := runCLI(t, nil, "", "city", "init", "--out", cityDir); r.code == 0 || !strings.Contains(r.stderr, "exists already") {
		t.Fatalf("second city init: %d %s", r.code, r.stderr)
	}
	if again, _ := os.ReadFile(keyFile); string(again) != string(key) {
		t.Fatal("the city key was replaced")
	}

	aAnchor := filepath.Join(files, "a.anchor")
	r = runCLI(t, env, "", "trust", "export", "--data", dirA, "--out", aAnchor)
	if r.code != 0 {
		t.Fatalf("export: %s", r.stderr)
	}
	fpA := fingerprintIn(t, r.stderr)
	cert := filepath.Join(files, "a.cert")
	wrong := strings.Replace(fpA, fpA[:4], "0000", 1)
	if r := runCLI(t, nil, "", "city", "certify", "--city-key", keyFile, "--district", aAnchor, "--fingerprint", wrong, "--out", cert); r.code == 0 {
		t.Fatal("certified with a wrong fingerprint")
	}
	if r := runCLI(t, nil, "", "city", "certify", "--city-key", keyFile, "--district", aAnchor, "--fingerprint", fpA, "--out", cert); r.code != 0 {
		t.Fatalf("certify: %s", r.stderr)
	}

	// Without the city root, B refuses the certificate.
	if r := runCLI(t, env, "", "trust", "import-certified", "--data", dirB, cert); r.code == 0 {
		t.Fatal("certificate imported without a city root")
	}
	if r := runCLI(t, env, "", "trust", "city", "--data", dirB, anchor); r.code == 0 || !strings.Contains(r.stderr, "--fingerprint is required") {
		t.Fatalf("trust city without fingerprint: %d %s", r.code, r.stderr)
	}
	if r := runCLI(t, env, "", "trust", "city", "--data", dirB, anchor, "--fingerprint", cityFP); r.code != 0 {
		t.Fatalf("trust city: %s", r.stderr)
	}
	checkAtB("unknown_issuer")
	if r := runCLI(t, env, "", "trust", "import-certified", "--data", dirB, cert); r.code != 0 || !strings.Contains(r.stdout, "certified until") {
		t.Fatalf("import-certified: %d %s", r.code, r.stderr)
	}
	checkAtB("ok")
	if r := runCLI(t, env, "", "trust", "list", "--data", dirB); !strings.Contains(r.stdout, "city xian root") || !strings.Contains(r.stdout, "other+city") {
		t.Fatalf("trust list:\n%s", r.stdout)
	}

	retire := filepath.Join(files, "a.retire")
	if r := runCLI(t, nil, "", "city", "retire", "--city-key", keyFile, "--cert", cert, "--out", retire); r.code != 0 {
		t.Fatalf("retire: %s", r.stderr)
	}
	if r := runCLI(t, env, "", "trust", "import-certified", "--data", dirB, retire); r.code != 0 || !strings.Contains(r.stdout, "retired") {
		t.Fatalf("import retirement: %d %s", r.code, r.stderr)
	}
	checkAtB("unknown_issuer")
}

// untilReason scans payload at n every 100 ms until the reason is want,
// failing after limit, and returns how long it took.
func untilReason(t *testing.T, n *proc, token, payload, want string, limit time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		_, reason, _ := scanAt(t, n, token, payload)
		if reason == want {
			return time.Since(start)
		}
		if time.Since(start) > limit {
			t.Fatalf("%s still says %q after %v, want %q", n.name, reason, limit, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestCity_ProcessesTwoDistricts runs district B as real processes (its
// hub and an enrolled gate) beside district A's hub: A's pass is
// unknown_issuer at B's running gate until B's hub imports the city's
// certificates, is then allowed there from the gate's next pull, and is
// unknown_issuer again once the city retires A's root.
func TestCity_ProcessesTwoDistricts(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs real processes")
	}
	root := t.TempDir()
	hubA, hubB, gateB, cityDir := filepath.Join(root, "hub-a"), filepath.Join(root, "hub-b"), filepath.Join(root, "gate-b"), filepath.Join(root, "city")
	env := map[string]string{"PASSGATE_ADMIN_PASSWORD": "district test password"}
	must := mustSucceed(t)
	tested := time.Now().Add(-time.Hour).Format(time.RFC3339)
	passA := must(runCLI(t, env, "", "issue", "--data", hubA, "--name", "李四", "--id", "110101199003071233", "--tested-at", tested), "issue at A")

	code := must(runCLI(t, env, "", "hub", "add", "--data", hubB, "--name", "gate-b"), "hub add gate-b")
	hub := startSyncNode(t, "hub B", hubB, true)
	must(runCLI(t, env, "", "enrol", "--data", gateB, "--hub", hub.https, "--code", code), "enrol gate-b")
	tok := must(runCLI(t, env, "", "device", "add", "--data", gateB, "gate-b-scanner"), "device add")
	gate := startSyncNode(t, "gate B", gateB, false)
	if dec, reason, _ := scanAt(t, gate, tok, passA); dec != "deny" || reason != "unknown_issuer" {
		t.Fatalf("A's pass at B's gate before the city: %s %s", dec, reason)
	}

	cityFP := fingerprintIn(t, must(runCLI(t, nil, "", "city", "init", "--out", cityDir, "--city", "xian"), "city init"))
	key := filepath.Join(cityDir, "city-root.key")
	certs := map[string]string{}
	for name, dir := range map[string]string{"a": hubA, "b": hubB} {
		anchor := filepath.Join(root, name+".anchor")
		r := runCLI(t, env, "", "trust", "export", "--data", dir, "--out", anchor)
		if r.code != 0 {
			t.Fatalf("trust export %s: %s", name, r.stderr)
		}
		certs[name] = filepath.Join(root, name+".cert")
		must(runCLI(t, nil, "", "city", "certify", "--city-key", key, "--district", anchor, "--fingerprint", fingerprintIn(t, r.stderr),
			"--out", certs[name]), "certify "+name)
	}
	must(runCLI(t, env, "", "trust", "city", "--data", hubB, filepath.Join(cityDir, "city-root.anchor"), "--fingerprint", cityFP), "trust city")
	must(runCLI(t, env, "", "trust", "import-certified", "--data", hubB, certs["b"]), "import B's own certificate")
	must(runCLI(t, env, "", "trust", "import-certified", "--data", hubB, certs["a"]), "import A's certificate")
	d := untilReason(t, gate, tok, passA, "ok", 15*time.Second)
	t.Logf("PROPAGATION certificate imported at hub B -> A's pass allowed at B's gate: %v", d.Round(time.Millisecond))

	retire := filepath.Join(root, "a.retire")
	must(runCLI(t, nil, "", "city", "retire", "--city-key", key, "--cert", certs["a"], "--out", retire), "retire A")
	must(runCLI(t, env, "", "trust", "import-certified", "--data", hubB, retire), "import retirement")
	d = untilReason(t, gate, tok, passA, "unknown_issuer", 15*time.Second)
	t.Logf("PROPAGATION retirement imported at hub B -> A's pass unknown_issuer at B's gate: %v", d.Round(time.Millisecond))
	gate.stopClean()
	hub.stopClean()
}
