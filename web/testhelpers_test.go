package web_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"passgate/check"
	"passgate/district"
	"passgate/store"
	"passgate/web"
)

// testServer is a real appliance over HTTP for handler tests: a fresh
// database with a district and its first admin ("admin", AdminPassword),
// a checker and the full handler behind an httptest server.
type testServer struct {
	DB            *store.DB
	Checker       *check.Checker
	Srv           *httptest.Server
	Web           *web.Server
	AdminPassword string
}

// newTestServer starts a test appliance, closed when the test ends; a
// config given (at most one) configures its web server around the
// test's database and checker.
func newTestServer(t testing.TB, configs ...web.Config) *testServer {
	t.Helper()
	ctx := t.Context()
	db, err := store.Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	const adminPassword = "admin-test-password"
	if _, err := district.Setup(ctx, db, district.SetupOptions{Name: "雁塔区", AdminPassword: adminPassword}); err != nil {
		db.Close()
		t.Fatal(err)
	}
	return newTestServerDB(t, db, adminPassword, configs...)
}

// newTestServerDB is newTestServer over a database already set up, whose
// first admin has adminPassword; it closes db when the test ends.
func newTestServerDB(t testing.TB, db *store.DB, adminPassword string, configs ...web.Config) *testServer {
	t.Helper()
	c, err := check.New(context.Background(), check.Config{DB: db})
	if err != nil {
		db.Close()
		t.Fatal(err)
	}
	var cfg web.Config
	if len(configs) > 0 {
		cfg = configs[0]
	}
	cfg.DB, cfg.Checker, cfg.Log = db, c, slog.New(slog.NewTextHandler(io.Discard, nil))
	ws := web.New(cfg)
	srv := httptest.NewServer(ws.Handler())
	t.Cleanup(func() {
		srv.Close()
		ws.Close()
		c.Close()
		db.Close()
	})
	return &testServer{DB: db, Checker: c, Srv: srv, Web: ws, AdminPassword: adminPassword}
}

// createUser adds an account with role (store.UserStaff, UserIssuer or
// UserAdmin) and password.
func (ts *testServer) createUser(t *testing.T, name string, role store.UserRole, password string) *store.User {
	t.Helper()
	hash, err := store.HashPassword(password)
	if err != nil {
		t.Fatal(err)
	}
	u := &store.User{Username: name, Role: role, PasswordHash: hash}
	if err := ts.DB.CreateUser(context.Background(), u, "admin"); err != nil {
		t.Fatal(err)
	}
	return u
}

// client returns an anonymous client with a cookie jar that does not
// follow redirects, so tests see the 303s themselves.
func (ts *testServer) client(t *testing.T) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{
		Jar:           jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// login logs name in through the login form and returns the client that
// carries the session (it does not follow redirects). It fails the test
// unless the login succeeds.
func (ts *testServer) login(t *testing.T, name, password string) *http.Client {
	t.Helper()
	c := ts.client(t)
	resp, err := c.PostForm(ts.Srv.URL+"/login", url.Values{"username": {name}, "password": {password}})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("login %s: status %d, want 303; body: %.500s", name, resp.StatusCode, body)
	}
	if !jarHasCookie(c, ts.Srv.URL, web.SessionCookie) {
		t.Fatalf("login %s: no session cookie", name)
	}
	return c
}

// jarHasCookie reports whether the client's jar holds a cookie named name
// for rawURL.
func jarHasCookie(c *http.Client, rawURL, name string) bool {
	u, _ := url.Parse(rawURL)
	for _, ck := range c.Jar.Cookies(u) {
		if ck.Name == name && ck.Value != "" {
			return true
		}
	}
	return false
}

// postForm posts form to path with c and returns the response with its
// body read.
func (ts *testServer) postForm(t *testing.T, c *http.Client, path string, form url.Values) (*http.Response, string) {
	t.Helper()
	resp, err := c.Post(ts.Srv.URL+path, "application/x-www-form-urlencoded", strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// get fetches path with c and returns the response with its body read.
func (ts *testServer) get(t *testing.T, c *http.Client, path string) (*http.Response, string) {
	t.Helper()
	resp, err := c.Get(ts.Srv.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}
