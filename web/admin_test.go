package web_test

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"

	"passgate/district"
	"passgate/pass"
	"passgate/store"
	"passgate/web/i18n"
	"passgate/web/view"
)

// adminDoc parses an HTML body for goquery.
func adminDoc(t *testing.T, body string) *goquery.Document {
	t.Helper()
	doc, err := goquery.NewDocumentFromReader(strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

// byTestID finds the elements with data-testid id.
func byTestID(doc *goquery.Document, id string) *goquery.Selection {
	return doc.Find(`[data-testid="` + id + `"]`)
}

// adminLocation is where a 303 points.
func adminLocation(t *testing.T, resp *http.Response) string {
	t.Helper()
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("status %d, want 303", resp.StatusCode)
	}
	return resp.Header.Get("Location")
}

// tryLogin posts the login form and reports whether it logged in.
func tryLogin(t *testing.T, ts *testServer, name, password string) bool {
	t.Helper()
	resp, _ := ts.postForm(t, ts.client(t), "/login", url.Values{"username": {name}, "password": {password}})
	return resp.StatusCode == http.StatusSeeOther
}

// loggedIn reports whether c's session still works, by asking for a page
// any logged-in user may see: anonymous requests are sent to the login.
func loggedIn(t *testing.T, ts *testServer, c *http.Client) bool {
	t.Helper()
	resp, _ := ts.get(t, c, "/")
	return resp.StatusCode == http.StatusSeeOther && !strings.HasPrefix(resp.Header.Get("Location"), "/login")
}

// adminUsersWorld is one server for one subtest of TestAdminUsers, so
// that each runs alone: the admin logged in, and a staff member zhao.
type adminUsersWorld struct {
	ts        *testServer
	admin     *http.Client
	adminUser *store.User
	staff     *store.User
}

func newAdminUsersWorld(t *testing.T) adminUsersWorld {
	t.Helper()
	ts := newTestServer(t)
	admin := ts.login(t, "admin", ts.AdminPassword)
	adminUser, err := ts.DB.FindUserByName(t.Context(), "admin")
	if err != nil {
		t.Fatal(err)
	}
	staff := ts.createUser(t, "zhao", store.UserStaff, "zhao-password-1")
	return adminUsersWorld{ts: ts, admin: admin, adminUser: adminUser, staff: staff}
}

// userPath is the path of action on account u.
func userPath(u *store.User, action string) string {
	return fmt.Sprintf("/admin/users/%d/%s", u.ID, action)
}

func TestAdminUsers(t *testing.T) {
	t.Parallel()
	t.Run("List", testAdminUsersList)
	t.Run("CreateThenLogin", testAdminUsersCreateThenLogin)
	t.Run("BadInput422", testAdminUsersBadInput422)
	t.Run("DisableEndsSessions", testAdminUsersDisableEndsSessions)
	t.Run("NotSelfNotLastAdmin", testAdminUsersNotSelfNotLastAdmin)
	t.Run("ChangeRole", testAdminUsersChangeRole)
	t.Run("ResetPassword", testAdminUsersResetPassword)
	t.Run("NoticeOnlyForWhatHappened", testAdminUsersNoticeOnlyForWhatHappened)
	t.Run("StaffForbidden", testAdminUsersStaffForbidden)
}

func testAdminUsersList(t *testing.T) {
	w := newAdminUsersWorld(t)
	ts, admin := w.ts, w.admin
	resp, body := ts.get(t, admin, "/admin/users")
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	row := byTestID(adminDoc(t, body), "user-admin")
	if row.Length() != 1 || !strings.Contains(row.Find(`[data-testid="role"]`).Text(), "管理员") ||
		row.AttrOr("data-state", "") != "active" {
		t.Fatalf("admin row missing or wrong: %q", row.Text())
	}
	if row.Find(`[data-testid="disable"]`).Length() != 0 {
		t.Error("an admin is offered to disable themself")
	}
}

func testAdminUsersCreateThenLogin(t *testing.T) {
	ctx := t.Context()
	w := newAdminUsersWorld(t)
	ts, admin := w.ts, w.admin
	resp, _ := ts.postForm(t, admin, "/admin/users", url.Values{"username": {"wang"}, "role": {"issuer"}, "password": {"wang-password-1"}})
	if loc := adminLocation(t, resp); !strings.HasPrefix(loc, "/admin/users?") {
		t.Fatalf("redirect to %q", loc)
	}
	_, body := ts.get(t, admin, "/admin/users?done=created&name=wang")
	doc := adminDoc(t, body)
	row := byTestID(doc, "user-wang")
	if row.Length() != 1 || !strings.Contains(row.Find(`[data-testid="role"]`).Text(), "发码员") {
		t.Fatalf("new user not listed as issuer: %q", byTestID(doc, "users").Text())
	}
	if !strings.Contains(byTestID(doc, "notice").Text(), "wang") {
		t.Errorf("no confirmation: %q", byTestID(doc, "notice").Text())
	}
	u, err := ts.DB.FindUserByName(ctx, "wang")
	if err != nil || u.Role != store.UserIssuer || !strings.HasPrefix(u.PasswordHash, "$argon2id$") {
		t.Fatalf("stored user %+v, %v", u, err)
	}
	c := ts.login(t, "wang", "wang-password-1")
	if resp, _ := ts.get(t, c, "/"); resp.Header.Get("Location") != "/desk" {
		t.Errorf("issuer's start page %q, want /desk", resp.Header.Get("Location"))
	}
}

func testAdminUsersBadInput422(t *testing.T) {
	ctx := t.Context()
	w := newAdminUsersWorld(t)
	ts, admin := w.ts, w.admin
	// The duplicates below collide with an issuer already there.
	ts.createUser(t, "wang", store.UserIssuer, "wang-password-1")
	for _, tc := range []struct {
		name   string
		form   url.Values
		fields []string
	}{
		{"Duplicate", url.Values{"username": {"wang"}, "role": {"staff"}, "password": {"another-password"}}, []string{"username"}},
		{"DuplicateOtherCase", url.Values{"username": {"WANG"}, "role": {"staff"}, "password": {"another-password"}}, []string{"username"}},
		{"ShortPassword", url.Values{"username": {"li"}, "role": {"staff"}, "password": {"short123"}}, []string{"password"}},
		{"Everything", url.Values{"username": {" "}, "role": {"root"}, "password": {""}}, []string{"username", "role", "password"}},
		{"ControlCharacter", url.Values{"username": {"a\x01b"}, "role": {"staff"}, "password": {"long-enough-pw"}}, []string{"username"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := ts.postForm(t, admin, "/admin/users", tc.form)
			if resp.StatusCode != http.StatusUnprocessableEntity {
				t.Fatalf("status %d, want 422", resp.StatusCode)
			}
			doc := adminDoc(t, body)
			for _, f := range tc.fields {
				if strings.TrimSpace(byTestID(doc, "error-"+f).Text()) == "" {
					t.Errorf("no message for %s", f)
				}
			}
			if n := doc.Find(`[data-testid^="error-"]`).Length(); n != len(tc.fields) {
				t.Errorf("%d field messages, want %d", n, len(tc.fields))
			}
			if v, _ := doc.Find(`#new-username`).Attr("value"); v != strings.TrimSpace(tc.form.Get("username")) {
				t.Errorf("typed username not kept: %q", v)
			}
		})
	}
	if _, err := ts.DB.FindUserByName(ctx, "li"); err == nil {
		t.Error("user with a short password was created")
	}
}

func testAdminUsersDisableEndsSessions(t *testing.T) {
	w := newAdminUsersWorld(t)
	ts, admin := w.ts, w.admin
	staff := w.staff
	c := ts.login(t, "zhao", "zhao-password-1")
	if !loggedIn(t, ts, c) {
		t.Fatal("fresh session does not work")
	}
	resp, _ := ts.postForm(t, admin, userPath(staff, "disable"), nil)
	adminLocation(t, resp)
	if loggedIn(t, ts, c) {
		t.Fatal("disabled user's session still works")
	}
	if tryLogin(t, ts, "zhao", "zhao-password-1") {
		t.Fatal("disabled user can log in")
	}
	_, body := ts.get(t, admin, "/admin/users")
	row := byTestID(adminDoc(t, body), "user-zhao")
	if row.AttrOr("data-state", "") != "disabled" || !strings.Contains(row.Find(`[data-testid="state"]`).Text(), "已停用") {
		t.Fatalf("row does not say disabled: %q", row.Text())
	}
	resp, _ = ts.postForm(t, admin, userPath(staff, "enable"), nil)
	adminLocation(t, resp)
	if !tryLogin(t, ts, "zhao", "zhao-password-1") {
		t.Fatal("enabled user cannot log in")
	}
}

func testAdminUsersNotSelfNotLastAdmin(t *testing.T) {
	ctx := t.Context()
	w := newAdminUsersWorld(t)
	ts, admin := w.ts, w.admin
	adminUser := w.adminUser
	resp, body := ts.postForm(t, admin, userPath(adminUser, "disable"), nil)
	if resp.StatusCode != http.StatusUnprocessableEntity || byTestID(adminDoc(t, body), "row-error").Length() != 1 {
		t.Fatalf("self-disable: status %d", resp.StatusCode)
	}
	resp, body = ts.postForm(t, admin, userPath(adminUser, "role"), url.Values{"role": {"staff"}})
	if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(byTestID(adminDoc(t, body), "row-error").Text(), "最后一个") {
		t.Fatalf("demoting the last admin: status %d", resp.StatusCode)
	}
	if u, _ := ts.DB.FindUserByID(ctx, adminUser.ID); u.Role != store.UserAdmin || !u.DisabledAt.IsZero() {
		t.Fatalf("last admin changed: %+v", u)
	}
	if !loggedIn(t, ts, admin) {
		t.Fatal("admin lost their session")
	}
}

func testAdminUsersChangeRole(t *testing.T) {
	ctx := t.Context()
	w := newAdminUsersWorld(t)
	ts, admin := w.ts, w.admin
	staff := w.staff
	resp, _ := ts.postForm(t, admin, userPath(staff, "role"), url.Values{"role": {"admin"}})
	adminLocation(t, resp)
	if u, _ := ts.DB.FindUserByID(ctx, staff.ID); u.Role != store.UserAdmin {
		t.Fatalf("role %s, want admin", u.Role)
	}
	// With a second admin, the first may now step down.
	resp, _ = ts.postForm(t, admin, userPath(staff, "role"), url.Values{"role": {"staff"}})
	adminLocation(t, resp)
	resp, _ = ts.postForm(t, admin, userPath(staff, "role"), url.Values{"role": {"superuser"}})
	if resp.StatusCode != http.StatusUnprocessableEntity {
		t.Fatalf("unknown role: status %d", resp.StatusCode)
	}
	resp, _ = ts.postForm(t, admin, "/admin/users/99999/role", url.Values{"role": {"staff"}})
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("unknown user: status %d", resp.StatusCode)
	}
}

