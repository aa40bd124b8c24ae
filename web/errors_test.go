package web_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/PuerkitoBio/goquery"

	"passgate/store"
	"passgate/web/i18n"
)

// errorPage is what a test reads from an error page.
type errorPage struct {
	status  int
	code    string
	title   string
	message string
	nav     []string // data-testid of the navigation links
	login   bool     // offers the login form
	home    bool     // offers the user's start page
	lang    string
}

// fetchPage sends req with c and reads the error page it answers.
func fetchPage(t *testing.T, c *http.Client, req *http.Request) (*http.Response, errorPage) {
	t.Helper()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	doc, err := goquery.NewDocumentFromReader(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	ep := errorPage{status: resp.StatusCode}
	sec := doc.Find(`[data-testid="error-page"]`)
	ep.code, _ = sec.Attr("data-code")
	ep.title = strings.TrimSpace(sec.Find("h1").Text())
	ep.message = strings.TrimSpace(sec.Find(`[data-testid="message"]`).Text())
	doc.Find(`nav[aria-label="main"] a`).Each(func(_ int, a *goquery.Selection) {
		id, _ := a.Attr("data-testid")
		ep.nav = append(ep.nav, id)
	})
	ep.login = sec.Find(`[data-testid="error-login"]`).Length() == 1
	ep.home = sec.Find(`[data-testid="error-home"]`).Length() == 1
	ep.lang, _ = doc.Find("html").Attr("lang")
	return resp, ep
}

func newReq(t *testing.T, ts *testServer, method, path, body string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, ts.Srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	return req
}

// setLang makes c's browser choose lang, as the language switch does.
func setLang(t *testing.T, ts *testServer, c *http.Client, lang i18n.Lang) {
	t.Helper()
	u, _ := url.Parse(ts.Srv.URL)
	c.Jar.SetCookies(u, []*http.Cookie{{Name: i18n.CookieName, Value: string(lang), Path: "/"}})
}

// TestErrorPages checks every refusal a person can meet: each answers its
// status with the one error page, in the chosen language, under the
// navigation of the visitor's role, with a way on.
func TestErrorPages(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	ts.createUser(t, "li", store.UserStaff, "li-password")
	ts.createUser(t, "wang", store.UserIssuer, "wang-password")
	staff := ts.login(t, "li", "li-password")
	issuer := ts.login(t, "wang", "wang-password")
	admin := ts.login(t, "admin", ts.AdminPassword)
	zh, en := i18n.Printer{Lang: i18n.ZH}, i18n.Printer{Lang: i18n.EN}

	for _, tc := range []struct {
		name    string
		client  *http.Client
		lang    i18n.Lang
		req     func() *http.Request
		status  int
		code    string
		nav     []string
		login   bool
		checkFn func(t *testing.T, resp *http.Response)
	}{
		{name: "ForbiddenStaff", client: staff, req: func() *http.Request { return newReq(t, ts, "GET", "/admin/users", "") },
			status: 403, code: "forbidden", nav: []string{"nav-gate"},
			checkFn: func(t *testing.T, _ *http.Response) { wantRefusal(t, ts, "li", "/admin/users", "forbidden") }},
		{name: "ForbiddenIssuerEnglish", client: issuer, lang: i18n.EN, req: func() *http.Request { return newReq(t, ts, "GET", "/admin", "") },
			status: 403, code: "forbidden", nav: []string{"nav-gate", "nav-desk"}},
		{name: "ForbiddenPost", client: staff, req: func() *http.Request { return newReq(t, ts, "POST", "/desk/find", "id_number=1") },
			status: 403, code: "forbidden", nav: []string{"nav-gate"}},
		{name: "NotFoundAdmin", client: admin, req: func() *http.Request { return newReq(t, ts, "GET", "/no/such/page", "") },
			status: 404, code: "not_found", nav: []string{"nav-gate", "nav-desk", "nav-admin"}},
		{name: "NotFoundStaffEnglish", client: staff, lang: i18n.EN, req: func() *http.Request { return newReq(t, ts, "GET", "/gate/nothing", "") },
			status: 404, code: "not_found", nav: []string{"nav-gate"}},
		{name: "NotFoundAnonymous", client: ts.client(t), req: func() *http.Request { return newReq(t, ts, "GET", "/nothing", "") },
			status: 404, code: "not_found", login: true},
		{name: "MethodNotAllowed", client: issuer, req: func() *http.Request { return newReq(t, ts, "GET", "/desk/print", "") },
			status: 405, code: "method", nav: []string{"nav-gate", "nav-desk"},
			checkFn: func(t *testing.T, resp *http.Response) {
				if allow := resp.Header.Get("Allow"); !strings.Contains(allow, "POST") {
					t.Errorf("Allow = %q", allow)
				}
			}},
		{name: "CrossOrigin", client: admin, req: func() *http.Request {
			r := newReq(t, ts, "POST", "/admin/users", url.Values{"username": {"mallory"}, "role": {"admin"}, "password": {"mallory-password-1"}}.Encode())
			r.Header.Set("Origin", "https://evil.example")
			r.Header.Set("Sec-Fetch-Site", "cross-site")
			return r
		}, status: 403, code: "cross_origin", nav: []string{"nav-gate", "nav-desk", "nav-admin"},
			checkFn: func(t *testing.T, _ *http.Response) {
				if _, err := ts.DB.FindUserByName(t.Context(), "mallory"); err == nil {
					t.Error("the cross-origin request created an account")
				}
				wantRefusal(t, ts, "admin", "/admin/users", "cross_origin")
			}},
		{name: "CrossOriginEnglish", client: issuer, lang: i18n.EN, req: func() *http.Request {
			r := newReq(t, ts, "POST", "/desk/find", "id_number=1")
			r.Header.Set("Sec-Fetch-Site", "cross-site")
			return r
		}, status: 403, code: "cross_origin", nav: []string{"nav-gate", "nav-desk"}},
		{name: "TooLarge", client: admin, req: func() *http.Request {
			return newReq(t, ts, "POST", "/admin/users", "username="+strings.Repeat("x", 64<<10))
		}, status: 413, code: "too_large", nav: []string{"nav-gate", "nav-desk", "nav-admin"}},
		{name: "TooLargeDesk", client: issuer, lang: i18n.EN, req: func() *http.Request {
			return newReq(t, ts, "POST", "/desk/find", "id_number="+strings.Repeat("x", 128<<10))
		}, status: 413, code: "too_large", nav: []string{"nav-gate", "nav-desk"}},
		{name: "LoginLapsedPost", client: ts.client(t), req: func() *http.Request { return newReq(t, ts, "POST", "/desk/find", "id_number=1") },
			status: 401, code: "login", login: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lang, p := i18n.ZH, zh
			if tc.lang == i18n.EN {
				lang, p = i18n.EN, en
			}
			setLang(t, ts, tc.client, lang)
			defer setLang(t, ts, tc.client, i18n.ZH)
			resp, ep := fetchPage(t, tc.client, tc.req())
			if ep.status != tc.status || ep.code != tc.code {
				t.Fatalf("status %d code %q, want %d %q", ep.status, ep.code, tc.status, tc.code)
			}
			if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
				t.Errorf("Content-Type %q", ct)
			}
			if ep.lang != string(lang) {
				t.Errorf("page language %q, want %s", ep.lang, lang)
			}
			if ep.title != p.T("error.title."+tc.code) || ep.message != p.T("error."+tc.code) {
				t.Errorf("title %q, message %q", ep.title, ep.message)
			}
			if strings.Join(ep.nav, ",") != strings.Join(tc.nav, ",") {
				t.Errorf("navigation %v, want %v", ep.nav, tc.nav)
			}
			if ep.login != tc.login || ep.home == tc.login {
				t.Errorf("login link %v, home link %v; want login %v", ep.login, ep.home, tc.login)
			}
			if tc.checkFn != nil {
				tc.checkFn(t, resp)
			}
		})
	}
}

