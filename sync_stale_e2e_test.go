package main

import (
	"context"
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"passgate/store"
)

// appReadyz reads an appliance's /readyz.
func appReadyz(t *testing.T, n *proc) (sync map[string]any, warnings []string) {
	t.Helper()
	resp, err := http.Get(n.http + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b struct {
		Sync     map[string]any `json:"sync"`
		Warnings []string       `json:"warnings"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&b); err != nil {
		t.Fatal(err)
	}
	return b.Sync, b.Warnings
}

// epochCount is how many sync epochs the appliance in dir has.
func epochCount(t *testing.T, dir string) int {
	t.Helper()
	var n int
	withStore(t, dir, func(db *store.DB) {
		list, err := db.SyncEpochs(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		n = len(list)
	})
	return n
}

// TestSync_PartitionedGateStale runs a hub and an enrolled appliance as
// real processes. Commands run against the appliance start no sync
// epoch, serving starts one. Once the hub is gone for longer than the
// policy's "stale after", /readyz warns, with the age of the lists
// exact to the last pull the appliance made.
func TestSync_PartitionedGateStale(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs real processes")
	}
	root := t.TempDir()
	hubDir, appDir := filepath.Join(root, "hub"), filepath.Join(root, "app")
	env := map[string]string{"PASSGATE_ADMIN_PASSWORD": "district test password"}
	must := mustSucceed(t)

	code := must(runCLI(t, env, "", "hub", "add", "--data", hubDir, "--name", "gate-s"), "hub add")
	must(runCLI(t, env, "", "policy", "--data", hubDir, "--stale-after", "5s"), "policy --stale-after")
	hub := startSyncNode(t, "hub", hubDir, true)
	must(runCLI(t, env, "", "enroll", "--data", appDir, "--hub", hub.https, "--code", code), "enroll")

	before := epochCount(t, appDir)
	for range 50 {
		if r := runCLI(t, env, "", "check", "--data", appDir, "not a pass"); r.code == 0 {
			t.Fatalf("check of garbage allowed: %s", r.stdout)
		}
	}
	if n := epochCount(t, appDir); n != before {
		t.Fatalf("50 checks made %d epochs", n-before)
	}

	app := startSyncNode(t, "appliance", appDir, false)
	if n := epochCount(t, appDir); n != before+1 {
		t.Fatalf("serve made %d epochs, want 1", n-before)
	}
	// Pulled, with the hub's threshold.
	deadline := time.Now().Add(15 * time.Second)
	for {
		sync, warnings := appReadyz(t, app)
		if sync != nil && sync["lists_stale_after_seconds"] == float64(5) && sync["lists_stale"] == false && len(warnings) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("appliance never fresh with the hub's policy: %v %v", sync, warnings)
		}
		time.Sleep(200 * time.Millisecond)
	}

	// Drained: the hub's list says so.
	must(runCLI(t, env, "", "hub", "drain", "--data", hubDir, "gate-s"), "hub drain")
	if out := must(runCLI(t, env, "", "hub", "list", "--data", hubDir, "--json"), "hub list"); !strings.Contains(out, `"name":"gate-s","state":"draining"`) {
		t.Fatalf("hub list after draining:\n%s", out)
	}

	stopping := time.Now()
	if err := hub.stop(); err != nil {
		t.Logf("hub stop: %v", err)
	}
	stopped := time.Now()
	time.Sleep(6 * time.Second)

	sync, warnings := appReadyz(t, app)
	now := time.Now()
	if sync["lists_stale"] != true || len(warnings) != 1 || !strings.Contains(warnings[0], "old") {
		t.Fatalf("readyz of a partitioned gate past the threshold: %v %v", sync, warnings)
	}
	last, err := time.Parse(time.RFC3339Nano, sync["last_pull"].(string))
	if err != nil {
		t.Fatal(err)
	}
	// The appliance pulls every 2 s while the hub answers: its last
	// successful pull is within about that before the hub went away,
	// and the age shown is counted from it.
	if last.Before(stopping.Add(-3*time.Second)) || last.After(stopped) {
		t.Fatalf("last pull %v, hub stopping at %v, stopped at %v", last, stopping, stopped)
	}
	age := time.Duration(sync["lists_age_seconds"].(float64)) * time.Second
	if truth := now.Sub(last); age < truth-2*time.Second || age > truth+time.Second {
		t.Fatalf("age shown %v, truth %v", age, truth)
	}
}
