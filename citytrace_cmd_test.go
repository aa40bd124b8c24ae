package main

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"passgate/citytrace"
	"passgate/pass"
	"passgate/store"
)

// `city trace` end to end: two districts joined to the city (their hubs
// answering on an in-process NATS server), the officer's command finds
// the person's checks in both, names the district that has no hub
// connected and exits 3, and records the query in its own audit trail.
func TestCLI_CityTrace(t *testing.T) {
	ctx := context.Background()
	dirA, dirB, cityDir := t.TempDir(), t.TempDir(), t.TempDir()
	env, _ := twoDistricts(t, dirA, dirB)
	keyFile := filepath.Join(t.TempDir(), "city-pseudonym.key")
	r := runCLI(t, nil, "", "city", "pseudonym-key", "--out", keyFile)
	check := regexp.MustCompile(`check: (\S+)`).FindStringSubmatch(r.stdout)
	if r.code != 0 || check == nil {
		t.Fatalf("pseudonym-key: %s", r.stderr)
	}
	kb, _ := os.ReadFile(keyFile)
	key, err := pass.ParseCityKey(kb)
	if err != nil {
		t.Fatal(err)
	}
	const id = "11010519491231002X"
	subject := pass.Pseudonym(key, id)
	t0 := time.Now().Add(-2 * time.Hour).Truncate(time.Second)
	users := []*server.User{{Username: "city", Password: "city-pw", Permissions: &server.Permissions{
		Publish: &server.SubjectPermission{Allow: []string{citytrace.SubjectPrefix + ">"}}, Subscribe: &server.SubjectPermission{Allow: []string{"_INBOX.>"}}}}}
	var ids []string
	var dbs []*store.DB
	for i, dir := range []string{dirA, dirB} {
		if r := runCLI(t, env, "", "trust", "city-key", keyFile, "--data", dir, "--check", check[1]); r.code != 0 {
			t.Fatalf("import: %s", r.stderr)
		}
		db, err := store.Open(ctx, dir)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		d, err := db.District(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := db.LogScan(ctx, &store.Scan{At: t0.Add(time.Duration(i) * time.Minute), Source: "gate", Decision: "allow", Reason: "ok", Subject: subject}); err != nil {
			t.Fatal(err)
		}
		ids, dbs = append(ids, d.ID), append(dbs, db)
		users = append(users, &server.User{Username: d.ID, Password: "pw", Permissions: &server.Permissions{
			Subscribe: &server.SubjectPermission{Allow: []string{citytrace.Subject(d.ID)}},
			Response:  &server.ResponsePermission{MaxMsgs: 1}}})
	}
	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true, Users: users})
	if err != nil {
		t.Fatal(err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server did not start")
	}
	t.Cleanup(srv.Shutdown)
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for i, d := range ids {
		nc, err := nats.Connect(srv.ClientURL(), nats.UserInfo(d, "pw"))
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		go citytrace.Serve(sctx, nc, dbs[i], d) //nolint:errcheck // a failed subscription shows as a missing district below
	}
	time.Sleep(300 * time.Millisecond) // the hubs subscribe
	pw := filepath.Join(t.TempDir(), "pw")
	os.WriteFile(pw, []byte("city-pw\n"), 0o600)
	args := []string{"city", "trace", "--data", cityDir, "--id", "-", "--from", t0.Add(-time.Hour).Format(time.RFC3339),
		"--to", t0.Add(time.Hour).Format(time.RFC3339), "--nats", srv.ClientURL(), "--nats-user", "city", "--nats-password-file", pw,
		"--city-key", keyFile, "--timeout", "2s", "--as", "officer-1"}
	r = runCLI(t, env, id+"\n", append(args, "--districts", strings.Join(append(ids, "lintong"), ","))...)
	if r.code != exitIncomplete || !strings.Contains(r.stderr, "lintong") {
		t.Fatalf("with a district missing: exit %d, %s", r.code, r.stderr)
	}
	if strings.Count(r.stdout, `"type":"check"`) != 2 || !regexp.MustCompile(`"district":"lintong","type":"missing"`).MatchString(r.stdout) {
		t.Fatalf("output %s", r.stdout)
	}
	if strings.Contains(r.stdout+r.stderr, id) {
		t.Fatal("the ID number was written")
	}
	r = runCLI(t, env, id+"\n", append(args, "--districts", strings.Join(ids, ","))...)
	if r.code != 0 || !strings.Contains(r.stdout, `"complete":true`) {
		t.Fatalf("all districts: exit %d %s %s", r.code, r.stderr, r.stdout)
	}
	city, err := store.Open(ctx, cityDir)
	if err != nil {
		t.Fatal(err)
	}
	defer city.Close()
	asked := 0
	city.FindAudit(ctx, store.AuditFilter{}, func(rec *store.AuditRecord) error {
		if rec.Action == store.AuditCityTraceAsked && rec.Subject != "" && !strings.Contains(string(rec.Detail), id) {
			asked++
		}
		return nil
	})
	if asked != 2 {
		t.Fatalf("%d city trace records, want 2", asked)
	}
	for _, db := range dbs {
		n := 0
		db.FindAudit(ctx, store.AuditFilter{}, func(rec *store.AuditRecord) error {
			if rec.Action == store.AuditTrace && rec.Actor == "city:officer-1" {
				n++
			}
			return nil
		})
		if n != 2 {
			t.Errorf("a hub recorded %d city traces, want 2", n)
		}
	}
}
