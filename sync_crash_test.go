package main

import (
	"context"
	"math/rand/v2"
	"net"
	"path/filepath"
	"testing"
	"time"

	"passgate/store"
)

// crashNode serves dir as a real process under the name name; tlsAddr,
// when set, is the fixed HTTPS address (a hub restarted after a kill must
// come back where its appliances look for it).
func crashNode(t *testing.T, name, dir, tlsAddr string) *proc {
	t.Helper()
	args := []string{"serve", "--data", dir, "--addr", "127.0.0.1:0", "--log-level", "warn"}
	if tlsAddr != "" {
		args = append(args, "--tls-addr", tlsAddr)
	}
	return start(t, procOpts{name: name, args: args, env: map[string]string{"PASSGATE_ADMIN_PASSWORD": "crash sync password"}, https: tlsAddr != ""})
}

// freeAddr is a loopback address free right now, for a process that must
// come back on the same address after a restart.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestSyncCrash_KillDuringPush runs a hub and an enrolled appliance as
// real processes, checks passes at the appliance under load, and kills
// the appliance (mid-push: its sync loop pushes the whole time) and the
// hub (mid-ingest) with SIGKILL, several times. Afterwards every scan
// acknowledged to a gate is in the appliance's log, and the hub holds
// exactly that log: nothing lost, nothing twice, in order.
func TestSyncCrash_KillDuringPush(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills real processes")
	}
	root := t.TempDir()
	hubDir, appDir := filepath.Join(root, "hub"), filepath.Join(root, "gate")
	env := map[string]string{"PASSGATE_ADMIN_PASSWORD": "crash sync password"}
	must := mustSucceed(t)
	code := must(runCLI(t, env, "", "hub", "add", "--data", hubDir, "--name", "gate-a", "--issuer"), "hub add")
	hubAddr := freeAddr(t)
	hub := crashNode(t, "hub", hubDir, hubAddr)
	must(runCLI(t, env, "", "enroll", "--data", appDir, "--hub", "https://"+hubAddr, "--code", code), "enroll")
	token := must(runCLI(t, env, "", "device", "add", "--data", appDir, "crash-gate"), "device add")
	payload := must(runCLI(t, env, "", "issue", "--data", appDir, "--name", "王五", "--id", "E1234567",
		"--tested-at", time.Now().Add(-time.Hour).Format(time.RFC3339)), "issue")

	var acked []int64
	rng := rand.New(rand.NewPCG(1, 2))
	const rounds = 5
	for round := range rounds {
		app := crashNode(t, "appliance", appDir, "")
		stop := make(chan struct{})
		got := make(chan []int64, 1)
		go func() { got <- load(app.http, token, payload, 8, stop) }()
		time.Sleep(time.Duration(800+rng.IntN(1200)) * time.Millisecond)
		if round%2 == 1 {
			// The hub dies while it ingests the appliance's pushes, and
			// comes back where the appliance expects it.
			hub.kill9()
			time.Sleep(300 * time.Millisecond)
			hub.restart()
			time.Sleep(time.Duration(300+rng.IntN(700)) * time.Millisecond)
		}
		app.kill9()
		close(stop)
		ids := <-got
		if len(ids) == 0 {
			t.Fatalf("round %d: no scan acknowledged\n%s", round, app.logs)
		}
		acked = append(acked, ids...)
	}

	// The appliance pushed while it was being killed: the hub already
	// holds part of its log.
	withCrashStore(t, hubDir, func(db *store.DB) {
		list, _, err := db.DistrictScans(context.Background(), "gate-a", 0, 1)
		if err != nil {
			t.Fatal(err)
		}
		if len(list) == 0 {
			t.Fatal("nothing reached the hub during the rounds: the kills did not happen mid-push")
		}
	})

	// Let the appliance catch up with a live hub, then compare.
	app := crashNode(t, "appliance", appDir, "")
	waitBacklogDrained(t, appDir, app, hub)
	app.stop()
	hub.stop()

	mine := loggedScans(t, appDir)
	have := make(map[int64]bool, len(mine))
	for _, s := range mine {
		have[s.ID] = true
	}
	for _, id := range acked {
		if !have[id] {
			t.Fatalf("scan %d was acknowledged to the gate but is not in the appliance's log", id)
		}
	}
	held := districtScans(t, hubDir, "gate-a")
	if len(held) != len(mine) {
		t.Fatalf("hub holds %d scans, the appliance logged %d", len(held), len(mine))
	}
	for i := range mine {
		if held[i].ID != mine[i].ID || !held[i].At.Equal(mine[i].At) || held[i].PassID != mine[i].PassID || held[i].Decision != mine[i].Decision {
			t.Fatalf("scan %d: hub %+v, appliance %+v", i, held[i], mine[i])
		}
	}
	t.Logf("%d rounds, %d scans acknowledged to gates, %d logged, all at the hub once, in order",
		rounds, len(acked), len(mine))
}

// withCrashStore opens the store in dir (beside a running process: the
// store takes turns for the write lock) for fn.
func withCrashStore(t *testing.T, dir string, fn func(db *store.DB)) {
	t.Helper()
	db, err := store.Open(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	fn(db)
}

// waitBacklogDrained waits (two minutes at most) until the appliance in
// appDir has pushed everything to the hub.
func waitBacklogDrained(t *testing.T, appDir string, app, hub *proc) {
	t.Helper()
	var err error
	deadline := time.Now().Add(120 * time.Second)
	for {
		var backlog int64
		withCrashStore(t, appDir, func(db *store.DB) {
			if backlog, err = db.SyncBacklog(context.Background()); err != nil {
				t.Fatal(err)
			}
		})
		if backlog == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("backlog of %d after 2 minutes\nappliance:\n%s\nhub:\n%s", backlog, app.logs, hub.logs)
		}
		time.Sleep(time.Second)
	}
}

// loggedScans is the whole scan log of the appliance in appDir.
func loggedScans(t *testing.T, appDir string) []*store.Scan {
	t.Helper()
	var mine []*store.Scan
	withCrashStore(t, appDir, func(db *store.DB) {
		for after := int64(0); ; {
			list, err := db.ScansAfter(context.Background(), after, store.MaxScanLimit)
			if err != nil {
				t.Fatal(err)
			}
			if len(list) == 0 {
				break
			}
			mine, after = append(mine, list...), list[len(list)-1].ID
		}
	})
	return mine
}

// districtScans is every scan the hub in hubDir holds of appliance.
func districtScans(t *testing.T, hubDir, appliance string) []*store.Scan {
	t.Helper()
	var held []*store.Scan
	withCrashStore(t, hubDir, func(db *store.DB) {
		for after := int64(0); ; {
			list, last, err := db.DistrictScans(context.Background(), appliance, after, store.MaxScanLimit)
			if err != nil {
				t.Fatal(err)
			}
			if len(list) == 0 {
				break
			}
			held, after = append(held, list...), last
		}
	})
	return held
}