func testAdminUsersResetPassword(t *testing.T) {
	w := newAdminUsersWorld(t)
	ts, admin := w.ts, w.admin
	staff := w.staff
	c := ts.login(t, "zhao", "zhao-password-1")
	resp, body := ts.postForm(t, admin, userPath(staff, "password"), url.Values{"password": {"short"}})
	if resp.StatusCode != http.StatusUnprocessableEntity {
		t.Fatalf("short password: status %d", resp.StatusCode)
	}
	if !strings.Contains(byTestID(adminDoc(t, body), "row-error").Text(), "10") {
		t.Error("short password message does not give the minimum")
	}
	resp, body = ts.postForm(t, admin, userPath(staff, "password"), nil)
	if resp.StatusCode != 200 {
		t.Fatalf("generated reset: status %d", resp.StatusCode)
	}
	pw := strings.TrimSpace(byTestID(adminDoc(t, body), "secret").Text())
	if len(pw) < 10 {
		t.Fatalf("generated password %q", pw)
	}
	if loggedIn(t, ts, c) {
		t.Error("session survived a password reset")
	}
	if tryLogin(t, ts, "zhao", "zhao-password-1") {
		t.Error("old password still works")
	}
	ts.login(t, "zhao", pw)
	resp, _ = ts.postForm(t, admin, userPath(staff, "password"), url.Values{"password": {"typed-by-admin"}})
	adminLocation(t, resp)
	ts.login(t, "zhao", "typed-by-admin")
}

