package main

import (
	"context"
	"encoding/json"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"passgate/pass"
	"passgate/store"
)

// startSyncNode serves dir as a real process of the district test.
func startSyncNode(t *testing.T, name, dir string, withTLS bool) *proc {
	t.Helper()
	args := []string{"serve", "--data", dir, "--addr", "127.0.0.1:0", "--log-level", "info"}
	if withTLS {
		args = append(args, "--tls-addr", "127.0.0.1:0")
	}
	return start(t, procOpts{name: name, args: args, env: map[string]string{"PASSGATE_ADMIN_PASSWORD": "district test password"}, https: withTLS})
}

// scanAt checks payload at a node through its device API.
func scanAt(t *testing.T, n *proc, token, payload string) (decision, reason string, id int64) {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"payload": payload})
	req, _ := http.NewRequest(http.MethodPost, n.http+"/api/v1/scans", strings.NewReader(string(body)))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("scan at %s: %v", n.name, err)
	}
	defer resp.Body.Close()
	var d struct {
		Decision string `json:"decision"`
		Reason   string `json:"reason"`
		ScanID   int64  `json:"scan_id"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&d); err != nil {
		t.Fatalf("scan at %s: %d: %v", n.name, resp.StatusCode, err)
	}
	return d.Decision, d.Reason, d.ScanID
}

// untilDenied scans payload at n every 100 ms until it is denied and
// returns how long that took from start, failing after limit or when it
// is denied for another reason than want.
func untilDenied(t *testing.T, n *proc, token, payload, want string, start time.Time, limit time.Duration) time.Duration {
	t.Helper()
	for {
		dec, reason, _ := scanAt(t, n, token, payload)
		if dec == "deny" {
			if reason != want {
				t.Fatalf("denied for %q, want %q", reason, want)
			}
			return time.Since(start)
		}
		if time.Since(start) > limit {
			t.Fatalf("%s still allows the pass %v after the change", n.name, time.Since(start))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func withStore(t *testing.T, dir string, fn func(db *store.DB)) {
	t.Helper()
	db, err := store.Open(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	fn(db)
}

// TestSync_District runs a district on loopback with real processes: a
// hub and two enrolled appliances, A (issues) and B (checks only).
func TestSync_District(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs real processes")
	}
	ctx := context.Background()
	root := t.TempDir()
	hubDir, aDir, bDir := filepath.Join(root, "hub"), filepath.Join(root, "a"), filepath.Join(root, "b")
	env := map[string]string{"PASSGATE_ADMIN_PASSWORD": "district test password"}
	must := mustSucceed(t)

	// The hub admin registers both appliances; the codes pin the hub.
	codeA := must(runCLI(t, env, "", "hub", "add", "--data", hubDir, "--name", "gate-a", "--issuer"), "hub add gate-a")
	codeB := must(runCLI(t, env, "", "hub", "add", "--data", hubDir, "--name", "gate-b"), "hub add gate-b")
	hub := startSyncNode(t, "hub", hubDir, true)

	// B first, so that A's issuer key does not exist when B enrols.
	must(runCLI(t, env, "", "enroll", "--data", bDir, "--hub", hub.https, "--code", codeB), "enrol b")
	out := must(runCLI(t, env, "", "enroll", "--data", aDir, "--hub", hub.https, "--code", codeA), "enrol a")
	if !strings.Contains(out, `enrolled as "gate-a"`) || !strings.Contains(out, "issues and checks") {
		t.Fatalf("enrol a said %q", out)
	}
	refuseBadEnrolments(t, must, env, root, hub.https, aDir, codeA, codeB)

	tokA := must(runCLI(t, env, "", "device", "add", "--data", aDir, "desk-a"), "device add a")
	tokB := must(runCLI(t, env, "", "device", "add", "--data", bDir, "gate-b-scanner"), "device add b")
	tested := time.Now().Add(-time.Hour).Format(time.RFC3339)
	const id1, id2, id3 = "110101199003071233", "E7654321", "G1234567"
	pass1 := must(runCLI(t, env, "", "issue", "--data", aDir, "--name", "李四", "--id", id1, "--tested-at", tested), "issue 1 at a")
	pass2 := must(runCLI(t, env, "", "issue", "--data", aDir, "--name", "王五", "--id", id2, "--tested-at", tested), "issue 2 at a")
	pass3 := must(runCLI(t, env, "", "issue", "--data", aDir, "--name", "赵六", "--id", id3, "--tested-at", tested), "issue 3 at a")

	kidA := signingKeyID(t, aDir)
	bKnows := func() (known, revoked bool) {
		withStore(t, bDir, func(db *store.DB) {
			keys, _ := db.FindKeys(ctx, store.KeyFilter{})
			for _, k := range keys {
				if k.KID == kidA {
					known, revoked = true, !k.RevokedAt.IsZero()
				}
			}
		})
		return known, revoked
	}
	if known, _ := bKnows(); known {
		t.Fatal("B knows A's issuer key before it ever synced")
	}
	// B checks A's pass offline: the pass carries A's certificate, which
	// the district root (in B's trust list since enrolment) signed.
	r := runCLI(t, env, "", "check", "--data", bDir, pass1)
	if r.code != 0 || !strings.Contains(r.stdout, `"decision":"allow"`) {
		t.Fatalf("B checking A's pass offline: exit %d %s %s", r.code, r.stdout, r.stderr)
	}
	if known, _ := bKnows(); known {
		t.Fatal("checking made B learn A's key: the check did not go through the certificate")
	}

	a := startSyncNode(t, "appliance A", aDir, false)
	b := startSyncNode(t, "appliance B", bDir, false)

	scansReachHubOnce(t, a, b, tokA, tokB, hubDir, []string{pass1, pass2, pass3})

	// A status change at the hub: B denies within 10 s.
	must(runCLI(t, env, "", "issue", "--data", hubDir, "--name", "李四", "--id", id1, "--tested-at", tested), "register at hub")
	start := time.Now()
	must(runCLI(t, env, "", "status", "--data", hubDir, "--id", id1, "--color", "red", "--reason", "positive test"), "status at hub")
	dHub := untilDenied(t, b, tokB, pass1, "revoked", start, 10*time.Second)
	t.Logf("PROPAGATION status change at hub -> denied at B: %v", dHub.Round(time.Millisecond))

	// A status change at appliance A: up to the hub, down to B.
	start = time.Now()
	must(runCLI(t, env, "", "status", "--data", aDir, "--id", id3, "--color", "red", "--reason", "close contact"), "status at a")
	dA := untilDenied(t, b, tokB, pass3, "revoked", start, 10*time.Second)
	t.Logf("PROPAGATION status change at A -> denied at B: %v", dA.Round(time.Millisecond))

	// Retiring A revokes its issuer key everywhere: B denies pass2.
	if dec, _, _ := scanAt(t, b, tokB, pass2); dec != "allow" {
		t.Fatal("pass 2 denied before A was retired")
	}
	start = time.Now()
	must(runCLI(t, env, "", "hub", "retire", "--data", hubDir, "--name", "gate-a", "--reason", "decommissioned"), "retire a")
	dRetire := untilDenied(t, b, tokB, pass2, "issuer_revoked", start, 10*time.Second)
	t.Logf("PROPAGATION retire A at hub -> A's passes denied at B: %v", dRetire.Round(time.Millisecond))
	if known, revoked := bKnows(); !known || !revoked {
		t.Fatalf("B's record of A's key: known %v revoked %v", known, revoked)
	}
	// A hears it was retired.
	waitForLog(t, a, "retired", 10*time.Second)
	out = must(runCLI(t, env, "", "hub", "list", "--data", hubDir, "--json"), "hub list")
	if !strings.Contains(out, `"name":"gate-a","state":"retired"`) || !strings.Contains(out, `"name":"gate-b","state":"enrolled"`) {
		t.Fatalf("hub list:\n%s", out)
	}
	a.stopClean()
	b.stopClean()
	hub.stopClean()
}

// refuseBadEnrolments tries a spent code, another hub's code and a
// directory that holds a district: each is refused with its reason.
func refuseBadEnrolments(t *testing.T, must func(result, string) string, env map[string]string, root, hubURL, aDir, codeA, codeB string) {
	t.Helper()
	// A code works once.
	if r := runCLI(t, env, "", "enroll", "--data", filepath.Join(root, "c"), "--hub", hubURL, "--code", codeA); r.code == 0 ||
		!strings.Contains(r.stderr, "already used") {
		t.Fatalf("second use of a code: exit %d %s", r.code, r.stderr)
	}
	// A code made by another hub pins another certificate: refused before
	// the secret is sent, with a message that says so.
	foreign := must(runCLI(t, env, "", "hub", "add", "--data", filepath.Join(root, "other-hub"), "--name", "gate-a"), "hub add at another hub")
	if r := runCLI(t, env, "", "enroll", "--data", filepath.Join(root, "d"), "--hub", hubURL, "--code", foreign); r.code == 0 ||
		!strings.Contains(r.stderr, "not the hub this appliance is pinned to") {
		t.Fatalf("enrol with another hub's code: exit %d %s", r.code, r.stderr)
	}
	// A directory with a district is not enrolled again.
	if r := runCLI(t, env, "", "enroll", "--data", aDir, "--hub", hubURL, "--code", codeB); r.code == 0 ||
		!strings.Contains(r.stderr, "already holds a district") {
		t.Fatalf("enrol into a used directory: exit %d %s", r.code, r.stderr)
	}
}

// scansReachHubOnce scans passes at a and b; A's scans reach the hub
// exactly once.
func scansReachHubOnce(t *testing.T, a, b *proc, tokA, tokB, hubDir string, passes []string) {
	t.Helper()
	ctx := context.Background()
	var err error
	// Scans at A reach the hub exactly once.
	var aIDs []int64
	for i := range 30 {
		p := passes[i%3]
		dec, _, id := scanAt(t, a, tokA, p)
		if dec != "allow" || id == 0 {
			t.Fatalf("scan %d at A: %s id %d", i, dec, id)
		}
		aIDs = append(aIDs, id)
	}
	for _, p := range passes {
		if dec, reason, _ := scanAt(t, b, tokB, p); dec != "allow" {
			t.Fatalf("B denies a valid pass from A: %s", reason)
		}
	}
	start := time.Now()
	var held []*store.Scan
	withStore(t, hubDir, func(db *store.DB) {
		for time.Since(start) < 15*time.Second {
			held, _, err = db.DistrictScans(ctx, "gate-a", 0, store.MaxScanLimit)
			if err != nil {
				t.Fatal(err)
			}
			if len(held) >= len(aIDs) {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
	})
	t.Logf("A's %d scans at the hub after %v", len(aIDs), time.Since(start).Round(time.Millisecond))
	time.Sleep(2 * time.Second) // more push rounds: nothing may arrive twice
	withStore(t, hubDir, func(db *store.DB) {
		held, _, err = db.DistrictScans(ctx, "gate-a", 0, store.MaxScanLimit)
	})
	var heldIDs []int64
	for _, s := range held {
		heldIDs = append(heldIDs, s.ID)
	}
	if !slices.Equal(heldIDs, aIDs) {
		t.Fatalf("hub holds A's scans %v, want exactly %v", heldIDs, aIDs)
	}
}

// waitForLog waits until n's log contains text.
func waitForLog(t *testing.T, n *proc, text string, limit time.Duration) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !strings.Contains(n.logs.String(), text) {
		if time.Now().After(deadline) {
			t.Fatalf("%s did not log %q:\n%s", n.name, text, n.logs)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// signingKeyID is the issuer key id of the appliance in dir.
func signingKeyID(t *testing.T, dir string) pass.KeyID {
	t.Helper()
	var kid pass.KeyID
	withStore(t, dir, func(db *store.DB) {
		k, err := db.SigningKey(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		kid = k.KID
	})
	return kid
}

// mustSucceed returns a check that a command exited 0, giving its
// trimmed output.
func mustSucceed(t *testing.T) func(r result, what string) string {
	return func(r result, what string) string {
		t.Helper()
		if r.code != 0 {
			t.Fatalf("%s: exit %d\n%s%s", what, r.code, r.stdout, r.stderr)
		}
		return strings.TrimSpace(r.stdout)
	}
}
