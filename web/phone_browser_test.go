package web_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"
	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"passgate/districtsync"
	"passgate/pass"
	"passgate/store"
	"passgate/web"
	"passgate/web/i18n"
)

// phoneWidth × phoneHeight is a common phone's viewport in CSS pixels.
const phoneWidth, phoneHeight = 390, 844

// notPages are GET routes that answer something other than a page a
// person reads: health probes, metrics, files, streams and JSON.
var notPages = map[string]bool{
	"GET /livez": true, "GET /readyz": true, "GET /metrics": true, "GET /assets/": true,
	"GET /gate/events": true, "GET /admin/ca.crt": true, "GET /admin/ca.pem": true, "GET /admin/trust/anchor": true,
	"GET /admin/export/jobs/{id}/status": true, "GET /admin/export/jobs/{id}/file": true,
	"GET /admin/dashboard": true, // the landing page's panel, fetched to refresh it
	// A trace's result and the people in it open only in the session
	// that ran the trace (TestTraceBrowser_PersonPhoneAndYellow opens
	// them); a fixture made here would belong to another session.
	"GET /admin/trace/{token}": true, "GET /admin/trace/{token}/person/{subject}": true,
}

// fit is what a page measures at the phone's width.
type fit struct {
	ScrollWidth float64  `json:"sw"`
	InnerWidth  float64  `json:"iw"`
	Wide        []string `json:"wide"` // elements reaching past the viewport
	Status      string   `json:"status"`
}

// measureFit finds the page's width and every element whose box reaches
// past the viewport's edges, even inside a scrolling box: a table a phone
// user must scroll sideways does not fit either.
const measureFit = `(() => {
  const iw = 390, wide = []; // phoneWidth: a page too wide widens a mobile viewport
  for (const el of document.body.querySelectorAll("*")) {
    const r = el.getBoundingClientRect();
    if (r.width === 0 || r.height === 0) continue;
    if (r.right > iw + 0.5 || r.left < -0.5) {
      // Report the outermost culprit only.
      if (el.parentElement && wide.some(w => w.el.contains(el))) continue;
      wide.push({el, desc: el.tagName.toLowerCase() + (el.id ? "#" + el.id : "") +
        (el.className && typeof el.className === "string" ? "." + el.className.trim().split(/\s+/).join(".") : "") +
        (el.dataset.testid ? "[" + el.dataset.testid + "]" : "") + " " + Math.round(r.left) + ".." + Math.round(r.right)});
    }
  }
  const s = document.querySelector("[data-testid=error-page]");
  return {sw: document.documentElement.scrollWidth, iw: window.innerWidth, wide: wide.map(w => w.desc),
    status: s ? s.dataset.status : ""};
})()`

// brokenNames lists the row names of a page's tables that break over
// lines: a table squeezed into a phone breaks them letter by letter.
const brokenNames = `[...document.querySelectorAll("table th[scope=row]")].filter(el => {
  const r = document.createRange(); r.selectNodeContents(el.firstChild || el);
  return new Set([...r.getClientRects()].map(b => Math.round(b.top))).size > 1;
}).map(el => el.textContent.trim())`

// newPhoneBrowser is newBrowser with a tab the size of a phone's screen.
func newPhoneBrowser(t *testing.T) context.Context {
	t.Helper()
	ctx := newBrowser(t)
	if _, err := chromedp.Call(ctx, emulation.SetDeviceMetricsOverride, emulation.SetDeviceMetricsOverrideParams{
		Width: phoneWidth, Height: phoneHeight, DeviceScaleFactor: 2, Mobile: true,
	}); err != nil {
		t.Fatal(err)
	}
	return ctx
}