func testAdminUsersNoticeOnlyForWhatHappened(t *testing.T) {
	w := newAdminUsersWorld(t)
	ts, admin := w.ts, w.admin
	for _, q := range []string{"done=disabled&name=admin", "done=created&name=nobody", "done=role&name=zhao&role=admin"} {
		_, body := ts.get(t, admin, "/admin/users?"+q)
		if n := byTestID(adminDoc(t, body), "notice").Length(); n != 0 {
			t.Errorf("?%s shows a confirmation", q)
		}
	}
	_, body := ts.get(t, admin, "/admin/users?done=role&name=zhao&role=staff")
	if !strings.Contains(byTestID(adminDoc(t, body), "notice").Text(), "zhao") {
		t.Error("true role change not confirmed")
	}
}

func testAdminUsersStaffForbidden(t *testing.T) {
	w := newAdminUsersWorld(t)
	ts := w.ts
	c := ts.login(t, "zhao", "zhao-password-1")
	if resp, _ := ts.get(t, c, "/admin/users"); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("staff on /admin/users: %d", resp.StatusCode)
	}
	resp, _ := ts.postForm(t, c, "/admin/users", url.Values{"username": {"evil"}, "role": {"admin"}, "password": {"evil-password"}})
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("staff creating a user: %d", resp.StatusCode)
	}
}