// TestErrorPages_JSON checks that programs keep their JSON errors: the scan
// API in English as gateways have always read them, the pages' scripts in
// the page's language.
func TestErrorPages_JSON(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	ts.createUser(t, "li", store.UserStaff, "li-password")
	staff := ts.login(t, "li", "li-password")
	for _, tc := range []struct {
		name   string
		client *http.Client
		method string
		path   string
		accept string
		origin string
		status int
		want   string
	}{
		{"APINotFound", ts.client(t), "GET", "/api/v1/nothing", "", "", 404, "not found"},
		{"APIMethod", ts.client(t), "GET", "/api/v1/scans", "", "", 405, "method not allowed"},
		{"APICrossOrigin", ts.client(t), "POST", "/api/v1/scans", "", "https://evil.example", 403, "cross-origin request refused"},
		{"ScriptLoginLapsed", ts.client(t), "POST", "/gate/check", "application/json", "", 401, authZH.T("error.login")},
		{"ScriptForbidden", staff, "GET", "/admin/export/jobs/1/status", "application/json", "", 403, authZH.T("error.forbidden")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := newReq(t, ts, tc.method, tc.path, "")
			if tc.accept != "" {
				req.Header.Set("Accept", tc.accept)
			}
			if tc.origin != "" {
				req.Header.Set("Origin", tc.origin)
				req.Header.Set("Sec-Fetch-Site", "cross-site")
			}
			resp, err := tc.client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var body map[string]string
			if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
				t.Fatalf("status %d, not JSON: %v", resp.StatusCode, err)
			}
			if resp.StatusCode != tc.status || body["error"] != tc.want {
				t.Fatalf("status %d, error %q; want %d %q", resp.StatusCode, body["error"], tc.status, tc.want)
			}
		})
	}
}