// TestPagesFitAPhone logs in as each role and opens every page the route
// table lets it reach, in Chinese and in English, at a phone's width: no
// page may scroll sideways and nothing may reach past the screen's edge.
// Screenshots go to $ARTIFACTS.
func TestPagesFitAPhone(t *testing.T) {
	skipLayoutUnderRace(t)
	t.Parallel()
	base, ts := startBrowserServer(t)
	ts.createUser(t, "gate1", store.UserStaff, "gate-password-1")
	ts.createUser(t, "desk1", store.UserIssuer, "desk-password-1")

	// Fixtures for the routes with parameters.
	params := phonePageFixtures(t, ts)
	person := "/desk/people/" + params["{subject}"]

	// Each role visits the pages its access reaches, and one it may not
	// (the refusal page), and a page that does not exist.
	rank := map[store.UserRole]web.Access{store.UserStaff: web.Staff, store.UserIssuer: web.Issuer, store.UserAdmin: web.Admin}
	pages := phonePages(t, ts, params)

	ctx := newPhoneBrowser(t)
	for _, role := range []struct {
		user, password string
		name           store.UserRole
	}{
		{"", "", "anonymous"},
		{"gate1", "gate-password-1", store.UserStaff},
		{"desk1", "desk-password-1", store.UserIssuer},
		{"admin", ts.AdminPassword, store.UserAdmin},
	} {
		if _, err := chromedp.Call(ctx, network.ClearBrowserCookies, cdp.Empty{}); err != nil {
			t.Fatal(err)
		}
		if role.user != "" {
			browserLogin(t, ctx, base, role.user, role.password, "")
		}
		for _, lang := range i18n.Langs {
			if _, err := chromedp.Call(ctx, network.SetCookie, network.SetCookieParams{Name: i18n.CookieName, Value: string(lang), URL: base}); err != nil {
				t.Fatal(err)
			}
			visit := func(name string, nav func() error) { checkPhoneFit(t, ctx, string(role.name), string(lang), name, nav) }
			if role.user == "" {
				visit("/login", goTo(ctx, base+"/login"))
				visit("/no/such/page", goTo(ctx, base+"/no/such/page"))
				continue
			}
			for _, pg := range pages {
				if pg.access <= rank[role.name] {
					visit(pg.path, goTo(ctx, base+pg.path))
				}
			}
			if role.name != store.UserAdmin {
				visit("forbidden", goTo(ctx, base+"/admin/status"))
			}
			if role.name != store.UserStaff {
				// The phone pass is the answer to a form, not a GET page.
				visit("phone-pass", submitPhonePass(ctx, base+person))
			}
		}
	}
}

// checkPhoneFit opens one page with nav and fails the test when the page,
// as role sees it in lang, does not fit a phone's width.
func checkPhoneFit(t *testing.T, ctx context.Context, role, lang, name string, nav func() error) {
	t.Helper()
	if err := nav(); err != nil {
		t.Fatalf("%s %s %s: %v", role, lang, name, err)
	}
	waitJS(t, ctx, "page load", `document.readyState === "complete"`, 10*time.Second)
	f := evalJS[fit](t, ctx, measureFit)
	shot := fmt.Sprintf("phone-%s-%s-%s", role, lang, strings.NewReplacer("/", "_", "?", "_").Replace(strings.Trim(name, "/")))
	screenshot(t, ctx, shot)
	if name == "/admin/users" {
		// A role name is one term: it must not break over lines.
		wrapped := evalJS[[]string](t, ctx, `[...document.querySelectorAll("[data-testid=role]")].filter(el => {
			const r = document.createRange(); r.selectNodeContents(el);
			return new Set([...r.getClientRects()].map(b => Math.round(b.top))).size > 1;
		}).map(el => el.textContent.trim())`)
		if len(wrapped) > 0 {
			t.Errorf("%s %s: role names wrap: %q", role, lang, wrapped)
		}
	}
	// A mobile browser widens its viewport to a page that does not fit,
	// so a wider innerWidth is an overflow too.
	if f.InnerWidth != phoneWidth || f.ScrollWidth > f.InnerWidth || len(f.Wide) > 0 {
		t.Errorf("%s %s %s: page %v wide at %v; past the edge: %v", role, lang, name, f.ScrollWidth, f.InnerWidth, f.Wide)
	}
	if broken := evalJS[[]string](t, ctx, brokenNames); len(broken) > 0 {
		t.Errorf("%s %s %s: names broken over lines: %q", role, lang, name, broken)
	}
}