func TestAdminDevices(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	admin := ts.login(t, "admin", ts.AdminPassword)
	scan := func(token string) int {
		req, _ := http.NewRequest("POST", ts.Srv.URL+"/api/v1/scans", strings.NewReader(`{"payload":"hello"}`))
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}

	resp, body := ts.get(t, admin, "/admin/devices")
	if resp.StatusCode != 200 || byTestID(adminDoc(t, body), "no-devices").Length() != 1 {
		t.Fatalf("empty list: status %d", resp.StatusCode)
	}
	resp, body = ts.postForm(t, admin, "/admin/devices", url.Values{"name": {"东门闸机"}})
	if resp.StatusCode != 200 {
		t.Fatalf("create: status %d", resp.StatusCode)
	}
	doc := adminDoc(t, body)
	token := strings.TrimSpace(byTestID(doc, "token").Text())
	if !strings.HasPrefix(token, "pgd_") {
		t.Fatalf("token %q", token)
	}
	usage := byTestID(doc, "token-usage").Text()
	if !strings.Contains(usage, "Authorization: Bearer "+token) || !strings.Contains(usage, ts.Srv.URL+"/api/v1/scans") {
		t.Fatalf("usage does not show how to use the token: %q", usage)
	}
	if byTestID(doc, "device-东门闸机").AttrOr("data-state", "") != "active" {
		t.Fatal("new device not listed as active")
	}
	if got := scan(token); got != 200 {
		t.Fatalf("scan with new token: %d", got)
	}
	if _, body := ts.get(t, admin, "/admin/devices"); strings.Contains(body, token) {
		t.Fatal("token shown a second time")
	}

	for _, tc := range []struct{ name, value string }{{"Duplicate", "东门闸机"}, {"Empty", "  "}, {"TooLong", strings.Repeat("长", 30)}} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := ts.postForm(t, admin, "/admin/devices", url.Values{"name": {tc.value}})
			if resp.StatusCode != http.StatusUnprocessableEntity || strings.TrimSpace(byTestID(adminDoc(t, body), "error-name").Text()) == "" {
				t.Fatalf("status %d, want 422 with a message", resp.StatusCode)
			}
		})
	}

	if _, body := ts.get(t, admin, "/admin/devices?revoked=东门闸机"); byTestID(adminDoc(t, body), "notice").Length() != 0 {
		t.Error("confirmation of a revocation that did not happen")
	}
	resp, _ = ts.postForm(t, admin, "/admin/devices/revoke", url.Values{"name": {"东门闸机"}})
	adminLocation(t, resp)
	if got := scan(token); got != http.StatusUnauthorized {
		t.Fatalf("scan with revoked token: %d, want 401", got)
	}
	_, body = ts.get(t, admin, "/admin/devices?revoked=东门闸机")
	doc = adminDoc(t, body)
	if !strings.Contains(byTestID(doc, "notice").Text(), "东门闸机") {
		t.Error("revocation not confirmed")
	}
	if row := byTestID(doc, "device-东门闸机"); row.AttrOr("data-state", "") != "disabled" || row.Find(`[data-testid="revoke"]`).Length() != 0 {
		t.Fatalf("revoked device row: %q", row.Text())
	}
	resp, _ = ts.postForm(t, admin, "/admin/devices/revoke", url.Values{"name": {"东门闸机"}})
	if resp.StatusCode != http.StatusUnprocessableEntity {
		t.Fatalf("revoking twice: %d", resp.StatusCode)
	}
}

