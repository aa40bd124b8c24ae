package main

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"passgate/internal/natstest"
	"passgate/store"
)

// The city's records with real processes: A's certificate, imported at
// A's hub only, reaches B's hub over the city stream and B's running
// gate through B's trust feed, and B's reaches A's hub the same way; a retirement published with one command
// by the console makes A's pass unknown_issuer there again. A hub's
// credentials cannot publish a retirement, and a file that is not one
// is never sent.
func TestCity_TrustRecordsCarriedByTheCity(t *testing.T) {
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
	idA, idB := districtIDOf(t, hubA), districtIDOf(t, hubB)
	c := natstest.Start(t, idA, idB)
	pA := startCityHub(t, "hub A", hubA, c, idA, false)
	pB := startCityHub(t, "hub B", hubB, c, idB, true)
	must(runCLI(t, env, "", "enrol", "--data", gateB, "--hub", pB.https, "--code", code), "enrol gate-b")
	tok := must(runCLI(t, env, "", "device", "add", "--data", gateB, "gate-b-scanner"), "device add")
	gate := startSyncNode(t, "gate B", gateB, false)

	cityFP := fingerprintIn(t, must(runCLI(t, nil, "", "city", "init", "--out", cityDir, "--city", "xian"), "city init"))
	key, anchor := filepath.Join(cityDir, "city-root.key"), filepath.Join(cityDir, "city-root.anchor")
	for _, dir := range []string{hubA, hubB} {
		must(runCLI(t, env, "", "trust", "city", "--data", dir, anchor, "--fingerprint", cityFP), "trust city")
	}
	exported := runCLI(t, env, "", "trust", "export", "--data", hubA, "--out", filepath.Join(root, "a.anchor"))
	if exported.code != 0 {
		t.Fatalf("trust export: %s", exported.stderr)
	}
	certA, retireA := filepath.Join(root, "a.cert"), filepath.Join(root, "a.retire")
	must(runCLI(t, nil, "", "city", "certify", "--city-key", key, "--district", filepath.Join(root, "a.anchor"),
		"--fingerprint", fingerprintIn(t, exported.stderr), "--out", certA), "certify A")
	must(runCLI(t, env, "", "trust", "import-certified", "--data", hubA, certA), "import A's certificate at A")
	untilReason(t, gate, tok, passA, "ok", 20*time.Second)

	// The other way: B's certificate, imported at B only, lets A's hub
	// take B's passes.
	passB := must(runCLI(t, env, "", "issue", "--data", hubB, "--name", "张三明", "--id", "610113199001011230", "--tested-at", tested), "issue at B")
	tokA := must(runCLI(t, env, "", "device", "add", "--data", hubA, "hub-a-scanner"), "device add at A")
	if _, reason, _ := scanAt(t, pA, tokA, passB); reason != "unknown_issuer" {
		t.Fatalf("B's pass at A before B's certificate: %s", reason)
	}
	exportedB := runCLI(t, env, "", "trust", "export", "--data", hubB, "--out", filepath.Join(root, "b.anchor"))
	if exportedB.code != 0 {
		t.Fatalf("trust export: %s", exportedB.stderr)
	}
	certB := filepath.Join(root, "b.cert")
	must(runCLI(t, nil, "", "city", "certify", "--city-key", key, "--district", filepath.Join(root, "b.anchor"),
		"--fingerprint", fingerprintIn(t, exportedB.stderr), "--out", certB), "certify B")
	must(runCLI(t, env, "", "trust", "import-certified", "--data", hubB, certB), "import B's certificate at B")
	untilReason(t, pA, tokA, passB, "ok", 20*time.Second)

	must(runCLI(t, nil, "", "city", "retire", "--city-key", key, "--cert", certA, "--out", retireA), "retire A")
	console := []string{"city", "publish-retire", "--city", c.URLs(), "--city-anchor", anchor}
	// Not a retirement: refused before anything is sent.
	if r := runCLI(t, nil, "", append(console, "--city-creds", c.ConsoleSeedFile(), certA)...); r.code == 0 || !strings.Contains(r.stderr, "not a retirement") {
		t.Fatalf("publish-retire of a certificate: %d %s", r.code, r.stderr)
	}
	// A hub's credentials: the engine refuses.
	if r := runCLI(t, nil, "", append(console, "--city-creds", c.SeedFile(idB), "--timeout", "2s", retireA)...); r.code == 0 {
		t.Fatalf("a hub published a retirement: %s", r.stdout)
	}
	dbB := rawDB(t, hubB)
	if n := count(t, dbB, `SELECT count(*) FROM keys WHERE district = ?`, idA); n != 1 {
		t.Fatalf("hub B holds %d of A's roots, want 1", n)
	}
	out := must(runCLI(t, nil, "", append(console, "--city-creds", c.ConsoleSeedFile(), retireA)...), "publish-retire")
	if !strings.Contains(out, "retired from") {
		t.Fatalf("publish-retire said %q", out)
	}
	untilReason(t, gate, tok, passA, "unknown_issuer", 20*time.Second)
	waitFor(t, 10*time.Second, "hub A did not apply its own root's retirement", func() bool {
		return count(t, rawDB(t, hubA), `SELECT count(*) FROM audit WHERE action = ? AND actor = 'city' AND detail LIKE '%retire%'`, store.AuditCityRecordApplied) == 1
	})
	if n := count(t, dbB, `SELECT count(*) FROM audit WHERE action = ? AND actor = ?`, store.AuditCityRecordApplied, "city:"+idA); n != 1 {
		t.Fatalf("hub B audited %d certificates from A's trust subject, want 1", n)
	}
	gate.stopClean()
}
