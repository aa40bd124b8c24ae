package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"passgate/citylink"
	"passgate/internal/natstest"
	"passgate/store"
)

// The city tier with real processes: district hubs run `passgate serve
// --city` against a three-node JetStream cluster started by the test.

func count(t *testing.T, db *sql.DB, query string, args ...any) int {
	t.Helper()
	var n int
	if err := db.QueryRow(query, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

// districtIDOf reads the district identifier of a passgate's database.
func districtIDOf(t *testing.T, dir string) string {
	t.Helper()
	db := rawDB(t, dir)
	var id string
	if err := db.QueryRow(`SELECT district_id FROM district WHERE id = 1`).Scan(&id); err != nil {
		t.Fatal(err)
	}
	return id
}

// startCityHub serves dir as a district hub linked to the city cluster.
func startCityHub(t *testing.T, name, dir string, c *natstest.Cluster, district string, withTLS bool) *proc {
	t.Helper()
	args := []string{"serve", "--data", dir, "--addr", "127.0.0.1:0", "--log-level", "info",
		"--city", c.URLs(), "--city-creds", c.SeedFile(district)}
	if withTLS {
		args = append(args, "--tls-addr", "127.0.0.1:0")
	}
	return start(t, procOpts{name: name, args: args, env: map[string]string{"PASSGATE_ADMIN_PASSWORD": "district test password"}, https: withTLS})
}

// waitFor polls cond every 50 ms until it holds, failing after limit
// with what.
func waitFor(t *testing.T, limit time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > limit {
			t.Fatalf("after %v: %s", limit, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return time.Since(start)
}

const (
	ownRevocations = `SELECT count(*) FROM revocations WHERE origin <> 'city'`
	takenFrom      = `SELECT count(*) FROM city_revocations WHERE district = ?`
)

// A red code in district A is enforced at a running gate of district B
// within 10 s; B's credentials cannot publish on A's subject (the
// engine refuses); a record claiming A on B's own subject is refused
// and audited at both hubs.
func TestCity_RedCodeReachesAnotherDistrictsGate(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs real processes")
	}
	root := t.TempDir()
	hubA, hubB, gateB, cityDir := filepath.Join(root, "hub-a"), filepath.Join(root, "hub-b"), filepath.Join(root, "gate-b"), filepath.Join(root, "city")
	env := map[string]string{"PASSGATE_ADMIN_PASSWORD": "district test password"}
	must := mustSucceed(t)
	tested := time.Now().Add(-time.Hour).Format(time.RFC3339)
	const personA = "110101199003071233"
	passA := must(runCLI(t, env, "", "issue", "--data", hubA, "--name", "李四", "--id", personA, "--tested-at", tested), "issue at A")
	code := must(runCLI(t, env, "", "hub", "add", "--data", hubB, "--name", "gate-b"), "hub add gate-b")
	idA, idB := districtIDOf(t, hubA), districtIDOf(t, hubB)
	c := natstest.Start(t, idA, idB)

	pA := startCityHub(t, "hub A", hubA, c, idA, false)
	pB := startCityHub(t, "hub B", hubB, c, idB, true)
	must(runCLI(t, env, "", "enrol", "--data", gateB, "--hub", pB.https, "--code", code), "enrol gate-b")
	tok := must(runCLI(t, env, "", "device", "add", "--data", gateB, "gate-b-scanner"), "device add")
	gate := startSyncNode(t, "gate B", gateB, false)

	// The city certifies both roots; B's hub takes A's.
	cityFP := fingerprintIn(t, must(runCLI(t, nil, "", "city", "init", "--out", cityDir, "--city", "xian"), "city init"))
	key := filepath.Join(cityDir, "city-root.key")
	for name, dir := range map[string]string{"a": hubA, "b": hubB} {
		anchor := filepath.Join(root, name+".anchor")
		r := runCLI(t, env, "", "trust", "export", "--data", dir, "--out", anchor)
		if r.code != 0 {
			t.Fatalf("trust export %s: %s", name, r.stderr)
		}
		must(runCLI(t, nil, "", "city", "certify", "--city-key", key, "--district", anchor, "--fingerprint", fingerprintIn(t, r.stderr),
			"--out", filepath.Join(root, name+".cert")), "certify "+name)
	}
	must(runCLI(t, env, "", "trust", "city", "--data", hubB, filepath.Join(cityDir, "city-root.anchor"), "--fingerprint", cityFP), "trust city")
	must(runCLI(t, env, "", "trust", "import-certified", "--data", hubB, filepath.Join(root, "b.cert")), "import B's certificate")
	must(runCLI(t, env, "", "trust", "import-certified", "--data", hubB, filepath.Join(root, "a.cert")), "import A's certificate")
	untilReason(t, gate, tok, passA, "ok", 15*time.Second)

	must(runCLI(t, env, "", "status", "--data", hubA, "--id", personA, "--color", "red", "--reason", "close contact"), "red code at A")
	d := untilReason(t, gate, tok, passA, "revoked", 10*time.Second)
	t.Logf("PROPAGATION red code at hub A -> A's pass revoked at B's gate: %v", d.Round(time.Millisecond))
	dbA, dbB := rawDB(t, hubA), rawDB(t, hubB)
	if n := count(t, dbB, takenFrom, idA); n != 1 {
		t.Fatalf("hub B took %d of A's revocations, want 1", n)
	}

	// B's credentials on A's subject: the engine refuses.
	errs := make(chan error, 4)
	nc := c.Connect(c.SeedFile(idB), nats.CustomInboxPrefix(citylink.InboxPrefix(idB)),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { errs <- err }))
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	forged, _ := citylink.Encode(idA, &store.Revocation{Seq: 1 << 60, Kind: store.RevokePass, Target: []byte("0123456789ab"), At: time.Now()})
	_, err = js.Publish(ctx, citylink.Subject(idA), forged)
	cancel()
	if err == nil {
		t.Fatal("B published on A's subject")
	}
	select {
	case err := <-errs:
		if !errors.Is(err, nats.ErrPermissionViolation) || !strings.Contains(err.Error(), citylink.Subject(idA)) {
			t.Fatalf("got %v, want a permission violation", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no permission violation reported")
	}

	// The same record on B's own subject: the engine takes it, both hubs
	// refuse it with an audit record.
	ctx, cancel = context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := js.Publish(ctx, citylink.Subject(idB), forged); err != nil {
		t.Fatal(err)
	}
	for _, db := range []*sql.DB{dbA, dbB} {
		waitFor(t, 10*time.Second, "no refusal audited", func() bool {
			return count(t, db, `SELECT count(*) FROM audit WHERE action = ? AND subject = ?`, store.AuditCityMessageRefused, idB) == 1
		})
		if n := count(t, db, `SELECT count(*) FROM revocations WHERE target = ?`, []byte("0123456789ab")); n != 0 {
			t.Fatalf("the forged revocation was stored %d times", n)
		}
	}
	if !strings.Contains(scrape(t, pA), "passgate_city_connected 1") {
		t.Fatal("hub A's metrics do not show the link connected")
	}
	gate.stopClean()
}

// scrape reads a process's /metrics (loopback needs no token).
func scrape(t *testing.T, p *proc) string {
	t.Helper()
	var out string
	waitFor(t, 5*time.Second, "metrics", func() bool {
		b, err := httpGet(p.http + "/metrics")
		out = b
		return err == nil
	})
	return out
}

func httpGet(url string) (string, error) {
	resp, err := http.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("%s: %s", url, resp.Status)
	}
	return string(b), err
}

// District A keeps revoking while the cluster loses a node, gets it
// back, loses another; district B's hub is then stopped while A
// revokes, and comes back; last B's hub is rebuilt from a backup older
// than all of it. Each time B ends with every one of A's revocations
// exactly once, and its own lost ones back from the stream: its own
// person's pass, allowed by the backup, is revoked again.
func TestCity_NodesLostHubCutOffAndRebuilt(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs real processes")
	}
	root := t.TempDir()
	hubA, hubB := filepath.Join(root, "hub-a"), filepath.Join(root, "hub-b")
	env := map[string]string{"PASSGATE_ADMIN_PASSWORD": "district test password"}
	must := mustSucceed(t)
	tested := time.Now().Add(-time.Hour).Format(time.RFC3339)
	const personA, personB = "110101199003071233", "610113199001011230"
	must(runCLI(t, env, "", "issue", "--data", hubA, "--name", "李四", "--id", personA, "--tested-at", tested), "issue at A")
	passB := must(runCLI(t, env, "", "issue", "--data", hubB, "--name", "张三明", "--id", personB, "--tested-at", tested), "issue at B")
	checkAtB := func(want string) {
		t.Helper()
		r := runCLI(t, env, "", "check", "--data", hubB, passB)
		if !strings.Contains(r.stdout, `"reason":"`+want+`"`) && !strings.Contains(r.stdout, `"reason": "`+want+`"`) {
			t.Fatalf("B's pass at B: %s %s, want %s", r.stdout, r.stderr, want)
		}
	}
	backup := filepath.Join(root, "hub-b.backup")
	must(runCLI(t, env, "", "backup", "--data", hubB, "--out", backup), "backup B")
	idA, idB := districtIDOf(t, hubA), districtIDOf(t, hubB)
	c := natstest.Start(t, idA, idB)
	pA := startCityHub(t, "hub A", hubA, c, idA, false)
	pB := startCityHub(t, "hub B", hubB, c, idB, false)
	dbA, dbB := rawDB(t, hubA), rawDB(t, hubB)
	colors := []string{"red", "yellow", "green"}
	revokeA := func(i int) {
		must(runCLI(t, env, "", "status", "--data", hubA, "--id", personA, "--color", colors[i%3], "--reason", fmt.Sprintf("change %d", i)), "status at A")
	}
	// caughtUp waits until B holds every one of A's revocations, and
	// then checks that it holds none twice and the stream none twice.
	caughtUp := func(what string) {
		t.Helper()
		want := count(t, dbA, ownRevocations)
		waitFor(t, 30*time.Second, what+": B did not catch up", func() bool { return count(t, dbB, takenFrom, idA) >= want })
		time.Sleep(500 * time.Millisecond) // a copy would arrive by now
		if got := count(t, dbB, takenFrom, idA); got != want {
			t.Fatalf("%s: B took %d of A's %d revocations", what, got, want)
		}
		if n := count(t, dbB, `SELECT count(*) FROM (SELECT 1 FROM revocations GROUP BY kind, target, before_ms HAVING count(*) > 1)`); n != 0 {
			t.Fatalf("%s: B holds %d revocations twice", what, n)
		}
		info, err := c.Stream().Info(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if int(info.State.Msgs) != want+count(t, dbB, ownRevocations) && what != "rebuilt" {
			t.Fatalf("%s: the stream holds %d messages, A made %d and B %d", what, info.State.Msgs, want, count(t, dbB, ownRevocations))
		}
	}

	c.WaitCurrent(30 * time.Second)
	for i := range 24 {
		switch i {
		case 6:
			c.StopNode(0)
		case 12:
			c.RestartNode(0)
			c.WaitCurrent(30 * time.Second)
			c.StopNode(1)
		case 18:
			c.RestartNode(1)
		}
		revokeA(i)
	}
	caughtUp("nodes lost")
	c.WaitCurrent(30 * time.Second)

	// B's own revocations after its backup: lost by the rebuild below,
	// they come back from the stream.
	must(runCLI(t, env, "", "status", "--data", hubB, "--id", personB, "--color", "red", "--reason", "at B"), "status at B")
	waitFor(t, 10*time.Second, "B's revocation not published", func() bool {
		return count(t, dbB, `SELECT coalesce((SELECT published_seq FROM city_link), 0) >= (SELECT max(seq) FROM revocations WHERE origin <> 'city')`) == 1
	})

	// B's hub cut off while A revokes; A's link keeps working.
	if err := pB.stop(); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		revokeA(100 + i)
	}
	waitFor(t, 10*time.Second, "A did not publish while B was away", func() bool {
		return count(t, dbA, `SELECT coalesce((SELECT published_seq FROM city_link), 0) >= (SELECT max(seq) FROM revocations)`) == 1
	})
	pB.restart()
	caughtUp("reconnected")
	if !strings.Contains(scrape(t, pA), "passgate_city_connected 1") || !strings.Contains(scrape(t, pB), "passgate_city_lag_messages 0") {
		t.Fatal("metrics do not show the links connected and caught up")
	}
	if ready, err := httpGet(pB.http + "/readyz"); err != nil || !strings.Contains(ready, `"city":{`) || !strings.Contains(ready, `"waiting":0`) {
		t.Fatalf("readyz: %v\n%s", err, ready)
	}

	// B's database is lost; it is rebuilt from its backup (its keys,
	// appliances and users) and takes the rest from the stream.
	ownB := count(t, dbB, `SELECT count(*) FROM revocations WHERE origin <> 'city' AND kind = 1`)
	if err := pB.stop(); err != nil {
		t.Fatal(err)
	}
	dbB.Close()
	for _, suffix := range []string{"", "-wal", "-shm"} {
		os.Remove(filepath.Join(hubB, store.FileName+suffix))
	}
	b, err := os.ReadFile(backup)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(hubB, store.FileName), b, 0o600); err != nil {
		t.Fatal(err)
	}
	dbB = rawDB(t, hubB)
	if n := count(t, dbB, takenFrom, idA); n != 0 {
		t.Fatalf("the backup holds %d of A's revocations", n)
	}
	checkAtB("ok") // the backup predates B's red code
	pB.restart()
	caughtUp("rebuilt")
	checkAtB("revoked")
	if got := count(t, dbB, takenFrom, idB); got != ownB {
		t.Fatalf("rebuilt B took back %d of its own %d revocations from the stream", got, ownB)
	}
	pA.stopClean()
	pB.stopClean()
}

// city nats-user writes a hub's seed file (0600, never over another)
// and prints the configuration entry holding it to its district.
func TestCity_NatsUser(t *testing.T) {
	out := filepath.Join(t.TempDir(), "d1.nk")
	r := runCLI(t, nil, "", "city", "nats-user", "--district", "Dab-1", "--out", out)
	if r.code != 0 {
		t.Fatalf("nats-user: %s", r.stderr)
	}
	if st, err := os.Stat(out); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("seed file: %v", err)
	}
	if _, err := nats.NkeyOptionFromSeed(out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(r.stdout, `"city.Dab-1.>"`) || !strings.Contains(r.stdout, `"_INBOX_Dab-1.>"`) || strings.Contains(r.stdout, "SUA") {
		t.Fatalf("entry:\n%s", r.stdout)
	}
	if r := runCLI(t, nil, "", "city", "nats-user", "--district", "Dab-1", "--out", out); r.code == 0 {
		t.Fatal("seed file replaced")
	}
	if r := runCLI(t, nil, "", "city", "nats-user", "--district", "a.>", "--out", out+"2"); r.code == 0 {
		t.Fatal("a district with wildcards accepted")
	}
	// The console's user asks traces and dashboards, publishes status
	// changes and retirements, and nothing else.
	r = runCLI(t, nil, "", "city", "nats-user", "--console", "--out", out+"c")
	if r.code != 0 || !strings.Contains(r.stdout, `allow: ["citytrace.*", "citystats.*", "citystatus.changes", "citytrust.retirements"]`) || !strings.Contains(r.stdout, `"_CONSOLE_INBOX.>"`) || strings.Contains(r.stdout, `"city.`) {
		t.Fatalf("console entry: %d %s %s", r.code, r.stdout, r.stderr)
	}
	if r := runCLI(t, nil, "", "city", "nats-user", "--console", "--district", "Dab-1", "--out", out+"3"); r.code == 0 {
		t.Fatal("a user both a district and the console")
	}
}

// A hub whose city cluster is unreachable serves and checks as before:
// its own red code is enforced at once, the link's state says it is not
// connected, and the revocation waits behind the mark.
func TestCity_HubServesWithoutCluster(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{"PASSGATE_ADMIN_PASSWORD": "district test password"}
	must := mustSucceed(t)
	tested := time.Now().Add(-time.Hour).Format(time.RFC3339)
	const person = "110101199003071233"
	passA := must(runCLI(t, env, "", "issue", "--data", dir, "--name", "李四", "--id", person, "--tested-at", tested), "issue")
	tok := must(runCLI(t, env, "", "device", "add", "--data", dir, "desk"), "device add")
	seed := filepath.Join(t.TempDir(), "hub.nk")
	must(runCLI(t, nil, "", "city", "nats-user", "--district", districtIDOf(t, dir), "--out", seed), "nats-user")
	// A port nothing listens on: the cluster is down.
	dead := "nats://127.0.0.1:" + fmt.Sprint(freePort(t))
	p := start(t, procOpts{name: "hub", inProcess: true, env: env,
		args: []string{"serve", "--data", dir, "--addr", "127.0.0.1:0", "--city", dead, "--city-creds", seed}})
	if dec, reason, _ := scanAt(t, p, tok, passA); dec != "allow" {
		t.Fatalf("before: %s %s", dec, reason)
	}
	must(runCLI(t, env, "", "status", "--data", dir, "--id", person, "--color", "red", "--reason", "contact"), "red code")
	untilReason(t, p, tok, passA, "revoked", 5*time.Second)
	if m := scrape(t, p); !strings.Contains(m, "passgate_city_connected 0") || !strings.Contains(m, "passgate_city_published_total 0") {
		t.Fatalf("metrics:\n%s", m)
	}
	if n := count(t, rawDB(t, dir), `SELECT count(*) FROM revocations WHERE seq > coalesce((SELECT published_seq FROM city_link), 0)`); n != 1 {
		t.Fatalf("%d revocations waiting for the city, want 1", n)
	}
	if r := runCLI(t, env, "", "serve", "--data", dir, "--addr", "127.0.0.1:0", "--city", dead); r.code == 0 || !strings.Contains(r.stderr, "--city-creds") {
		t.Fatalf("--city without credentials: %d %s", r.code, r.stderr)
	}
}

// freePort is a loopback port nothing listens on.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// serve joins the city one way: --city with --city-creds; the city key
// and the districts together make it the console; anything else is a
// usage error before anything starts.
func TestCLI_CityServeFlags(t *testing.T) {
	seed := filepath.Join(t.TempDir(), "c.nk")
	if r := runCLI(t, nil, "", "city", "nats-user", "--console", "--out", seed); r.code != 0 {
		t.Fatal(r.stderr)
	}
	key := filepath.Join(t.TempDir(), "city.key")
	if r := runCLI(t, nil, "", "city", "pseudonym-key", "--out", key); r.code != 0 {
		t.Fatal(r.stderr)
	}
	url := "nats://127.0.0.1:" + fmt.Sprint(freePort(t))
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--city-creds", seed}, "go with --city"},
		{[]string{"--city-key", key, "--city-districts", "Da"}, "go with --city"},
		{[]string{"--city", url, "--city-creds", seed, "--city-key", key}, "both --city-key and --city-districts"},
		{[]string{"--city", url, "--city-creds", seed, "--city-districts", "Da"}, "both --city-key and --city-districts"},
		{[]string{"--city", url, "--city-creds", key, "--city-key", key, "--city-districts", "Da"}, "credentials"},
		{[]string{"--city", url, "--city-key", key, "--city-districts", "Da"}, "--city-creds"},
	} {
		r := runCLI(t, nil, "", append([]string{"serve", "--data", t.TempDir(), "--addr", "127.0.0.1:0"}, c.args...)...)
		if r.code != exitError || !strings.Contains(r.stderr, c.want) {
			t.Errorf("%v: exit %d %s, want a usage error naming %q", c.args, r.code, r.stderr, c.want)
		}
	}
	if r := runCLI(t, nil, "", "city", "trace", "--id", "-", "--from", "2026-11-01", "--to", "2026-11-02", "--districts", "Da",
		"--city", url, "--city-creds", key, "--city-key", key); r.code != exitError || !strings.Contains(r.stderr, "credentials") {
		t.Errorf("city trace with a key for a seed: exit %d %s", r.code, r.stderr)
	}
}