func TestAdminPolicy(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	ctx := t.Context()
	admin := ts.login(t, "admin", ts.AdminPassword)
	iss, err := district.Issue(ctx, ts.DB, district.IssueRequest{
		Name: "黄小明", IDNumber: "G7654321", Color: pass.Yellow, Doses: -1, Actor: "test",
	})
	if err != nil {
		t.Fatal(err)
	}

	_, body := ts.get(t, admin, "/admin/policy")
	doc := adminDoc(t, body)
	if _, ok := byTestID(doc, "color-green").Attr("checked"); !ok {
		t.Error("green not checked by default")
	}
	if _, ok := byTestID(doc, "color-yellow").Attr("checked"); ok {
		t.Error("yellow checked by default")
	}
	if _, ok := doc.Find(`#test_age-72`).Attr("checked"); !ok {
		t.Error("72 h not selected by default")
	}
	if d := ts.Checker.Evaluate(iss.Text, time.Now()); d.Decision != "deny" || d.Reason != "status_yellow" {
		t.Fatalf("yellow pass before the change: %s %s", d.Decision, d.Reason)
	}

	t.Run("Bad", func(t *testing.T) {
		resp, body := ts.postForm(t, admin, "/admin/policy", url.Values{
			"colors": {"purple"}, "test_age": {"custom"}, "test_age_hours": {"abc"},
			"min_doses": {"-1"}, "repeat_minutes": {"5"}, "skew_minutes": {"99999"},
		})
		if resp.StatusCode != http.StatusUnprocessableEntity {
			t.Fatalf("status %d, want 422", resp.StatusCode)
		}
		doc := adminDoc(t, body)
		for _, f := range []string{"colors", "test_age_hours", "min_doses", "skew_minutes"} {
			if strings.TrimSpace(byTestID(doc, "error-"+f).Text()) == "" {
				t.Errorf("no message for %s", f)
			}
		}
		if byTestID(doc, "error-repeat_minutes").Length() != 0 {
			t.Error("message on a good field")
		}
		if v, _ := doc.Find(`input[name="test_age_hours"]`).Attr("value"); v != "abc" {
			t.Errorf("typed value not kept: %q", v)
		}
		if p, _ := ts.DB.Policy(ctx); p.UpdatedBy != "setup" {
			t.Fatalf("policy changed by bad input: %+v", p)
		}
		resp, _ = ts.postForm(t, admin, "/admin/policy", url.Values{"test_age": {"none"}, "min_doses": {"0"}, "repeat_minutes": {"5"}, "skew_minutes": {"5"}})
		if resp.StatusCode != http.StatusUnprocessableEntity {
			t.Fatalf("no colour: status %d", resp.StatusCode)
		}
	})

	t.Run("SaveAppliesAtOnce", func(t *testing.T) {
		resp, _ := ts.postForm(t, admin, "/admin/policy", url.Values{
			"colors": {"green", "yellow"}, "test_age": {"custom"}, "test_age_hours": {"36"},
			"min_doses": {"0"}, "accept_paper": {"1"}, "repeat_minutes": {"10"}, "skew_minutes": {"2"},
		})
		if loc := adminLocation(t, resp); loc != "/admin/policy?saved=1" {
			t.Fatalf("redirect %q", loc)
		}
		p, err := ts.DB.Policy(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Colors) != 2 || p.Colors[1] != pass.Yellow || p.MaxTestAge != 36*time.Hour || p.MinDoses != 0 ||
			!p.AcceptPaper || p.RepeatWindow != 10*time.Minute || p.ClockSkew != 2*time.Minute || p.UpdatedBy != "admin" {
			t.Fatalf("stored policy %+v", p)
		}
		// The pass has no test: with a 36 h test age it is still denied,
		// now for the test rather than the colour.
		if d := ts.Checker.Evaluate(iss.Text, time.Now()); d.Reason != "test_missing" {
			t.Fatalf("yellow pass after allowing yellow: %s %s", d.Decision, d.Reason)
		}
		resp, _ = ts.postForm(t, admin, "/admin/policy", url.Values{
			"colors": {"green", "yellow"}, "test_age": {"none"}, "min_doses": {"0"}, "repeat_minutes": {"10"}, "skew_minutes": {"2"},
		})
		adminLocation(t, resp)
		if d := ts.Checker.Evaluate(iss.Text, time.Now()); d.Decision != "allow" {
			t.Fatalf("yellow pass with yellow allowed and no test required: %s %s", d.Decision, d.Reason)
		}
		_, body := ts.get(t, admin, "/admin/policy?saved=1")
		doc := adminDoc(t, body)
		if _, ok := byTestID(doc, "color-yellow").Attr("checked"); !ok {
			t.Error("saved yellow not shown checked")
		}
		if _, ok := byTestID(doc, "accept-paper").Attr("checked"); ok {
			t.Error("accept paper shown checked after it was cleared")
		}
		if byTestID(doc, "notice").Length() != 1 || !strings.Contains(byTestID(doc, "policy-updated").Text(), "admin") {
			t.Error("no confirmation or author")
		}
	})
}