// TestErrorPages_RecordNotFound checks that a page for a record that does
// not exist says which kind of record, on the error page, with navigation.
func TestErrorPages_RecordNotFound(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	ts.createUser(t, "wang", store.UserIssuer, "wang-password")
	issuer := ts.login(t, "wang", "wang-password")
	admin := ts.login(t, "admin", ts.AdminPassword)
	for _, tc := range []struct {
		client *http.Client
		path   string
		key    string
	}{
		{issuer, "/desk/people/" + strings.Repeat("ab", 16), "desk.err.not_found"},
		{issuer, "/desk/people/zz", "error.not_found"},
		{admin, "/admin/export/jobs/AAAAAAAAAAAAAAAAAAAAAAAAAA", "admin.exportjob.gone"},
	} {
		_, ep := fetchPage(t, tc.client, newReq(t, ts, "GET", tc.path, ""))
		if ep.status != 404 || ep.code != "not_found" || ep.message != authZH.T(tc.key) || len(ep.nav) < 2 || !ep.home {
			t.Errorf("%s: %+v", tc.path, ep)
		}
	}
}

// wantRefusal checks that the newest audit record is user's refused
// request for path.
func wantRefusal(t *testing.T, ts *testServer, user, path, why string) {
	t.Helper()
	var last store.AuditRecord
	_ = ts.DB.FindAudit(t.Context(), store.AuditFilter{Last: 1}, func(a *store.AuditRecord) error { last = *a; return nil })
	var d map[string]string
	_ = json.Unmarshal(last.Detail, &d)
	if last.Action != store.AuditRequestRefused || string(last.Actor) != user || d["path"] != path || d["why"] != why {
		t.Errorf("last audit record %s %s %s, want %s's refused %s (%s)", last.Actor, last.Action, last.Detail, user, path, why)
	}
}

// TestErrorPages_RefusalAudit checks that refusals anyone
// can cause leave no permanent record (only a log line), and that a
// hostile path cannot break a known user's record.
func TestErrorPages_RefusalAudit(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	ts.createUser(t, "li", store.UserStaff, "li-password")
	staff := ts.login(t, "li", "li-password")
	count := func() int {
		n := 0
		_ = ts.DB.FindAudit(t.Context(), store.AuditFilter{}, func(*store.AuditRecord) error { n++; return nil })
		return n
	}
	before := count()
	r := newReq(t, ts, "POST", "/desk/find", "id_number=1")
	r.Header.Set("Sec-Fetch-Site", "cross-site")
	if resp, _ := fetchPage(t, ts.client(t), r); resp.StatusCode != 403 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if n := count(); n != before {
		t.Fatalf("anonymous refusal added %d audit records", n-before)
	}
	long := "/admin/export/jobs/" + strings.Repeat("é", 3000)
	if resp, _ := fetchPage(t, staff, newReq(t, ts, "GET", long, "")); resp.StatusCode != 403 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if n := count(); n != before+1 {
		t.Fatalf("%d records for one refusal", n-before)
	}
	if _, err := ts.DB.VerifyAudit(t.Context()); err != nil {
		t.Fatal(err)
	}
}

// TestErrorPages_MuxRedirectsKept checks that the mux's own redirects (a
// missing trailing slash, an uncleaned path) still pass as redirects.
func TestErrorPages_MuxRedirectsKept(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	for path, want := range map[string]string{"/assets": "/assets/", "/gate//x/../": "/gate/"} {
		req := newReq(t, ts, "GET", "/", "")
		req.URL.Path = path
		resp, err := ts.client(t).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode/100 != 3 || resp.Header.Get("Location") != want {
			t.Errorf("%s: status %d, location %q; want a redirect to %s", path, resp.StatusCode, resp.Header.Get("Location"), want)
		}
	}
}
