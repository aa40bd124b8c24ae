package main

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"passgate/store"
)

// TestSync_HubRestoredTakesBackRevocations runs a district as real
// processes: a hub and two gates checking under load. The hub is backed
// up, two people are coded red there, and the hub is restored from the
// backup and started again. The gates hand the two revocations back: the
// hub lists them again (once each, audited), every gate goes on denying
// the passes, and a gate enrolled after the restore denies them too.
func TestSync_HubRestoredTakesBackRevocations(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs real processes")
	}
	ctx := context.Background()
	root := t.TempDir()
	hubDir := filepath.Join(root, "hub")
	env := map[string]string{"PASSGATE_ADMIN_PASSWORD": "district test password"}
	must := mustSucceed(t)
	hubAddr := freeAddr(t)
	hubURL := "https://" + hubAddr
	tested := time.Now().Add(-time.Hour).Format(time.RFC3339)
	const id1, id2, idFine = "110101199003071233", "E7654321", "G1234567"
	// The hub registers three people and issues their passes.
	pass1 := must(runCLI(t, env, "", "issue", "--data", hubDir, "--name", "李四", "--id", id1, "--tested-at", tested), "issue 1")
	pass2 := must(runCLI(t, env, "", "issue", "--data", hubDir, "--name", "王五", "--id", id2, "--tested-at", tested), "issue 2")
	fine := must(runCLI(t, env, "", "issue", "--data", hubDir, "--name", "赵六", "--id", idFine, "--tested-at", tested), "issue 3")
	hub := crashNode(t, "hub", hubDir, hubAddr)

	type gate struct {
		p   *proc
		tok string
	}
	enrolGate := func(name string) gate {
		t.Helper()
		dir := filepath.Join(root, name)
		code := must(runCLI(t, env, "", "hub", "add", "--data", hubDir, "--name", name), "hub add "+name)
		must(runCLI(t, env, "", "enroll", "--data", dir, "--hub", hubURL, "--code", code), "enrol "+name)
		tok := must(runCLI(t, env, "", "device", "add", "--data", dir, name+"-scanner"), "device add "+name)
		return gate{p: startSyncNode(t, name, dir, false), tok: tok}
	}
	gates := []gate{enrolGate("gate-a"), enrolGate("gate-b")}
	stop := make(chan struct{})
	loaded := make(chan []int64, len(gates))
	for _, g := range gates {
		go func() { loaded <- load(g.p.http, g.tok, fine, 2, stop) }()
	}

	backup := filepath.Join(root, "hub-backup.db")
	must(runCLI(t, env, "", "backup", "--data", hubDir, "--out", backup), "backup")
	held := hubRevocations(t, hubDir)
	for _, id := range []string{id1, id2} {
		must(runCLI(t, env, "", "status", "--data", hubDir, "--id", id, "--color", "red", "--reason", "positive test"), "status red")
	}
	for _, g := range gates {
		for _, p := range []string{pass1, pass2} {
			untilDenied(t, g.p, g.tok, p, "revoked", time.Now(), 15*time.Second)
		}
	}
	made := hubRevocations(t, hubDir)[len(held):]
	if len(made) != 2 {
		t.Fatalf("%d revocations made after the backup, want 2", len(made))
	}

	// Restored from the backup, under load, at the same address.
	hub.stop()
	path := filepath.Join(hubDir, store.FileName)
	for _, f := range []string{path + "-wal", path + "-shm"} {
		if err := os.Remove(f); err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(backup)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path+".restore", b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path+".restore", path); err != nil {
		t.Fatal(err)
	}
	if n := len(hubRevocations(t, hubDir)); n != len(held) {
		t.Fatalf("the restored hub holds %d revocations, the backup %d", n, len(held))
	}
	hub.restart()

	deadline := time.Now().Add(30 * time.Second)
	for {
		now := hubRevocations(t, hubDir)
		taken := 0
		for _, m := range made {
			n := 0
			for _, r := range now {
				if r.Kind == m.Kind && string(r.Target) == string(m.Target) && r.Before.Equal(m.Before) {
					n++
				}
			}
			if n > 1 {
				t.Fatalf("revocation %x held %d times", m.Target, n)
			}
			taken += n
		}
		if taken == len(made) {
			if len(now) != len(held)+len(made) {
				t.Fatalf("hub holds %d revocations, want %d", len(now), len(held)+len(made))
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the restored hub took back %d of %d revocations\n%s", taken, len(made), hub.logs)
		}
		time.Sleep(200 * time.Millisecond)
	}
	withStore(t, hubDir, func(db *store.DB) {
		restored := 0
		if err := db.FindAudit(ctx, store.AuditFilter{}, func(r *store.AuditRecord) error {
			if r.Action == store.AuditRevocationsRestored {
				restored++
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if restored == 0 {
			t.Error("no audit record of the revocations taken back")
		}
	})

	late := enrolGate("gate-late")
	for _, g := range append(gates, late) {
		for _, p := range []string{pass1, pass2} {
			untilDenied(t, g.p, g.tok, p, "revoked", time.Now(), 15*time.Second)
		}
		if dec, reason, _ := scanAt(t, g.p, g.tok, fine); dec != "allow" {
			t.Errorf("%s denies a valid pass: %s", g.p.name, reason)
		}
	}
	close(stop)
	for range gates {
		if ids := <-loaded; len(ids) == 0 {
			t.Error("a gate acknowledged no scan under load")
		}
	}
	for _, g := range append(gates, late) {
		g.p.stopClean()
	}
	hub.stopClean()
}

// hubRevocations reads the revocations the hub in dir holds.
func hubRevocations(t *testing.T, dir string) []*store.Revocation {
	t.Helper()
	var list []*store.Revocation
	withStore(t, dir, func(db *store.DB) {
		var err error
		if list, err = db.RevocationsSince(context.Background(), 0); err != nil {
			t.Fatal(err)
		}
	})
	return list
}
