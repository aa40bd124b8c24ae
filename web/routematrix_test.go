package web_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"passgate/store"
	"passgate/web"
)

// wildcard matches a path wildcard of a route pattern: {name}, {name...}
// or {$}.
var wildcard = regexp.MustCompile(`\{[^}]*\}`)

// matrixPath turns a route pattern's path into a request path: {$} ends
// the path, other wildcards get a value that names nothing in the test
// database, so that no request of the matrix changes an existing record
// (the guard decides before any handler looks at the value).
func matrixPath(p string) string {
	return wildcard.ReplaceAllStringFunc(p, func(w string) string {
		if w == "{$}" {
			return ""
		}
		return "999999"
	})
}

// matrixRole is a column of the matrix: a visitor and their rank.
type matrixRole struct {
	name string
	user *store.User // nil: anonymous
	rank web.Access  // the highest access level the role reaches
}

// TestRouteMatrix requests every route of the appliance as every kind of
// visitor and checks the outcome against the route's access level. The
// route table drives it, so a route added later is covered without
// touching this test, and a route a lower role can reach fails it.
func TestRouteMatrix(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	ctx := t.Context()
	admin, err := ts.DB.FindUserByName(ctx, "admin")
	if err != nil {
		t.Fatal(err)
	}
	roles := []matrixRole{
		{"anonymous", nil, web.Device},
		{"staff", ts.createUser(t, "m-staff", store.UserStaff, "staff-pw"), web.Staff},
		{"issuer", ts.createUser(t, "m-issuer", store.UserIssuer, "issuer-pw"), web.Issuer},
		{"admin", admin, web.Admin},
	}

	routes := web.New(web.Config{DB: ts.DB, Checker: ts.Checker, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}).Routes()
	seen := map[string]bool{}
	for _, rt := range routes {
		method, path, ok := strings.Cut(rt.Pattern, " ")
		if !ok || method == "" || !strings.HasPrefix(path, "/") {
			t.Errorf("route %q: the pattern must name a method and a path", rt.Pattern)
			continue
		}
		if seen[rt.Pattern] {
			t.Errorf("route %q listed twice", rt.Pattern)
		}
		seen[rt.Pattern] = true
		for _, role := range roles {
			t.Run(rt.Pattern+"/"+role.name, func(t *testing.T) {
				checkMatrixCell(t, ts, rt, method, matrixPath(path), role)
			})
		}
	}
	// The table must hold at least the routes of every area that exists
	// today: an empty or truncated table would pass every cell vacuously.
	for _, p := range []string{"GET /login", "POST /login", "POST /logout", "POST /lang", "POST /api/v1/scans", "GET /metrics",
		"GET /admin", "GET /admin/dashboard", "GET /admin/city", "POST /admin/city/trace", "GET /admin/city/dashboard", "GET /admin/city/status", "POST /admin/city/status",
		"GET /admin/audit", "POST /admin/audit/verify"} {
		if !seen[p] {
			t.Errorf("route %q missing from the route table", p)
		}
	}
	// No cell may have changed the accounts the matrix relies on.
	for _, role := range roles[1:] {
		u, err := ts.DB.FindUserByID(ctx, role.user.ID)
		if err != nil || u.Role != role.user.Role || !u.DisabledAt.IsZero() {
			t.Errorf("the matrix changed user %s: %+v %v", role.name, u, err)
		}
	}
}

// checkMatrixCell makes one request and checks its outcome.
func checkMatrixCell(t *testing.T, ts *testServer, rt web.RouteInfo, method, path string, role matrixRole) {
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
	defer cancel()
	var body io.Reader
	if method == http.MethodPost || method == http.MethodPut || method == http.MethodPatch {
		body = strings.NewReader("")
	}
	req, err := http.NewRequestWithContext(ctx, method, ts.Srv.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if role.user != nil {
		// A fresh session per request: a cell that logs out (POST /logout)
		// must not turn the following cells anonymous.
		token, err := ts.DB.CreateSession(t.Context(), role.user.ID, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		req.AddCookie(&http.Cookie{Name: web.SessionCookie, Value: token})
	}
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Do(req)
	if errors.Is(err, context.DeadlineExceeded) {
		// A stream (server-sent events) may hold its headers back until
		// its first event. The guard answers a refusal at once, so a
		// response still pending is one the handler is serving.
		if role.user == nil || role.rank < rt.Access || rt.Access == web.Device {
			t.Fatalf("%s %s as %s: no answer within 3 s, want a refusal", method, path, role.name)
		}
		t.Logf("%s %s as %s: streaming, no headers within 3 s", method, path, role.name)
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	status, loc := resp.StatusCode, resp.Header.Get("Location")
	// The guard sends anonymous visitors to the login page with the way
	// back; a plain "/login" is where logging out deliberately ends.
	toLogin := strings.HasPrefix(loc, "/login?next=")
	got := func() string { return resp.Status + " Location: " + loc }

	switch {
	case rt.Access == web.Public:
		if status == http.StatusUnauthorized || status == http.StatusForbidden || toLogin {
			t.Errorf("public route %s %s as %s: %s", method, path, role.name, got())
		}
	case rt.Access == web.Monitor:
		// Outside the ranking: without a scraper's token or trusted
		// address (none here), only an admin's session reaches it; an
		// anonymous client is a machine, answered 401 and not redirected.
		switch {
		case role.user == nil:
			if status != http.StatusUnauthorized || loc != "" {
				t.Errorf("monitor route %s %s as anonymous: %s, want 401", method, path, got())
			}
		case role.user.Role != store.UserAdmin:
			if status != http.StatusForbidden {
				t.Errorf("monitor route %s %s as %s: %s, want 403", method, path, role.name, got())
			}
		case status == http.StatusUnauthorized || status == http.StatusForbidden || toLogin:
			t.Errorf("monitor route %s %s as %s: %s, want access", method, path, role.name, got())
		}
	case rt.Access == web.Device:
		// No device token was sent: whoever asks, it is refused.
		if status != http.StatusUnauthorized {
			t.Errorf("device route %s %s as %s without a token: %s, want 401", method, path, role.name, got())
		}
	case role.user == nil:
		if method == http.MethodGet || method == http.MethodHead {
			want := "/login?next=" + url.QueryEscape(path)
			if status != http.StatusSeeOther || loc != want {
				t.Errorf("%s route %s %s as anonymous: %s, want 303 to %s", rt.Access, method, path, got(), want)
			}
		} else if status != http.StatusUnauthorized {
			t.Errorf("%s route %s %s as anonymous: %s, want 401", rt.Access, method, path, got())
		}
	case role.rank < rt.Access:
		if status != http.StatusForbidden {
			t.Errorf("%s route %s %s as %s: %s, want 403", rt.Access, method, path, role.name, got())
		}
	default:
		if status == http.StatusUnauthorized || status == http.StatusForbidden || toLogin {
			t.Errorf("%s route %s %s as %s: %s, want access", rt.Access, method, path, role.name, got())
		}
	}
}
