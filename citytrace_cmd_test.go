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

	"github.com/nats-io/nats.go"

	"passgate/citylink"
	"passgate/citytrace"
	"passgate/internal/natstest"
	"passgate/pass"
	"passgate/store"
)

// cityFixture is two districts joined to the city: their hubs, real
// passgate processes serving with --city on the in-process cluster,
// answer city traces on their links; the person, under the city
// pseudonym key both hubs imported, was checked once in each at t0.
type cityFixture struct {
	env     map[string]string
	keyFile string
	cluster *natstest.Cluster
	ids     []string
	dbs     []*store.DB
	dirs    []string
	hubs    []*proc
	t0      time.Time
}

const cityPersonID = "11010519491231002X"

func newCityFixture(t *testing.T) *cityFixture {
	t.Helper()
	skipUnderRace(t) // before the cluster starts: the hubs are processes
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
	f.dirs = []string{dirA, dirB}
	for i, dir := range f.dirs {
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
	}
	f.cluster = natstest.Start(t, f.ids...)
	for i, dir := range f.dirs {
		f.hubs = append(f.hubs, startCityHub(t, "hub-"+f.ids[i], dir, f.cluster, f.ids[i], false))
	}
	// A hub answers once its link has subscribed: wait for both.
	console := f.cluster.Connect(f.cluster.ConsoleSeedFile(), nats.CustomInboxPrefix(citylink.ConsoleInboxPrefix))
	for _, d := range f.ids {
		waitFor(t, 30*time.Second, "hub "+d+" answering traces", func() bool {
			_, err := console.Request(citytrace.Subject(d), []byte("{}"), time.Second)
			return err == nil
		})
	}
	return f
}

// cityArgs are the flags connecting to the city as its console.
func (f *cityFixture) cityArgs() []string {
	return []string{"--city", f.cluster.URLs(), "--city-creds", f.cluster.ConsoleSeedFile(), "--city-key", f.keyFile}
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
	env, t0, ids, dbs, id := f.env, f.t0, f.ids, f.dbs, cityPersonID
	cityDir := t.TempDir()
	args := append([]string{"city", "trace", "--data", cityDir, "--id", "-", "--from", t0.Add(-time.Hour).Format(time.RFC3339),
		"--to", t0.Add(time.Hour).Format(time.RFC3339), "--timeout", "2s", "--as", "officer-1"}, f.cityArgs()...)
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
	p := start(t, procOpts{args: append([]string{"serve", "--data", t.TempDir(), "--addr", "127.0.0.1:0",
		"--city-districts", strings.Join(append(f.ids, "lintong"), ","), "--city-timeout", "2s"}, f.cityArgs()...),
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

// Two district hubs joined with --city answer the city's traces on their
// links: the same person, issued a pass in each district under the one
// city pseudonym key both imported, is checked at each hub's gate; `city
// trace` as the console's user finds both checks; with one hub stopped,
// that district is named missing and the command exits 3.
func TestCity_TraceAcrossDistricts(t *testing.T) {
	f := newCityFixture(t)
	must := mustSucceed(t)
	start := time.Now().Add(-time.Minute)
	tested := time.Now().Add(-time.Hour).Format(time.RFC3339)
	for i, d := range f.ids {
		dir := f.dirs[i]
		text := must(runCLI(t, f.env, "", "issue", "--data", dir, "--name", "王五", "--id", cityPersonID, "--tested-at", tested), "issue")
		tok := must(runCLI(t, f.env, "", "device", "add", "--data", dir, "gate-"+d), "device add")
		if dec, reason, _ := scanAt(t, f.hubs[i], tok, text); dec != "allow" {
			t.Fatalf("check at %s: %s %s", d, dec, reason)
		}
	}
	args := append([]string{"city", "trace", "--data", t.TempDir(), "--id", "-", "--from", start.Format(time.RFC3339),
		"--to", time.Now().Add(time.Minute).Format(time.RFC3339), "--timeout", "3s", "--as", "officer-2",
		"--districts", strings.Join(f.ids, ",")}, f.cityArgs()...)
	r := runCLI(t, f.env, cityPersonID+"\n", args...)
	if r.code != 0 || strings.Count(r.stdout, `"type":"check"`) != 2 || !strings.Contains(r.stdout, `"complete":true`) {
		t.Fatalf("both hubs up: exit %d %s %s", r.code, r.stderr, r.stdout)
	}
	for i, d := range f.ids {
		if !strings.Contains(r.stdout, `"district":"`+d+`"`) {
			t.Errorf("no check in district %s", d)
		}
		if n := cityTraces(t, f.dbs[i], "officer-2"); n != 1 {
			t.Errorf("hub %s recorded %d city traces, want 1", d, n)
		}
	}
	if err := f.hubs[1].stop(); err != nil {
		t.Fatal(err)
	}
	r = runCLI(t, f.env, cityPersonID+"\n", args...)
	if r.code != exitIncomplete || strings.Count(r.stdout, `"type":"check"`) != 1 ||
		!strings.Contains(r.stdout, `"district":"`+f.ids[1]+`","type":"missing"`) || !strings.Contains(r.stderr, f.ids[1]) {
		t.Fatalf("hub %s stopped: exit %d %s %s", f.ids[1], r.code, r.stderr, r.stdout)
	}
	// A hub's user may not ask: the engine refuses d1's hub a trace of d2.
	nc := f.cluster.Connect(f.cluster.SeedFile(f.ids[0]), nats.CustomInboxPrefix(citylink.InboxPrefix(f.ids[0])))
	if _, err := nc.Request(citytrace.Subject(f.ids[0]), []byte("{}"), time.Second); err == nil {
		t.Fatal("a hub asked its own district's trace")
	}
}
