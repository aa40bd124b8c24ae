package main

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
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

// cityFixture is two districts joined to the city, their hubs answering
// city traces on an in-process NATS server, and the person id checked
// once in each at t0.
type cityFixture struct {
	env             map[string]string
	keyFile, pwFile string
	natsURL         string
	ids             []string
	dbs             []*store.DB
	t0              time.Time
}

const cityPersonID = "11010519491231002X"

func newCityFixture(t *testing.T) *cityFixture {
	t.Helper()
	ctx := context.Background()
	dirA, dirB := t.TempDir(), t.TempDir()
	f := &cityFixture{}
	f.env, _ = twoDistricts(t, dirA, dirB)
	f.keyFile = filepath.Join(t.TempDir(), "city-pseudonym.key")
	r := runCLI(t, nil, "", "city", "pseudonym-key", "--out", f.keyFile)
	check := regexp.MustCompile(`check: (\S+)`).FindStringSubmatch(r.stdout)
	if r.code != 0 || check == nil {
		t.Fatalf("pseudonym-key: %s", r.stderr)
	}
	kb, _ := os.ReadFile(f.keyFile)
	key, err := pass.ParseCityKey(kb)
	if err != nil {
		t.Fatal(err)
	}
	subject := pass.Pseudonym(key, cityPersonID)
	f.t0 = time.Now().Add(-2 * time.Hour).Truncate(time.Second)
	users := []*server.User{{Username: "city", Password: "city-pw", Permissions: &server.Permissions{
		Publish: &server.SubjectPermission{Allow: []string{citytrace.SubjectPrefix + ">"}}, Subscribe: &server.SubjectPermission{Allow: []string{"_INBOX.>"}}}}}
	for i, dir := range []string{dirA, dirB} {
		if r := runCLI(t, f.env, "", "trust", "city-key", f.keyFile, "--data", dir, "--check", check[1]); r.code != 0 {
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
		if err := db.LogScan(ctx, &store.Scan{At: f.t0.Add(time.Duration(i) * time.Minute), Source: "gate", Decision: "allow", Reason: "ok", Subject: subject}); err != nil {
			t.Fatal(err)
		}
		f.ids, f.dbs = append(f.ids, d.ID), append(f.dbs, db)
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
	f.natsURL = srv.ClientURL()
	sctx, cancel := context.WithCancel(ctx)
	t.Cleanup(cancel)
	subs := srv.NumSubscriptions()
	for i, d := range f.ids {
		nc, err := nats.Connect(f.natsURL, nats.UserInfo(d, "pw"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		go citytrace.Serve(sctx, nc, f.dbs[i], d) //nolint:errcheck // a failed subscription shows as a missing district
	}
	for deadline := time.Now().Add(5 * time.Second); srv.NumSubscriptions() < subs+uint32(len(f.ids)); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the hubs did not subscribe")
		}
	}
	f.pwFile = filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(f.pwFile, []byte("city-pw\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

// cityTraces counts the traces a hub answered for officer.
func cityTraces(t *testing.T, db *store.DB, officer string) int {
	t.Helper()
	n := 0
	if err := db.FindAudit(context.Background(), store.AuditFilter{}, func(rec *store.AuditRecord) error {
		if rec.Action == store.AuditTrace && rec.Actor == store.Actor("city:"+officer) {
			n++
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return n
}

// `city trace` end to end: two districts joined to the city (their hubs
// answering on an in-process NATS server), the officer's command finds
// the person's checks in both, names the district that has no hub
// connected and exits 3, and records the query in its own audit trail.
func TestCLI_CityTrace(t *testing.T) {
	ctx := context.Background()
	f := newCityFixture(t)
	env, keyFile, pw, t0, ids, dbs, id := f.env, f.keyFile, f.pwFile, f.t0, f.ids, f.dbs, cityPersonID
	cityDir := t.TempDir()
	args := []string{"city", "trace", "--data", cityDir, "--id", "-", "--from", t0.Add(-time.Hour).Format(time.RFC3339),
		"--to", t0.Add(time.Hour).Format(time.RFC3339), "--nats", f.natsURL, "--nats-user", "city", "--nats-password-file", pw,
		"--city-key", keyFile, "--timeout", "2s", "--as", "officer-1"}
	r := runCLI(t, env, id+"\n", append(args, "--districts", strings.Join(append(ids, "lintong"), ","))...)
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
		if n := cityTraces(t, db, "officer-1"); n != 2 {
			t.Errorf("a hub recorded %d city traces, want 2", n)
		}
	}
}

// serve in the city role, a real process: the commission's admin logs
// in to the console and traces the person across both districts; a
// district with no hub is named as missing.
func TestCity_ServeConsole(t *testing.T) {
	f := newCityFixture(t)
	p := start(t, procOpts{args: []string{"serve", "--data", t.TempDir(), "--addr", "127.0.0.1:0",
		"--city-nats", f.natsURL, "--city-nats-user", "city", "--city-nats-password-file", f.pwFile,
		"--city-key", f.keyFile, "--city-districts", strings.Join(append(f.ids, "lintong"), ","), "--city-timeout", "2s"},
		env: map[string]string{"PASSGATE_ADMIN_PASSWORD": "a long admin password"}})
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: 20 * time.Second}
	resp, err := c.PostForm(p.http+"/login", url.Values{"username": {"admin"}, "password": {"a long admin password"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	resp, err = c.PostForm(p.http+"/admin/city/trace", url.Values{"id_number": {cityPersonID},
		"from": {f.t0.Add(-time.Hour).Format(time.RFC3339)}, "to": {f.t0.Add(time.Hour).Format(time.RFC3339)}, "window": {"15"}})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	body := string(b)
	if resp.StatusCode != http.StatusOK || strings.Count(body, `data-testid="city-trace-check"`) != 2 {
		t.Fatalf("console trace: %d %s", resp.StatusCode, body)
	}
	for _, d := range f.ids {
		if !strings.Contains(body, `data-testid="city-trace-check-district">`+d) {
			t.Errorf("no check of district %s shown", d)
		}
	}
	if !strings.Contains(body, `data-testid="city-trace-missing-district">lintong`) || strings.Contains(body, cityPersonID) {
		t.Fatal("the missing district is not named, or the ID number is shown")
	}
	for _, db := range f.dbs {
		if n := cityTraces(t, db, "admin"); n != 1 {
			t.Errorf("a hub recorded %d city traces by the console's admin, want 1", n)
		}
	}
}
