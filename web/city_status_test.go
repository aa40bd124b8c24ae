package web_test

import (
	"context"
	"crypto/rand"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"passgate/citylink"
	"passgate/district"
	"passgate/internal/natstest"
	"passgate/pass"
	"passgate/store"
	"passgate/web"
)

// The console changes a person's status city-wide: a bad form publishes
// nothing; a good one is published to the city stream, audited at the
// console, and applied by a running hub that holds the person under the
// city subject (their colour, their history naming the officer); with
// the city tier gone the page says so and audits nothing.
func TestCityConsole_StatusChange(t *testing.T) {
	ctx := context.Background()
	key := make([]byte, pass.CityKeyLen)
	rand.Read(key)
	const id = "11010519491231002X"
	subject := pass.Pseudonym(key, id)

	hub, err := store.Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer hub.Close()
	res, err := district.Setup(ctx, hub, district.SetupOptions{Name: "碑林区", AdminPassword: "correct horse battery"})
	if err != nil {
		t.Fatal(err)
	}
	if err := hub.SavePerson(ctx, &store.Person{Subject: subject, MaskedName: "张*", IDTail: "002X", Color: pass.Green}, "issuer"); err != nil {
		t.Fatal(err)
	}
	c := natstest.Start(t, res.District.ID)
	link, err := citylink.New(citylink.Config{URLs: c.URLs(), SeedFile: c.SeedFile(res.District.ID)})
	if err != nil {
		t.Fatal(err)
	}
	lctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); link.Run(lctx, hub, slog.New(slog.DiscardHandler)) }()
	defer func() { stop(); <-done }()

	console := c.Connect(c.ConsoleSeedFile(), nats.CustomInboxPrefix(citylink.ConsoleInboxPrefix))
	ts := newTestServer(t, web.Config{City: &web.CityConsole{Conn: console, Districts: []string{res.District.ID}, Key: key, Timeout: time.Second}})
	cl := ts.login(t, "admin", ts.AdminPassword)
	if resp, body := ts.get(t, cl, "/admin/city/status"); resp.StatusCode != http.StatusOK || !strings.Contains(body, `data-testid="city-status-form"`) {
		t.Fatalf("form: %d", resp.StatusCode)
	}
	streamMsgs := func() uint64 {
		info, err := c.Stream().Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return info.State.Msgs
	}
	for name, form := range map[string]url.Values{
		"bad ID":      {"id_number": {"110105194912310020"}, "color": {"red"}, "reason": {"close contact"}},
		"no reason":   {"id_number": {id}, "color": {"red"}, "reason": {"  "}},
		"bad colour":  {"id_number": {id}, "color": {"purple"}, "reason": {"close contact"}},
		"control chr": {"id_number": {id}, "color": {"red"}, "reason": {"a\x1b[2Jb"}},
	} {
		if resp, _ := ts.postForm(t, cl, "/admin/city/status", form); resp.StatusCode != http.StatusUnprocessableEntity {
			t.Fatalf("%s: %d, want 422", name, resp.StatusCode)
		}
	}
	if n := streamMsgs(); n != 0 {
		t.Fatalf("refused forms published %d messages", n)
	}

	resp, body := ts.postForm(t, cl, "/admin/city/status", url.Values{"id_number": {id}, "color": {"red"}, "reason": {"密接 close contact"}})
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `data-testid="city-status-done"`) || strings.Contains(body, id) {
		t.Fatalf("publish: %d %s", resp.StatusCode, body)
	}
	if n := streamMsgs(); n != 1 {
		t.Fatalf("the stream holds %d messages, want 1", n)
	}
	if n := countAudit(t, ts, store.AuditCityStatusAsked); n != 1 {
		t.Fatalf("%d console audit records", n)
	}
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		p, err := hub.FindPerson(ctx, subject)
		if err != nil {
			t.Fatal(err)
		}
		if p.Color == pass.Red {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the hub did not apply the city's status change")
		}
	}
	hist, err := hub.StatusHistory(ctx, subject)
	if err != nil || !strings.HasPrefix(string(hist[len(hist)-1].Actor), "city:") {
		t.Fatalf("history %+v %v", hist, err)
	}

	// The city tier gone: nothing is said done, nothing audited.
	console.Close()
	resp, body = ts.postForm(t, cl, "/admin/city/status", url.Values{"id_number": {id}, "color": {"yellow"}, "reason": {"again"}})
	if resp.StatusCode != http.StatusServiceUnavailable || strings.Contains(body, `data-testid="city-status-done"`) {
		t.Fatalf("with the city tier gone: %d", resp.StatusCode)
	}
	if n := countAudit(t, ts, store.AuditCityStatusAsked); n != 1 {
		t.Fatalf("%d console audit records after a failed publish", n)
	}
}

// countAudit counts the audit records of action in ts's store.
func countAudit(t *testing.T, ts *testServer, action string) int {
	t.Helper()
	n := 0
	if err := ts.DB.FindAudit(context.Background(), store.AuditFilter{}, func(r *store.AuditRecord) error {
		if r.Action == action {
			n++
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return n
}
