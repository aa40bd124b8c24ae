package web_test

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"

	"passgate/store"
	"passgate/web"
	"passgate/web/i18n"
)

// sessionToken returns the session token in c's jar, or "".
func (ts *testServer) sessionToken(c *http.Client) string {
	u, _ := url.Parse(ts.Srv.URL)
	for _, ck := range c.Jar.Cookies(u) {
		if ck.Name == web.SessionCookie {
			return ck.Value
		}
	}
	return ""
}

// loggedIn probes whether c's session works: the login page sends a
// logged-in user straight on, and shows an anonymous one the form.
func (ts *testServer) loggedIn(t *testing.T, c *http.Client) bool {
	t.Helper()
	resp, _ := ts.get(t, c, "/login?next=/probe")
	switch {
	case resp.StatusCode == http.StatusSeeOther && resp.Header.Get("Location") == "/probe":
		return true
	case resp.StatusCode == http.StatusOK:
		return false
	}
	t.Fatalf("login page: status %d, location %q", resp.StatusCode, resp.Header.Get("Location"))
	return false
}

// tryLogin posts the login form with c and returns the response and the
// login page's error message.
func (ts *testServer) tryLogin(t *testing.T, c *http.Client, name, password string) (*http.Response, string) {
	t.Helper()
	resp, body := ts.postForm(t, c, "/login", url.Values{"username": {name}, "password": {password}})
	doc, err := goquery.NewDocumentFromReader(strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	return resp, strings.TrimSpace(doc.Find(`[data-testid="login-error"]`).Text())
}

// respSessionCookie returns the session cookie a response sets, or nil.
func respSessionCookie(resp *http.Response) *http.Cookie {
	for _, c := range resp.Cookies() {
		if c.Name == web.SessionCookie {
			return c
		}
	}
	return nil
}

var authZH = i18n.Printer{Lang: i18n.ZH}

func TestLogin_OK(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	c := ts.client(t)
	resp, _ := ts.postForm(t, c, "/login", url.Values{"username": {"ADMIN"}, "password": {ts.AdminPassword}, "next": {"/desk?tab=import"}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/desk?tab=import" {
		t.Fatalf("status %d, location %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	ck := respSessionCookie(resp)
	if ck == nil || len(ck.Value) < 40 {
		t.Fatalf("session cookie = %+v", ck)
	}
	if !ck.HttpOnly || ck.SameSite != http.SameSiteLaxMode || ck.Path != "/" || ck.Secure {
		t.Errorf("cookie flags: HttpOnly %v SameSite %v Path %q Secure %v (plain HTTP)", ck.HttpOnly, ck.SameSite, ck.Path, ck.Secure)
	}
	if ck.MaxAge != int((12 * time.Hour).Seconds()) {
		t.Errorf("MaxAge = %d", ck.MaxAge)
	}
	_, u, err := ts.DB.FindSession(t.Context(), ck.Value)
	if err != nil || u.Username != "admin" || u.Role != store.UserAdmin {
		t.Fatalf("server-side session: %+v %v", u, err)
	}
	if !ts.loggedIn(t, c) {
		t.Fatal("session does not work")
	}
}

// TestLogin_Landing checks that a login not sent from a page lands each
// role on the page of its job, and so does a logged-in visit of the login
// form or of the site's root.
func TestLogin_Landing(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	ts.createUser(t, "li", store.UserStaff, "li-password")
	ts.createUser(t, "wang", store.UserIssuer, "wang-password")
	for _, tc := range []struct{ user, password, want string }{
		{"admin", ts.AdminPassword, "/admin"},
		{"wang", "wang-password", "/desk"},
		{"li", "li-password", "/gate"},
	} {
		t.Run(tc.user, func(t *testing.T) {
			for _, next := range []string{"", "/"} {
				c := ts.client(t)
				form := url.Values{"username": {tc.user}, "password": {tc.password}}
				if next != "" {
					form.Set("next", next)
				}
				resp, _ := ts.postForm(t, c, "/login", form)
				if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != tc.want {
					t.Fatalf("next %q: status %d, location %q, want %s", next, resp.StatusCode, resp.Header.Get("Location"), tc.want)
				}
				for _, path := range []string{"/login", "/"} {
					if resp, _ := ts.get(t, c, path); resp.Header.Get("Location") != tc.want {
						t.Errorf("logged-in GET %s: location %q, want %s", path, resp.Header.Get("Location"), tc.want)
					}
				}
			}
		})
	}
}

func TestLogin_SecureCookieUnderTLS(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	h := web.New(web.Config{DB: ts.DB, Checker: ts.Checker, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}).Handler()
	req := httptest.NewRequest("POST", "https://passgate.example/login",
		strings.NewReader(url.Values{"username": {"admin"}, "password": {ts.AdminPassword}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.TLS = &tls.ConnectionState{}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	ck := respSessionCookie(rec.Result())
	if rec.Code != http.StatusSeeOther || ck == nil || !ck.Secure || !ck.HttpOnly {
		t.Fatalf("status %d, cookie %+v", rec.Code, ck)
	}
}

func TestLogin_Failures(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	ts.createUser(t, "li", store.UserStaff, "li-password")
	want := authZH.T("login.failed")
	for _, tc := range []struct{ name, user, password string }{
		{"WrongPassword", "li", "li-passwordx"},
		{"UnknownUser", "nobody", "li-password"},
		{"OtherUsersPassword", "admin", "li-password"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := ts.client(t)
			resp, msg := ts.tryLogin(t, c, tc.user, tc.password)
			if resp.StatusCode != http.StatusUnprocessableEntity {
				t.Fatalf("status %d, want 422", resp.StatusCode)
			}
			if msg != want {
				t.Fatalf("message %q, want %q", msg, want)
			}
			if ck := respSessionCookie(resp); ck != nil {
				t.Fatalf("a failed login set a session cookie: %+v", ck)
			}
		})
	}
	t.Run("Missing", func(t *testing.T) {
		resp, msg := ts.tryLogin(t, ts.client(t), "li", "")
		if resp.StatusCode != http.StatusUnprocessableEntity || msg != authZH.T("login.missing") {
			t.Fatalf("status %d, message %q", resp.StatusCode, msg)
		}
	})
	t.Run("OversizedForm", func(t *testing.T) {
		resp, msg := ts.tryLogin(t, ts.client(t), "li", strings.Repeat("x", 64<<10))
		if resp.StatusCode != http.StatusUnprocessableEntity || msg != authZH.T("login.bad_form") {
			t.Fatalf("status %d, message %q", resp.StatusCode, msg)
		}
	})
	t.Run("KeepsUsernameAndNext", func(t *testing.T) {
		resp, body := ts.postForm(t, ts.client(t), "/login", url.Values{"username": {"li"}, "password": {"x"}, "next": {"/desk"}})
		doc, _ := goquery.NewDocumentFromReader(strings.NewReader(body))
		if v, _ := doc.Find(`[data-testid="login-username"]`).Attr("value"); v != "li" || resp.StatusCode != 422 {
			t.Errorf("username kept as %q", v)
		}
		if v, _ := doc.Find(`[data-testid="login-form"] input[name="next"]`).Attr("value"); v != "/desk" {
			t.Errorf("next kept as %q", v)
		}
	})
}

func TestLogin_Form(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	resp, body := ts.get(t, ts.client(t), "/login?next=/desk")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	doc, err := goquery.NewDocumentFromReader(strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []struct{ testid, autocomplete, typ string }{
		{"login-username", "username", "text"},
		{"login-password", "current-password", "password"},
	} {
		in := doc.Find(`[data-testid="` + f.testid + `"]`)
		id, _ := in.Attr("id")
		if in.Length() != 1 || id == "" || doc.Find(`label[for="`+id+`"]`).Length() != 1 {
			t.Errorf("%s: no input with a label", f.testid)
		}
		if ac, _ := in.Attr("autocomplete"); ac != f.autocomplete {
			t.Errorf("%s: autocomplete %q", f.testid, ac)
		}
		if ty, _ := in.Attr("type"); ty != f.typ {
			t.Errorf("%s: type %q", f.testid, ty)
		}
	}
	if v, _ := doc.Find(`[data-testid="login-form"] input[name="next"]`).Attr("value"); v != "/desk" {
		t.Errorf("next = %q", v)
	}
	if doc.Find(`link[rel="stylesheet"][href*="auth."]`).Length() != 1 {
		t.Error("login stylesheet not linked")
	}
	if strings.Contains(body, "[login.") {
		t.Error("a message key has no text")
	}
	if got := doc.Find("h1").Text(); got != authZH.T("login.title") {
		t.Errorf("title %q", got)
	}
}

func TestLogin_OpenRedirect(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	ts.createUser(t, "li", store.UserStaff, "li-password")
	for _, next := range []string{
		"//evil.example", "https://evil.example", "/\\evil.example", "\\\\evil.example",
		"http:/evil.example", "evil.example", "/%0d%0aSet-Cookie:x=y", "/login", "javascript:alert(1)",
		"/\t/evil.example", "/%09/evil.example", " //evil.example", "https:/\\evil.example", "/login?next=//evil.example",
		"data:text/html,x", "/" + strings.Repeat("a", 3000),
	} {
		t.Run(next, func(t *testing.T) {
			next := next
			if strings.Contains(next, "%") {
				next, _ = url.PathUnescape(next)
			}
			for _, u := range []struct{ name, password, want string }{
				{"admin", ts.AdminPassword, "/admin"},
				{"li", "li-password", "/gate"},
			} {
				resp, _ := ts.postForm(t, ts.client(t), "/login", url.Values{"username": {u.name}, "password": {u.password}, "next": {next}})
				if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != u.want {
					t.Fatalf("%s, next %q: status %d, location %q, want %s", u.name, next, resp.StatusCode, resp.Header.Get("Location"), u.want)
				}
			}
		})
	}
	t.Run("LoginPageKeepsOnlySafeNext", func(t *testing.T) {
		_, body := ts.get(t, ts.client(t), "/login?next="+url.QueryEscape("//evil.example"))
		doc, _ := goquery.NewDocumentFromReader(strings.NewReader(body))
		if v, _ := doc.Find(`[data-testid="login-form"] input[name="next"]`).Attr("value"); v != "" {
			t.Fatalf("next = %q", v)
		}
	})
}

func TestLogout(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	c := ts.login(t, "admin", ts.AdminPassword)
	token := ts.sessionToken(c)
	resp, _ := ts.postForm(t, c, "/logout", nil)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/login" {
		t.Fatalf("status %d, location %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if ck := respSessionCookie(resp); ck == nil || ck.MaxAge >= 0 {
		t.Fatalf("cookie not cleared: %+v", ck)
	}
	if _, _, err := ts.DB.FindSession(t.Context(), token); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("session still stored: %v", err)
	}
	// A copy of the old cookie (say, stolen) no longer works.
	old := ts.client(t)
	u, _ := url.Parse(ts.Srv.URL)
	old.Jar.SetCookies(u, []*http.Cookie{{Name: web.SessionCookie, Value: token}})
	if ts.loggedIn(t, old) {
		t.Fatal("old cookie still logged in")
	}
	if resp, _ := ts.postForm(t, old, "/logout", nil); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("logout with an ended session: %d, want 401", resp.StatusCode)
	}
}

func TestSession_RevokedOnPasswordChange(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	li := ts.createUser(t, "li", store.UserStaff, "old-password")
	c := ts.login(t, "li", "old-password")
	hash, err := store.HashPassword("new-password")
	if err != nil {
		t.Fatal(err)
	}
	if err := ts.DB.SetPassword(context.Background(), li.ID, hash, "admin", false); err != nil {
		t.Fatal(err)
	}
	if ts.loggedIn(t, c) {
		t.Fatal("session survived a password change")
	}
	if resp, _ := ts.tryLogin(t, ts.client(t), "li", "old-password"); resp.StatusCode != http.StatusUnprocessableEntity {
		t.Fatalf("old password: status %d", resp.StatusCode)
	}
	ts.login(t, "li", "new-password")
}

func TestSession_DisabledUser(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	li := ts.createUser(t, "li", store.UserStaff, "li-password")
	c := ts.login(t, "li", "li-password")
	if err := ts.DB.DisableUser(context.Background(), li.ID, "admin"); err != nil {
		t.Fatal(err)
	}
	if ts.loggedIn(t, c) {
		t.Fatal("a disabled user's session still works")
	}
	resp, msg := ts.tryLogin(t, ts.client(t), "li", "li-password")
	if resp.StatusCode != http.StatusUnprocessableEntity || msg != authZH.T("login.failed") || respSessionCookie(resp) != nil {
		t.Fatalf("disabled user login: status %d, message %q", resp.StatusCode, msg)
	}
}

func TestSession_SlidingExpiry(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	c := ts.login(t, "admin", ts.AdminPassword)
	token := ts.sessionToken(c)
	ctx := t.Context()
	start := time.Now()
	at := func(d time.Duration) { ts.DB.Now = func() time.Time { return start.Add(d) } }

	// Within a minute of the last touch nothing is written.
	s0, _, err := ts.DB.FindSession(ctx, token)
	if err != nil {
		t.Fatal(err)
	}
	at(30 * time.Second)
	if !ts.loggedIn(t, c) {
		t.Fatal("fresh session does not work")
	}
	if s, _, _ := ts.DB.FindSession(ctx, token); !s.LastSeen.Equal(s0.LastSeen) || !s.ExpiresAt.Equal(s0.ExpiresAt) {
		t.Fatalf("session touched within a minute: %v → %v", s0.LastSeen, s.LastSeen)
	}
	// Used after 11 hours: extended to 12 hours from then.
	at(11 * time.Hour)
	if !ts.loggedIn(t, c) {
		t.Fatal("session expired before 12 hours")
	}
	if s, _, _ := ts.DB.FindSession(ctx, token); s.ExpiresAt.Before(start.Add(23*time.Hour - time.Second)) {
		t.Fatalf("not extended: expires %v", s.ExpiresAt.Sub(start))
	}
	at(22 * time.Hour)
	if !ts.loggedIn(t, c) {
		t.Fatal("extended session expired")
	}
	// 12 hours unused: gone, and the browser's cookie is cleared.
	at(35 * time.Hour)
	resp, _ := ts.get(t, c, "/login")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("expired session: login page status %d", resp.StatusCode)
	}
	if ck := respSessionCookie(resp); ck == nil || ck.MaxAge >= 0 {
		t.Fatalf("expired cookie not cleared: %+v", ck)
	}
}

func TestLogin_Throttle(t *testing.T) {
	t.Parallel()
	t.Run("Account", testLoginThrottleAccount)
	t.Run("MessageInEnglish", testLoginThrottleMessageInEnglish)
	t.Run("UnknownNamesToo", testLoginThrottleUnknownNamesToo)
	t.Run("SuccessResetsAccount", testLoginThrottleSuccessResetsAccount)
	t.Run("Address", testLoginThrottleAddress)
	t.Run("IgnoresForwardedFor", testLoginThrottleIgnoresForwardedFor)
}

func testLoginThrottleAccount(t *testing.T) {
	ts := newTestServer(t)
	ts.createUser(t, "li", store.UserStaff, "li-password")
	c := ts.client(t)
	for i := range 5 {
		if resp, _ := ts.tryLogin(t, c, "li", "wrong"+strconv.Itoa(i)); resp.StatusCode != http.StatusUnprocessableEntity {
			t.Fatalf("attempt %d: status %d", i+1, resp.StatusCode)
		}
	}
	// The right password no longer helps, and the name is matched as
	// the login matches it: case-insensitively.
	resp, msg := ts.tryLogin(t, c, "LI", "li-password")
	if resp.StatusCode != http.StatusTooManyRequests || respSessionCookie(resp) != nil {
		t.Fatalf("6th attempt: status %d, want 429", resp.StatusCode)
	}
	if ra, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || ra <= 0 || ra > 15*60 {
		t.Fatalf("Retry-After = %q", resp.Header.Get("Retry-After"))
	}
	if msg != authZH.T("login.throttled", 15) {
		t.Fatalf("message %q", msg)
	}
	// Another account from the same address is not affected.
	ts.login(t, "admin", ts.AdminPassword)
}

func testLoginThrottleMessageInEnglish(t *testing.T) {
	ts := newTestServer(t)
	c := ts.client(t)
	u, _ := url.Parse(ts.Srv.URL)
	c.Jar.SetCookies(u, []*http.Cookie{{Name: i18n.CookieName, Value: "en"}})
	for range 5 {
		ts.tryLogin(t, c, "admin", "wrong")
	}
	resp, msg := ts.tryLogin(t, c, "admin", "wrong")
	if resp.StatusCode != http.StatusTooManyRequests || !strings.HasPrefix(msg, "Too many failed logins") {
		t.Fatalf("status %d, message %q", resp.StatusCode, msg)
	}
}

func testLoginThrottleUnknownNamesToo(t *testing.T) {
	// Otherwise a 429 would tell which names exist.
	ts := newTestServer(t)
	c := ts.client(t)
	for range 5 {
		ts.tryLogin(t, c, "nobody", "wrong")
	}
	if resp, _ := ts.tryLogin(t, c, "nobody", "wrong"); resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("status %d, want 429", resp.StatusCode)
	}
}

func testLoginThrottleSuccessResetsAccount(t *testing.T) {
	ts := newTestServer(t)
	c := ts.client(t)
	for range 4 {
		ts.tryLogin(t, c, "admin", "wrong")
	}
	ts.login(t, "admin", ts.AdminPassword)
	for i := range 4 {
		if resp, _ := ts.tryLogin(t, c, "admin", "wrong"); resp.StatusCode != http.StatusUnprocessableEntity {
			t.Fatalf("attempt %d after a success: status %d", i+1, resp.StatusCode)
		}
	}
}

func testLoginThrottleAddress(t *testing.T) {
	ts := newTestServer(t)
	c := ts.client(t)
	// 5 names × 4 failures = 20 failures from one address; no
	// account reaches its own limit.
	for i := range 20 {
		name := "user" + strconv.Itoa(i%5)
		if resp, _ := ts.tryLogin(t, c, name, "wrong"); resp.StatusCode != http.StatusUnprocessableEntity {
			t.Fatalf("attempt %d: status %d", i+1, resp.StatusCode)
		}
	}
	resp, _ := ts.tryLogin(t, c, "admin", ts.AdminPassword)
	if resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("status %d, want 429 for the address", resp.StatusCode)
	}
}

func testLoginThrottleIgnoresForwardedFor(t *testing.T) {
	ts := newTestServer(t)
	for i := range 21 {
		req, _ := http.NewRequest("POST", ts.Srv.URL+"/login",
			strings.NewReader(url.Values{"username": {"n" + strconv.Itoa(i%5)}, "password": {"wrong"}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("X-Forwarded-For", "10.0.0."+strconv.Itoa(i))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if want := http.StatusUnprocessableEntity; i == 20 {
			if resp.StatusCode != http.StatusTooManyRequests {
				t.Fatalf("21st attempt with a fresh X-Forwarded-For: status %d, want 429", resp.StatusCode)
			}
		} else if resp.StatusCode != want {
			t.Fatalf("attempt %d: status %d", i+1, resp.StatusCode)
		}
	}
}

func TestLang(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	c := ts.client(t)
	resp, _ := ts.postForm(t, c, "/lang", url.Values{"lang": {"en"}, "next": {"/login?next=%2Fdesk"}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/login?next=%2Fdesk" {
		t.Fatalf("status %d, location %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	var ck *http.Cookie
	for _, x := range resp.Cookies() {
		if x.Name == i18n.CookieName {
			ck = x
		}
	}
	if ck == nil || ck.Value != "en" || ck.MaxAge < 364*24*3600 || ck.SameSite != http.SameSiteLaxMode || ck.Path != "/" {
		t.Fatalf("language cookie = %+v", ck)
	}
	_, body := ts.get(t, c, "/login?next=%2Fdesk")
	doc, _ := goquery.NewDocumentFromReader(strings.NewReader(body))
	if lang, _ := doc.Find("html").Attr("lang"); lang != "en" {
		t.Errorf("html lang = %q", lang)
	}
	if got := doc.Find("h1").Text(); got != "Log in" {
		t.Errorf("h1 = %q", got)
	}
	if v, _ := doc.Find(`[data-testid="login-form"] input[name="next"]`).Attr("value"); v != "/desk" {
		t.Errorf("next lost by the language switch: %q", v)
	}
	// The switch on the login page returns to it with its destination.
	if v, _ := doc.Find(`form[action="/lang"] input[name="next"]`).Attr("value"); v != "/login?next=%2Fdesk" {
		t.Errorf("switch next = %q", v)
	}
	t.Run("Back", func(t *testing.T) {
		resp, _ := ts.postForm(t, c, "/lang", url.Values{"lang": {"zh-CN"}, "next": {"//evil.example"}})
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/" {
			t.Fatalf("status %d, location %q", resp.StatusCode, resp.Header.Get("Location"))
		}
		_, body := ts.get(t, c, "/login")
		if !strings.Contains(body, `lang="zh-CN"`) {
			t.Error("not back in Chinese")
		}
	})
	t.Run("Unknown", func(t *testing.T) {
		resp, _ := ts.postForm(t, ts.client(t), "/lang", url.Values{"lang": {"fr"}})
		if resp.StatusCode != http.StatusUnprocessableEntity {
			t.Fatalf("status %d, want 422", resp.StatusCode)
		}
	})
}

func TestLogin_CrossOrigin(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	req, _ := http.NewRequest("POST", ts.Srv.URL+"/login",
		strings.NewReader(url.Values{"username": {"admin"}, "password": {ts.AdminPassword}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", "https://evil.example")
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	resp, err := ts.client(t).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || respSessionCookie(resp) != nil {
		t.Fatalf("cross-origin login: status %d, want 403", resp.StatusCode)
	}
}