func TestAdminStatus(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	ctx := t.Context()
	admin := ts.login(t, "admin", ts.AdminPassword)
	iss, err := district.Issue(ctx, ts.DB, district.IssueRequest{
		Name: "李四", IDNumber: "G12345678", TestedAt: time.Now().Add(-2 * time.Hour), Doses: -1, Actor: "test",
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, raw := range []string{iss.Text, "nonsense", "more nonsense"} {
		if _, err := ts.Checker.Check(ctx, "test", raw); err != nil {
			t.Fatal(err)
		}
	}
	resp, body := ts.get(t, admin, "/admin/status")
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	doc := adminDoc(t, body)
	if got := byTestID(doc, "allow-today").Text(); got != "1" {
		t.Errorf("allowed today %q, want 1", got)
	}
	if got := byTestID(doc, "deny-today").Text(); got != "2" {
		t.Errorf("denied today %q, want 2", got)
	}
	if n, _ := strconv.ParseInt(byTestID(doc, "db-size").AttrOr("data-bytes", ""), 10, 64); n <= 0 {
		t.Errorf("database size %d", n)
	}
	if got := byTestID(doc, "roots").Text(); got != "1" {
		t.Errorf("roots %q, want 1", got)
	}
	d, _ := ts.DB.District(ctx)
	if got := byTestID(doc, "district").Text(); !strings.Contains(got, "雁塔区") || !strings.Contains(got, d.ID) {
		t.Errorf("district %q", got)
	}
	if byTestID(doc, "version").Text() == "" || byTestID(doc, "uptime").Text() == "" || !strings.Contains(byTestID(doc, "lists-age").Text(), "前") {
		t.Error("version, uptime or list age missing")
	}
	if rows := byTestID(doc, "recent").Find("tbody tr").Length(); rows != 3 {
		t.Errorf("%d recent rows, want 3", rows)
	}
	// Both stylesheets are served under content-hashed, immutable names;
	// the plain names are not served at all.
	links := doc.Find(`link[rel="stylesheet"]`)
	if links.Length() != 2 {
		t.Fatalf("%d stylesheets, want style.css and admin.css", links.Length())
	}
	links.Each(func(_ int, l *goquery.Selection) {
		href := l.AttrOr("href", "")
		resp, err := http.Get(ts.Srv.URL + href)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(resp.Header.Get("Cache-Control"), "immutable") {
			t.Errorf("stylesheet %s: %d %q", href, resp.StatusCode, resp.Header.Get("Cache-Control"))
		}
	})
	if resp, _ := ts.get(t, ts.client(t), "/assets/admin.css"); resp.StatusCode != 404 {
		t.Errorf("unhashed asset name served: %d", resp.StatusCode)
	}
}

func TestAdminHomeAndLanguage(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	admin := ts.login(t, "admin", ts.AdminPassword)
	ts.createUser(t, "gate1", store.UserStaff, "gate1-password")
	for _, tc := range []struct {
		c    *http.Client
		want string
	}{
		{ts.client(t), "/login?next=%2F"},
		{admin, "/admin"},
		{ts.login(t, "gate1", "gate1-password"), "/gate"},
	} {
		resp, _ := ts.get(t, tc.c, "/")
		if got := adminLocation(t, resp); got != tc.want {
			t.Errorf("/ sends to %q, want %q", got, tc.want)
		}
	}

	_, body := ts.get(t, admin, "/admin")
	doc := adminDoc(t, body)
	for _, link := range []string{"users", "devices", "policy", "status"} {
		if href, _ := byTestID(doc, "admin-link-"+link).Attr("href"); href != "/admin/"+link {
			t.Errorf("link %s goes to %q", link, href)
		}
	}
	if !strings.Contains(doc.Find("h1").Text(), "系统管理") {
		t.Errorf("default language heading %q", doc.Find("h1").Text())
	}
	u, _ := url.Parse(ts.Srv.URL)
	admin.Jar.SetCookies(u, []*http.Cookie{{Name: "passgate_lang", Value: "en"}})
	for path, want := range map[string]string{
		"/admin": "Administration", "/admin/users": "Accounts", "/admin/devices": "Scanner gateway tokens",
		"/admin/policy": "Check policy", "/admin/status": "Status",
	} {
		_, body := ts.get(t, admin, path)
		doc := adminDoc(t, body)
		if got := doc.Find("h1").Text(); got != want {
			t.Errorf("%s in English: heading %q, want %q", path, got, want)
		}
		if strings.Contains(body, "[admin.") || strings.Contains(body, "[home.") {
			t.Errorf("%s shows a missing message key", path)
		}
		if regexpHan(doc.Find("main").Text()) && path != "/admin/status" {
			t.Errorf("%s in English still shows Chinese: %q", path, doc.Find("main").Text())
		}
	}
}

// regexpHan reports whether s has Chinese characters.
func regexpHan(s string) bool {
	for _, r := range s {
		if r >= 0x4e00 && r <= 0x9fff {
			return true
		}
	}
	return false
}

func TestHumanBytes(t *testing.T) {
	t.Parallel()
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 1536: "1.5 KiB", 5 << 20: "5.0 MiB", 3 << 30: "3.0 GiB"} {
		if got := view.HumanBytes(n); got != want {
			t.Errorf("HumanBytes(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestHumanDuration(t *testing.T) {
	t.Parallel()
	zh, en := i18n.Printer{Lang: i18n.ZH}, i18n.Printer{Lang: i18n.EN}
	for _, tc := range []struct {
		d      time.Duration
		zh, en string
	}{
		{-time.Second, "0 秒", "0 s"},
		{42 * time.Second, "42 秒", "42 s"},
		{5*time.Minute + 59*time.Second, "5 分钟", "5 min"},
		{18*time.Hour + 7*time.Minute, "18 小时 7 分钟", "18 h 7 min"},
		{50 * time.Hour, "2 天 2 小时", "2 d 2 h"},
	} {
		if got := view.HumanDuration(zh, tc.d); got != tc.zh {
			t.Errorf("zh %v = %q, want %q", tc.d, got, tc.zh)
		}
		if got := view.HumanDuration(en, tc.d); got != tc.en {
			t.Errorf("en %v = %q, want %q", tc.d, got, tc.en)
		}
	}
}

// The scan retention is set on the policy page; a form without the field
// keeps the retention in force.
func TestAdminPolicyRetention(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	admin := ts.login(t, "admin", ts.AdminPassword)
	base := url.Values{"colors": {"green"}, "test_age": {"none"}, "min_doses": {"0"}, "repeat_minutes": {"5"}, "skew_minutes": {"5"}}
	form := func(days string) url.Values {
		v := url.Values{}
		for k, vs := range base {
			v[k] = vs
		}
		if days != "" {
			v.Set("retention_days", days)
		}
		return v
	}
	retention := func() time.Duration {
		p, err := ts.DB.Policy(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		return p.ScanRetention
	}
	if resp, _ := ts.postForm(t, admin, "/admin/policy", form("14")); resp.StatusCode != 303 {
		t.Fatalf("save: %d", resp.StatusCode)
	}
	if got := retention(); got != 14*24*time.Hour {
		t.Fatalf("retention %v, want 14 days", got)
	}
	if resp, _ := ts.postForm(t, admin, "/admin/policy", form("")); resp.StatusCode != 303 || retention() != 14*24*time.Hour {
		t.Fatalf("a form without the field changed the retention to %v", retention())
	}
	for _, bad := range []string{"0", "-3", "9999", "two weeks"} {
		resp, body := ts.postForm(t, admin, "/admin/policy", form(bad))
		if resp.StatusCode != 422 || !strings.Contains(body, "retention_days") {
			t.Errorf("retention %q: %d", bad, resp.StatusCode)
		}
	}
	if got := retention(); got != 14*24*time.Hour {
		t.Fatalf("a refused form changed the retention to %v", got)
	}
	_, page := ts.get(t, admin, "/admin/policy")
	if !strings.Contains(page, `value="14"`) {
		t.Error("the policy page does not show the retention in force")
	}
}
