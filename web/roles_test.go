package web_test

import (
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"passgate/district"
	"passgate/districtsync"
	"passgate/store"
	"passgate/tlsca"
	"passgate/web"
)

// newGateServer enrols a fresh appliance as a gate of a new hub (by the
// offline path: request, answer, completion) and serves it.
func newGateServer(t *testing.T) *testServer {
	t.Helper()
	ctx := t.Context()
	hubDir := t.TempDir()
	hubDB, err := store.Open(ctx, hubDir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { hubDB.Close() })
	if _, err := district.Setup(ctx, hubDB, district.SetupOptions{Name: "雁塔区", Appliance: "hub", AdminPassword: "hub admin password"}); err != nil {
		t.Fatal(err)
	}
	auth, err := tlsca.LoadOrCreate(hubDir, []string{"127.0.0.1"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	pin, err := districtsync.PinOfDER(auth.CACertDER())
	if err != nil {
		t.Fatal(err)
	}
	code, err := districtsync.NewCode(pin)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := hubDB.AddAppliance(ctx, "gate-1", store.ApplianceGate, code.Hash(), time.Now().Add(time.Hour), "test"); err != nil {
		t.Fatal(err)
	}
	p, err := districtsync.NewPending(code, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	resp, err := districtsync.EnrolAppliance(ctx, hubDB, &p.Request, auth.CACertDER(), "test", "file test")
	if err != nil {
		t.Fatal(err)
	}
	db, err := store.Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	const adminPassword = "gate admin password"
	if _, err := districtsync.Complete(ctx, db, "https://127.0.0.1:1", p, resp, adminPassword); err != nil {
		db.Close()
		t.Fatal(err)
	}
	return newTestServerDB(t, db, adminPassword)
}

// On a gate the desk, status, import and tracing pages are absent, even
// to its admin; every other route is served as on any appliance. The
// route table decides: a route is absent on a gate unless its area is
// listed for gates.
func TestRoutes_AbsentOnGate(t *testing.T) {
	t.Parallel()
	gate := newGateServer(t)
	office := newTestServer(t)
	routes := web.New(web.Config{DB: gate.DB, Checker: gate.Checker, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}).Routes()
	absent := 0
	for _, want := range []string{"GET /desk", "POST /desk/people", "POST /desk/people/{subject}/status", "GET /desk/import", "POST /desk/import", "GET /admin/trace", "POST /admin/trace"} {
		found := false
		for _, rt := range routes {
			if rt.Pattern == want {
				found = true
				if rt.OnGate {
					t.Errorf("%s is served on a gate", want)
				}
			}
		}
		if !found {
			t.Errorf("%s missing from the route table", want)
		}
	}
	for _, ts := range []*testServer{gate, office} {
		admin := ts.login(t, "admin", ts.AdminPassword)
		isGate := ts == gate
		for _, rt := range routes {
			method, path, _ := strings.Cut(rt.Pattern, " ")
			if rt.Access == web.Device || rt.Access == web.Public || rt.OnGate {
				continue
			}
			absent++
			req, err := http.NewRequest(method, ts.Srv.URL+matrixPath(path), strings.NewReader(""))
			if err != nil {
				t.Fatal(err)
			}
			if method == http.MethodPost {
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			}
			resp, err := admin.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			switch {
			case isGate && resp.StatusCode != http.StatusNotFound:
				t.Errorf("%s on a gate as admin: %s, want 404", rt.Pattern, resp.Status)
			case !isGate && resp.StatusCode == http.StatusNotFound && method == http.MethodGet && !strings.Contains(path, "{"):
				t.Errorf("%s on an office as admin: 404", rt.Pattern)
			}
		}
	}
	if absent == 0 {
		t.Fatal("no route is absent on a gate")
	}
	// The gate's own pages still work, and its issuers land on the gate
	// page, not on an absent desk.
	gate.createUser(t, "door", store.UserIssuer, "door password 1")
	c := gate.login(t, "door", "door password 1")
	if resp, _ := gate.get(t, c, "/"); resp.Header.Get("Location") != "/gate" {
		t.Errorf("an issuer's home on a gate: %s to %q, want /gate", resp.Status, resp.Header.Get("Location"))
	}
	// No link leads to a page the gate does not serve.
	for _, ts := range []*testServer{gate, office} {
		_, body := ts.get(t, ts.login(t, "admin", ts.AdminPassword), "/admin")
		for _, link := range []string{`href="/desk"`, `href="/admin/trace"`} {
			if has := strings.Contains(body, link); has == (ts == gate) {
				t.Errorf("admin page (gate %v) has %s: %v", ts == gate, link, has)
			}
		}
	}
	admin := gate.login(t, "admin", gate.AdminPassword)
	for _, path := range []string{"/admin", "/gate", "/admin/users"} {
		resp, _ := gate.get(t, admin, path)
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s on a gate: %s", path, resp.Status)
		}
	}
}