// submitPhonePass opens a person's page and asks for a phone pass: the
// phone pass is the answer to a form, not a GET page.
func submitPhonePass(ctx context.Context, personURL string) func() error {
	return func() error {
		if err := chromedp.Do(ctx, chromedp.Navigate(personURL)); err != nil {
			return err
		}
		_, err := chromedp.Run(ctx, chromedp.Evaluate[any](`document.querySelector('input[name=kind][value=phone]').form.submit()`))
		if err != nil {
			return err
		}
		deadline := time.Now().Add(10 * time.Second)
		for {
			at, err := chromedp.Run(ctx, chromedp.Evaluate[string](`location.pathname`))
			if err == nil && strings.HasSuffix(at, "/pass") {
				return nil
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("no phone pass page")
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// phonePageFixtures makes what the routes with parameters need: a
// resident with a test, a status change and a long reason, and a finished
// export; and a few checks through the gate, so that the status page and
// the gate screen's live list have rows. It returns the values of the
// routes' parameters.
func phonePageFixtures(t *testing.T, ts *testServer) map[string]string {
	t.Helper()
	admin := ts.login(t, "admin", ts.AdminPassword)
	person := deskRegister(t, ts, admin, "欧阳娜娜", "mainland", mainlandID(7), "13800138000")
	now := time.Now()
	ts.postForm(t, admin, person+"/test", url.Values{"sample_time": {now.Add(-2 * time.Hour).Format("2006-01-02T15:04")}, "result": {"negative"}})
	ts.postForm(t, admin, person+"/status", url.Values{"color": {"yellow"}, "reason": {strings.Repeat("密接者同住人员需居家观察", 4)}})
	resp, _ := ts.postForm(t, admin, "/admin/export", exportForm(now.AddDate(0, 0, -7).Format("2006-01-02"), now.Format("2006-01-02")))
	job := resp.Header.Get("Location")
	if !strings.HasPrefix(job, "/admin/export/jobs/") {
		t.Fatalf("export job: status %d, location %q", resp.StatusCode, job)
	}
	params := map[string]string{"{subject}": strings.TrimPrefix(person, "/desk/people/"), "{id}": strings.TrimPrefix(job, "/admin/export/jobs/")}
	// A few checks through the gate, so that the status page and the gate
	// screen's live list have rows, one of them a long unbroken text.
	for _, text := range []string{"not a pass", strings.Repeat("X", 300), "PG1:" + strings.Repeat("A", 120)} {
		ts.postForm(t, admin, "/gate/check", url.Values{"payload": {text}})
	}
	return params
}

// phonePage is a page of the route table and the access it needs.
type phonePage struct {
	path   string
	access web.Access
}

// phonePages lists the GET pages of the route table, their parameters
// filled from params, and a page that does not exist.
func phonePages(t *testing.T, ts *testServer, params map[string]string) []phonePage {
	t.Helper()
	var pages []phonePage
	for _, rt := range ts.Web.Routes() {
		if !strings.HasPrefix(rt.Pattern, "GET ") || notPages[rt.Pattern] || rt.Access < web.Staff || rt.Access > web.Admin {
			continue
		}
		path := strings.TrimPrefix(rt.Pattern, "GET ")
		path = strings.TrimSuffix(path, "{$}")
		for k, v := range params {
			path = strings.ReplaceAll(path, k, v)
		}
		if strings.Contains(path, "{") {
			t.Fatalf("route %s has a parameter this test cannot fill: add a fixture", rt.Pattern)
		}
		pages = append(pages, phonePage{path, rt.Access})
	}
	pages = append(pages, phonePage{"/no/such/page", web.Staff})
	if len(pages) < 15 {
		t.Fatalf("only %d pages found in the route table", len(pages))
	}
	return pages
}

// goTo is a visit that opens url.
func goTo(ctx context.Context, url string) func() error {
	return func() error { return chromedp.Do(ctx, chromedp.Navigate(url)) }
}

// TestDataPagesFitAPhone opens, at a phone's width and in both languages,
// the admin pages that only grow with data: a hub's registry with a
// pending and an enrolled appliance (and the one-time code shown when one
// is added), the trust page with another district imported, and a gate
// screen whose live list is full of checks from a gateway with a long
// name at a long-named entrance, some arriving while it is open.
func TestDataPagesFitAPhone(t *testing.T) {
	skipLayoutUnderRace(t)
	t.Parallel()
	ca := hubCA(t)
	ts := newTestServer(t, web.Config{HubIdentity: ca})
	t.Cleanup(ts.Srv.CloseClientConnections)
	base := ts.Srv.URL
	bg := t.Context()
	admin := ts.login(t, "admin", ts.AdminPassword)

	// The registry: one enrolled from a file, one pending.
	phoneRegistryFixture(t, ts, admin, ca)

	// Another district trusted.
	file, a := otherDistrictAnchor(t)
	fp := pass.FormatFingerprint(a.Roots[0].Fingerprint())
	if resp, _ := ts.postForm(t, admin, "/admin/trust/import", url.Values{"anchor": {string(file)}, "fingerprint": {fp}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("trust import: %d", resp.StatusCode)
	}

	// A gateway with a long name at a long-named entrance, and many checks.
	gw := "东门南侧第二通道闸机扫码网关"
	_, token, err := ts.DB.CreateDevice(bg, gw, "admin")
	if err != nil {
		t.Fatal(err)
	}
	if err := ts.DB.SetEntrance(bg, gw, "东门南侧第二通道（地下车库入口）", "admin"); err != nil {
		t.Fatal(err)
	}
	// The appliance's own scanners, their device paths long and missing
	// (so their state carries an error).
	for _, in := range []url.Values{
		{"name": {"north-door-serial-scanner-1"}, "kind": {"serial"}, "spec": {"/dev/serial/by-id/usb-Honeywell_Imaging___Mobility_1900_21234B0123456789-if00,baud=9600,suffix=cr"}},
		{"name": {"kiosk-evdev-keyboard-wedge-2"}, "kind": {"evdev"}, "spec": {"/dev/input/by-id/usb-Newland_Auto-ID_NLS-HR32_Barcode_Scanner_0123456789ABCDEF-event-kbd"}},
	} {
		if resp, body := ts.postForm(t, admin, "/admin/inputs", in); resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("add input %s: %d %.300s", in.Get("name"), resp.StatusCode, body)
		}
	}
	green := issuePass(t, ts.DB, "欧阳娜娜", mainlandID(3), 0)
	for i := range 25 {
		payload := green
		if i%3 == 0 {
			payload = "PG1:" + strings.Repeat("A", 200)
		}
		postScan(t, base, token, payload)
	}

	ctx := newPhoneBrowser(t)
	browserLogin(t, ctx, base, "admin", ts.AdminPassword, "")
	check := func(lang i18n.Lang, name string) {
		t.Helper()
		waitJS(t, ctx, "page load", `document.readyState === "complete"`, 10*time.Second)
		f := evalJS[fit](t, ctx, measureFit)
		screenshot(t, ctx, fmt.Sprintf("phone-data-%s-%s", lang, strings.NewReplacer("/", "_", "?", "_").Replace(strings.Trim(name, "/"))))
		if f.InnerWidth != phoneWidth || f.ScrollWidth > f.InnerWidth || len(f.Wide) > 0 {
			t.Errorf("%s %s: page %v wide at %v; past the edge: %v", lang, name, f.ScrollWidth, f.InnerWidth, f.Wide)
		}
		// A table squeezed into a phone breaks its names letter by
		// letter: a row's name must keep to one line.
		broken := evalJS[[]string](t, ctx, brokenNames)
		if len(broken) > 0 {
			t.Errorf("%s %s: names broken over lines: %q", lang, name, broken)
		}
	}
	for i, lang := range i18n.Langs {
		if _, err := chromedp.Call(ctx, network.SetCookie, network.SetCookieParams{Name: i18n.CookieName, Value: string(lang), URL: base}); err != nil {
			t.Fatal(err)
		}
		for _, path := range []string{"/admin/appliances", "/admin/trust", "/admin/status", "/admin/inputs", "/admin/devices"} {
			if err := chromedp.Do(ctx, chromedp.Navigate(base+path)); err != nil {
				t.Fatal(err)
			}
			check(lang, path)
		}
		// The one-time code, as the page shows it after adding one.
		if err := chromedp.Do(ctx, chromedp.Navigate(base+"/admin/appliances")); err != nil {
			t.Fatal(err)
		}
		evalJS[bool](t, ctx, `(function () { var f = document.querySelector('form[data-testid=add-appliance]');
			f.querySelector('input[name=name]').value = "西门临时检测点`+strconv.Itoa(i)+`"; f.submit(); return true; })()`)
		waitJS(t, ctx, "the code", `!!document.querySelector('[data-testid=code]')`, 10*time.Second)
		check(lang, "appliance-code")

		if err := chromedp.Do(ctx, chromedp.Navigate(base+"/gate")); err != nil {
			t.Fatal(err)
		}
		waitJS(t, ctx, "the live feed", `document.getElementById('gate-feed').dataset.state === 'live'`, 5*time.Second)
		for range 3 {
			postScan(t, base, token, green)
		}
		waitJS(t, ctx, "the live rows", `document.querySelectorAll('[data-testid=gate-recent-row]').length >= 20`, 5*time.Second)
		check(lang, "/gate")
	}
}

// phoneRegistryFixture fills a hub's registry of appliances: one
// enrolled from a file, one pending, both with long names.
func phoneRegistryFixture(t *testing.T, ts *testServer, admin *http.Client, ca []byte) {
	t.Helper()
	resp, body := ts.postForm(t, admin, "/admin/appliances", url.Values{"name": {"东门闸机二号通道检测点"}, "issuer": {"1"}, "hours": {"48"}})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("add appliance: %d", resp.StatusCode)
	}
	doc, err := goquery.NewDocumentFromReader(strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	code, err := districtsync.ParseCode(doc.Find(`[data-testid="code"]`).Text())
	if err != nil {
		t.Fatal(err)
	}
	pend, err := districtsync.NewPending(code, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := districtsync.EnrolAppliance(t.Context(), ts.DB, &pend.Request, ca, "cli", "file /var/lib/passgate/enrol-request-dongmen-2.json"); err != nil {
		t.Fatal(err)
	}
	ts.postForm(t, admin, "/admin/appliances", url.Values{"name": {"社区卫生服务中心发码台"}, "hours": {"168"}})
}
