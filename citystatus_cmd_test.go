package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"passgate/store"
)

// `city status` end to end: a person's passes, issued in two districts
// under the city subject, allowed at both hubs' gates; the console's
// command turns the person red city-wide, and both gates refuse both
// passes within 10 s, each hub recording the change once under the
// officer's name; the command records it in its own audit trail. A
// hub's credentials cannot publish it.
func TestCity_StatusChangedCityWide(t *testing.T) {
	f := newCityFixture(t)
	must := mustSucceed(t)
	tested := time.Now().Add(-time.Hour).Format(time.RFC3339)
	var passes, tokens []string
	for i, d := range f.ids {
		passes = append(passes, must(runCLI(t, f.env, "", "issue", "--data", f.dirs[i], "--name", "王五", "--id", cityPersonID, "--tested-at", tested), "issue"))
		tokens = append(tokens, must(runCLI(t, f.env, "", "device", "add", "--data", f.dirs[i], "gate-"+d), "device add"))
		if dec, reason, _ := scanAt(t, f.hubs[i], tokens[i], passes[i]); dec != "allow" {
			t.Fatalf("check at %s: %s %s", d, dec, reason)
		}
	}
	cityDir := t.TempDir()
	args := append([]string{"city", "status", "--data", cityDir, "--id", "-", "--color", "red", "--reason", "密接 close contact", "--as", "officer-3"}, f.cityArgs()...)

	// A reason no hub would take (a terminal escape) is refused before
	// anything is sent.
	bad := append([]string{}, args...)
	for i, a := range bad {
		if a == "密接 close contact" {
			bad[i] = "a\x1b[2Jb"
		}
	}
	if r := runCLI(t, f.env, cityPersonID+"\n", bad...); r.code != exitError || !strings.Contains(r.stderr, "--reason") {
		t.Fatalf("control characters in the reason: exit %d %s", r.code, r.stderr)
	}

	// A hub's own credentials: the engine refuses, nothing is published.
	hubArgs := append([]string{}, args...)
	for i, a := range hubArgs {
		if a == f.cluster.ConsoleSeedFile() {
			hubArgs[i] = f.cluster.SeedFile(f.ids[0])
		}
	}
	if r := runCLI(t, f.env, cityPersonID+"\n", append(hubArgs, "--timeout", "3s")...); r.code == 0 {
		t.Fatalf("published with a hub's credentials: %s", r.stdout)
	}

	r := runCLI(t, f.env, cityPersonID+"\n", args...)
	if r.code != 0 || !strings.Contains(r.stdout, "published to the city") || strings.Contains(r.stdout+r.stderr, cityPersonID) {
		t.Fatalf("city status: exit %d %s %s", r.code, r.stdout, r.stderr)
	}
	for i := range f.ids {
		if d := untilReason(t, f.hubs[i], tokens[i], passes[i], "revoked", 10*time.Second); d > 10*time.Second {
			t.Fatalf("revoked after %v", d)
		}
	}
	for i, db := range f.dbs {
		n := 0
		if err := db.FindAudit(context.Background(), store.AuditFilter{}, func(rec *store.AuditRecord) error {
			if rec.Action == store.AuditCityStatusApplied && rec.Actor == "city:officer-3" {
				n++
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if n != 1 {
			t.Errorf("hub %s recorded the change %d times", f.ids[i], n)
		}
	}
	city, err := store.Open(context.Background(), cityDir)
	if err != nil {
		t.Fatal(err)
	}
	defer city.Close()
	asked := 0
	city.FindAudit(context.Background(), store.AuditFilter{}, func(rec *store.AuditRecord) error {
		if rec.Action == store.AuditCityStatusAsked && !strings.Contains(string(rec.Detail), cityPersonID) {
			asked++
		}
		return nil
	})
	if asked != 1 {
		t.Fatalf("%d status changes recorded by the console, want 1", asked)
	}
}
