package web_test

import (
	"context"
	"crypto/rand"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"passgate/citytrace"
	"passgate/district"
	"passgate/pass"
	"passgate/store"
	"passgate/web"
)

// The city console: an admin logs in, traces a person across the
// districts, sees the checks of the district that answered, the district
// that did not named as missing, and the query audited here; the ID
// number is in no page of the result.
func TestCityConsole_TraceAcrossDistricts(t *testing.T) {
	ctx := context.Background()
	key := make([]byte, pass.CityKeyLen)
	rand.Read(key)
	const id = "11010519491231002X"

	hub, err := store.Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer hub.Close()
	if _, err := district.Setup(ctx, hub, district.SetupOptions{Name: "碑林区"}); err != nil {
		t.Fatal(err)
	}
	d, _ := hub.District(ctx)
	at := time.Now().Add(-time.Hour).Truncate(time.Second)
	if err := hub.LogScan(ctx, &store.Scan{At: at, Source: "gate-north", Decision: "allow", Reason: "ok", Subject: pass.Pseudonym(key, id)}); err != nil {
		t.Fatal(err)
	}
	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true, Users: []*server.User{
		{Username: "city", Password: "c", Permissions: &server.Permissions{
			Publish: &server.SubjectPermission{Allow: []string{citytrace.SubjectPrefix + ">"}}, Subscribe: &server.SubjectPermission{Allow: []string{"_INBOX.>"}}}},
		{Username: d.ID, Password: "h", Permissions: &server.Permissions{
			Subscribe: &server.SubjectPermission{Allow: []string{citytrace.Subject(d.ID)}}, Response: &server.ResponsePermission{MaxMsgs: 1}}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server did not start")
	}
	defer srv.Shutdown()
	hc, err := nats.Connect(srv.ClientURL(), nats.UserInfo(d.ID, "h"))
	if err != nil {
		t.Fatal(err)
	}
	defer hc.Close()
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	subs := srv.NumSubscriptions()
	go citytrace.Serve(sctx, hc, hub, d.ID) //nolint:errcheck // a failure shows as the district missing
	cc, err := nats.Connect(srv.ClientURL(), nats.UserInfo("city", "c"))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	for deadline := time.Now().Add(5 * time.Second); srv.NumSubscriptions() == subs; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the hub did not subscribe")
		}
	}

	ts := newTestServer(t, web.Config{City: &web.CityConsole{Conn: cc, Districts: []string{d.ID, "lintong"}, Key: key, Timeout: time.Second}})
	c := ts.login(t, "admin", ts.AdminPassword)
	if _, body := ts.get(t, c, "/admin"); !strings.Contains(body, `href="/admin/city"`) {
		t.Fatal("the landing page does not link to the city console")
	}
	if resp, body := ts.get(t, c, "/admin/city"); resp.StatusCode != http.StatusOK || !strings.Contains(body, `data-testid="city-trace-form"`) {
		t.Fatalf("form: %d", resp.StatusCode)
	}
	form := url.Values{"id_number": {id}, "from": {at.Add(-time.Hour).Format(time.RFC3339)}, "to": {at.Add(time.Hour).Format(time.RFC3339)}, "window": {"15"}}
	resp, body := ts.postForm(t, c, "/admin/city/trace", form)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("trace: %d %s", resp.StatusCode, body)
	}
	if strings.Count(body, `data-testid="city-trace-check"`) != 1 || !strings.Contains(body, "gate-north") {
		t.Fatalf("the district's check is not shown: %s", body)
	}
	if !strings.Contains(body, `data-testid="city-trace-missing-district">lintong`) {
		t.Fatal("the district that did not answer is not named")
	}
	if strings.Contains(body, id) {
		t.Fatal("the result page carries the ID number")
	}
	n := 0
	ts.DB.FindAudit(ctx, store.AuditFilter{}, func(r *store.AuditRecord) error {
		if r.Action == store.AuditCityTraceAsked && r.Actor == "admin" && strings.Contains(string(r.Detail), "lintong") {
			n++
		}
		return nil
	})
	if n != 1 {
		t.Fatalf("%d city trace records", n)
	}
	// A bad number is a field error, asked of no district.
	form.Set("id_number", "110105194912310021")
	if resp, _ := ts.postForm(t, c, "/admin/city/trace", form); resp.StatusCode != http.StatusUnprocessableEntity {
		t.Fatalf("bad number: %d", resp.StatusCode)
	}
	hubTraces := 0
	hub.FindAudit(ctx, store.AuditFilter{}, func(r *store.AuditRecord) error {
		if r.Action == store.AuditTrace {
			hubTraces++
		}
		return nil
	})
	if hubTraces != 1 {
		t.Fatalf("the hub traced %d times, want 1", hubTraces)
	}
}

// Without a link to the city tier the console says so and asks nobody.
func TestCityConsole_NotJoined(t *testing.T) {
	ts := newTestServer(t)
	c := ts.login(t, "admin", ts.AdminPassword)
	if _, body := ts.get(t, c, "/admin"); strings.Contains(body, `href="/admin/city"`) {
		t.Fatal("a district's landing page links to a city console it does not have")
	}
	if resp, body := ts.get(t, c, "/admin/city"); resp.StatusCode != http.StatusOK || !strings.Contains(body, `data-testid="city-not-joined"`) {
		t.Fatalf("form: %d", resp.StatusCode)
	}
	if resp, _ := ts.postForm(t, c, "/admin/city/trace", url.Values{"id_number": {"11010519491231002X"}}); resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("trace: %d", resp.StatusCode)
	}
}
