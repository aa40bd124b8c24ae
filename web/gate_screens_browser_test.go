package web_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"passgate/pass"
	"passgate/store"
)

// postScan checks payload through the scan API as the device with token
// and returns the scan id.
func postScan(t *testing.T, base, token, payload string) int64 {
	t.Helper()
	req, _ := http.NewRequest("POST", base+"/api/v1/scans", strings.NewReader(`{"payload":`+jsString(payload)+`}`))
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Error(err)
		return 0
	}
	defer resp.Body.Close()
	var m struct {
		ScanID int64 `json:"scan_id"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil || resp.StatusCode != 200 {
		t.Errorf("scan API: status %d, %v", resp.StatusCode, err)
	}
	return m.ScanID
}

// gateTab is one gate screen in a browser tab.
type gateTab struct {
	t    *testing.T
	ctx  context.Context
	name string
}

func (g *gateTab) js(expr string) string {
	g.t.Helper()
	return evalJS[string](g.t, g.ctx, expr)
}

func (g *gateTab) text(testid string) string {
	g.t.Helper()
	return g.js(`document.querySelector('[data-testid=` + testid + `]').textContent.trim()`)
}

func (g *gateTab) state() string {
	g.t.Helper()
	return g.js(`document.getElementById('gate-result').dataset.state`)
}

func (g *gateTab) panelScan() string {
	g.t.Helper()
	return g.js(`document.getElementById('gate-result').dataset.scanId || ""`)
}

// scan types payload as a wedge scanner on this tab; it returns once the
// Enter key is up, before the answer.
func (g *gateTab) scan(payload string) {
	g.t.Helper()
	evalJS[bool](g.t, g.ctx, `window.__scan(`+jsString(payload)+`, "us", 0).then(() => true)`)
}

// openGate opens the gate screen for entrance in ctx's tab and waits for
// its live feed.
func openGate(t *testing.T, ctx context.Context, base, name, entrance string) *gateTab {
	t.Helper()
	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/gate?entrance="+url.QueryEscape(entrance))); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, name+"'s live feed", `document.getElementById('gate-feed').dataset.state === 'live'`, 5*time.Second)
	evalJS[bool](t, ctx, scannerJS)
	return &gateTab{t: t, ctx: ctx, name: name}
}

// TestGateScreensBrowser runs two gate screens (two tabs of one user, at
// two entrances) and two API gateways at once in a real Chromium: each
// panel shows only its own checks and those of the gateway assigned to
// its entrance, while every live list shows everything. Then the panel's
// hold time, a slow check, a check that times out, the replay on
// reconnect, and the end of the feed with the session (logout, a
// disabled account).
func TestGateScreensBrowser(t *testing.T) {
	// Not parallel: it reads each panel within its 2 s hold time,
	// which other tests' load would delay.
	ctx := newBrowser(t)
	base, ts := startBrowserServer(t)
	bg := t.Context()
	ts.createUser(t, "wang", store.UserStaff, "staff-password-1")
	_, north, err := ts.DB.CreateDevice(bg, "gw-north", "admin")
	if err != nil {
		t.Fatal(err)
	}
	_, side, err := ts.DB.CreateDevice(bg, "gw-side", "admin")
	if err != nil {
		t.Fatal(err)
	}
	if err := ts.DB.SetEntrance(bg, "gw-north", "北门", "admin"); err != nil {
		t.Fatal(err)
	}
	if err := ts.DB.SetGateHold(bg, 2*time.Second, "admin"); err != nil {
		t.Fatal(err)
	}
	// The network between the screen and the appliance, made slow on
	// demand: the real handler waits this long before it checks.
	var delay atomic.Int64
	ts.Web.SetGateCheckDelay(func(ctx context.Context) {
		if d := time.Duration(delay.Load()); d > 0 {
			select {
			case <-time.After(d):
			case <-ctx.Done():
			}
		}
	})
	green := issuePass(t, ts.DB, "张三明", "610113199001011230", 0)
	red := issuePass(t, ts.DB, "李四", "11010519491231002X", pass.Red)

	console := watchConsole(ctx)
	browserLogin(t, ctx, base, "wang", "staff-password-1", "/gate")
	a := openGate(t, ctx, base, "north screen", "北门")
	tabB, cancelB := chromedp.NewContext(ctx) // a second tab: same user, same session
	defer cancelB()
	consoleB := watchConsole(tabB)
	b := openGate(t, tabB, base, "south screen", "南门")

	var own = map[string][]int64{}
	w := &gateScreensWorld{ctx: ctx, ts: ts, base: base, bg: bg, north: north, side: side, delay: &delay, green: green, red: red, a: a, b: b, own: own}
	t.Run("TwoScreensAndAGatewayAtOnce", func(t *testing.T) { testGateScreensTwoScreensAndAGatewayAtOnce(t, w) })
	t.Run("NeutralAfterTheHoldTime", func(t *testing.T) { testGateScreensNeutralAfterTheHoldTime(t, w) })
	t.Run("NeutralDuringASlowCheck", func(t *testing.T) { testGateScreensNeutralDuringASlowCheck(t, w) })
	t.Run("NetworkErrorAfterThreeSeconds", func(t *testing.T) { testGateScreensNetworkErrorAfterThreeSeconds(t, w) })
	t.Run("ReplayOnlyOwnResults", func(t *testing.T) { testGateScreensReplayOnlyOwnResults(t, w) })
	t.Run("LogoutEndsEveryStreamOfTheSession", func(t *testing.T) { testGateScreensLogoutEndsEveryStreamOfTheSession(t, w) })
	t.Run("DisabledAccountStreamEnds", func(t *testing.T) { testGateScreensDisabledAccountStreamEnds(t, w) })
	console.check(t)
	consoleB.check(t)
}

// gateScreensWorld is what TestGateScreensBrowser's subtests use in turn:
// two gate screens a and b of one login session (the tab of a is ctx),
// the server, the gateways' tokens north and side, the slowed network's
// delay, a green and a red pass, and the scans each panel showed as its
// own.
type gateScreensWorld struct {
	ctx, bg     context.Context
	ts          *testServer
	base        string
	north, side string
	delay       *atomic.Int64
	green, red  string
	a, b        *gateTab
	own         map[string][]int64
}

func testGateScreensTwoScreensAndAGatewayAtOnce(t *testing.T, w *gateScreensWorld) {
	base, north, side, green, red, a, b, own := w.base, w.north, w.side, w.green, w.red, w.a, w.b, w.own
	var wg sync.WaitGroup
	var sideID int64
	wg.Add(1)
	go func() { defer wg.Done(); sideID = postScan(t, base, side, green) }()
	a.scan(green)
	b.scan(red)
	wg.Wait()
	waitJS(t, a.ctx, "the north screen's answer", `document.getElementById('gate-result').dataset.state === 'allow'`, 5*time.Second)
	waitJS(t, b.ctx, "the south screen's answer", `document.getElementById('gate-result').dataset.state === 'deny'`, 5*time.Second)
	aID, _ := strconv.ParseInt(a.panelScan(), 10, 64)
	bID, _ := strconv.ParseInt(b.panelScan(), 10, 64)
	own["a"], own["b"] = append(own["a"], aID), append(own["b"], bID)
	if aID == 0 || bID == 0 || aID == bID || aID == sideID || bID == sideID {
		t.Fatalf("panels show scans %d and %d (gateway's %d)", aID, bID, sideID)
	}
	if got := a.text("result-source"); got != "gate:wang · 北门" {
		t.Errorf("north panel's source %q", got)
	}
	if got, want := b.text("result-name"), "李*"; got != want {
		t.Errorf("south panel's name %q, want %q", got, want)
	}
	// Every list has all three, each panel only its own.
	for _, g := range []*gateTab{a, b} {
		for _, id := range []int64{aID, bID, sideID} {
			waitJS(t, g.ctx, g.name+" listing scan "+strconv.FormatInt(id, 10),
				`!!document.querySelector('[data-testid=gate-recent-row][data-scan-id="`+strconv.FormatInt(id, 10)+`"]')`, 2*time.Second)
		}
	}
	row := a.js(`document.querySelector('[data-testid=gate-recent-row][data-scan-id="` + strconv.FormatInt(bID, 10) + `"]').textContent`)
	if !strings.Contains(row, "gate:wang") || !strings.Contains(row, "南门") || strings.Contains(row, "李") {
		t.Errorf("north screen's row for the south check %q", row)
	}
	if a.panelScan() != strconv.FormatInt(aID, 10) || b.panelScan() != strconv.FormatInt(bID, 10) {
		t.Errorf("a panel changed: north %s south %s", a.panelScan(), b.panelScan())
	}
	screenshot(t, a.ctx, "gate-screens-north")
	screenshot(t, b.ctx, "gate-screens-south")

	// The gateway at the north door: on the north panel only.
	nID := postScan(t, base, north, green)
	own["a"] = append(own["a"], nID)
	waitJS(t, a.ctx, "the north gateway's check on the north panel", `document.getElementById('gate-result').dataset.scanId === "`+strconv.FormatInt(nID, 10)+`"`, 2*time.Second)
	if got := a.text("result-source"); got != "gw-north · 北门" {
		t.Errorf("north panel's source %q", got)
	}
	waitJS(t, b.ctx, "the south screen listing it", `!!document.querySelector('[data-testid=gate-recent-row][data-scan-id="`+strconv.FormatInt(nID, 10)+`"]')`, 2*time.Second)
	if got := b.panelScan(); got != strconv.FormatInt(bID, 10) {
		t.Errorf("south panel shows scan %s, want its own %d", got, bID)
	}
}

func testGateScreensNeutralAfterTheHoldTime(t *testing.T, w *gateScreensWorld) {
	green, a, own := w.green, w.a, w.own
	a.scan(green)
	waitJS(t, a.ctx, "the answer", `document.getElementById('gate-result').dataset.state === 'allow'`, 5*time.Second)
	painted := time.Now()
	id, _ := strconv.ParseInt(a.panelScan(), 10, 64)
	own["a"] = append(own["a"], id)
	waitJS(t, a.ctx, "the panel to clear", `document.getElementById('gate-result').dataset.state === 'idle'`, 4*time.Second)
	if held := time.Since(painted); held < 1500*time.Millisecond {
		t.Errorf("cleared after %v, want the 2 s hold", held)
	}
	if got := a.text("result-decision"); got != "请扫码" {
		t.Errorf("neutral headline %q", got)
	}
	if got := a.text("result-reason-other"); got != "Please scan" {
		t.Errorf("neutral panel in English %q, want it beside the Chinese", got)
	}
	for _, f := range []string{"result-name", "result-idtail", "result-color", "result-source", "result-time"} {
		if got := a.text(f); got != "" {
			t.Errorf("%s still %q after the hold", f, got)
		}
	}
	screenshot(t, a.ctx, "gate-neutral")
}

func testGateScreensNeutralDuringASlowCheck(t *testing.T, w *gateScreensWorld) {
	delay, green, red, a, own := w.delay, w.green, w.red, w.a, w.own
	// The allow lasts only the hold time: record every state the panel
	// takes, so that a slow poll on a loaded machine cannot miss it.
	a.js(`(function () { var el = document.getElementById('gate-result'); window.__states = [];
		new MutationObserver(function () { window.__states.push(el.dataset.state); }).observe(el, { attributes: true, attributeFilter: ["data-state"] });
		return ""; })()`)
	a.scan(green)
	waitJS(t, a.ctx, "the answer", `window.__states.includes('allow')`, 10*time.Second)
	id, _ := strconv.ParseInt(a.js(`document.body.dataset.lastScanId`), 10, 64)
	own["a"] = append(own["a"], id)
	delay.Store(int64(1200 * time.Millisecond))
	defer delay.Store(0)
	a.scan(red)
	// Before the answer: the previous allow is gone at once.
	if st := a.state(); st != "checking" {
		t.Fatalf("panel %q while the check runs, want checking", st)
	}
	if got := a.text("result-name"); got != "" {
		t.Errorf("previous holder %q shown while the next check runs", got)
	}
	if got, other := a.text("result-decision"), a.text("result-reason-other"); got != "核验中…" || other != "Checking…" {
		t.Errorf("checking panel %q / %q, want Chinese with English beside", got, other)
	}
	screenshot(t, a.ctx, "gate-checking")
	waitJS(t, a.ctx, "the slow answer", `document.getElementById('gate-result').dataset.state === 'deny'`, 5*time.Second)
	id, _ = strconv.ParseInt(a.panelScan(), 10, 64)
	own["a"] = append(own["a"], id)
}

func testGateScreensNetworkErrorAfterThreeSeconds(t *testing.T, w *gateScreensWorld) {
	delay, green, a := w.delay, w.green, w.a
	delay.Store(int64(6 * time.Second))
	defer delay.Store(0)
	start := time.Now()
	a.scan(green)
	waitJS(t, a.ctx, "the network error", `document.getElementById('gate-result').dataset.state === 'error'`, 5*time.Second)
	if took := time.Since(start); took < 2800*time.Millisecond {
		t.Errorf("gave up after %v, want 3 s", took)
	}
	if got := a.text("result-decision"); got != "网络异常，请重扫" {
		t.Errorf("error panel %q", got)
	}
	if got := a.text("result-reason-other"); got != "Network error, scan again" {
		t.Errorf("error panel in English %q, want it beside the Chinese", got)
	}
	for _, f := range []string{"result-name", "result-color", "result-source"} {
		if got := a.text(f); got != "" {
			t.Errorf("%s %q shown with the error", f, got)
		}
	}
	screenshot(t, a.ctx, "gate-network-error")
}

func testGateScreensReplayOnlyOwnResults(t *testing.T, w *gateScreensWorld) {
	a, b, own := w.a, w.b, w.own
	// Checks of its own, of the other screen's and of a gateway at no
	// entrance of its, after event 1: the ones a reconnect may replay.
	postScan(t, w.base, w.side, w.green)
	for _, s := range []struct {
		tab         *gateTab
		key, pass   string
		state, what string
	}{{a, "a", w.green, "allow", "the north answer"}, {b, "b", w.red, "deny", "the south answer"}} {
		before := s.tab.panelScan()
		s.tab.scan(s.pass)
		waitJS(t, s.tab.ctx, s.what, `document.getElementById('gate-result').dataset.scanId !== "`+before+`" && document.getElementById('gate-result').dataset.state === "`+s.state+`"`, 10*time.Second)
		id, _ := strconv.ParseInt(s.tab.panelScan(), 10, 64)
		own[s.key] = append(own[s.key], id)
	}
	// What a reconnecting north screen is sent when it says it last
	// saw event 1: its own results and its gateway's, nobody else's.
	// The replay comes in one write right after the status event, so the
	// window opens when the status arrives, however slow the connect.
	got := evalJS[string](t, a.ctx, `new Promise(function (done) {
		var ids = [], timer;
		var es = new EventSource("/gate/events?screen=" + document.querySelector(".gate").dataset.screen + "&entrance=" + encodeURIComponent("北门") + "&last=1");
		function finish() { es.close(); done(ids.join(",")); }
		es.addEventListener("status", function () { if (!timer) timer = setTimeout(finish, 700); });
		es.addEventListener("replay", function (e) { ids.push(JSON.parse(e.data).scan_id); });
		es.onmessage = function (e) { ids.push("live:" + JSON.parse(e.data).scan_id); };
		setTimeout(finish, 15000);
	})`)
	var want []string
	for _, id := range own["a"] {
		want = append(want, strconv.FormatInt(id, 10))
	}
	slices.Sort(want)
	have := strings.Split(got, ",")
	slices.Sort(have)
	if !slices.Equal(have, want) {
		t.Errorf("replayed %v, want the north screen's own %v", have, want)
	}
	for _, id := range own["b"] {
		if slices.Contains(have, strconv.FormatInt(id, 10)) {
			t.Errorf("the south screen's scan %d replayed to the north", id)
		}
	}
}

func testGateScreensLogoutEndsEveryStreamOfTheSession(t *testing.T, w *gateScreensWorld) {
	a, b := w.a, w.b
	start := time.Now()
	if err := chromedp.Do(b.ctx, chromedp.Click(chromedp.CSS(`[data-testid=logout]`))); err != nil {
		t.Fatal(err)
	}
	// The north tab shares the session; its stream must end now, not
	// at the next recheck (15 s).
	waitJS(t, a.ctx, "the north screen to learn the session ended", `document.getElementById('gate-feed').dataset.state === 'ended'`, 2*time.Second)
	t.Logf("logout to screen ended: %v", time.Since(start).Round(time.Millisecond))
	if st := a.state(); st != "error" {
		t.Errorf("panel %q after logout", st)
	}
	if vis := evalJS[bool](t, a.ctx, `!document.querySelector('[data-role=login]').hidden`); !vis {
		t.Error("no login button after the session ended")
	}
}

func testGateScreensDisabledAccountStreamEnds(t *testing.T, w *gateScreensWorld) {
	ctx, ts, base, bg := w.ctx, w.ts, w.base, w.bg
	ts.Web.SetStreamRecheck(300 * time.Millisecond)
	// A session of its own, whether or not the one before was logged out.
	if _, err := chromedp.Call(ctx, network.ClearBrowserCookies, cdp.Empty{}); err != nil {
		t.Fatal(err)
	}
	browserLogin(t, ctx, base, "wang", "staff-password-1", "/gate")
	a := openGate(t, ctx, base, "north screen", "北门")
	u, err := ts.DB.FindUserByName(bg, "wang")
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	// In the store, as another process would: only the recheck sees it.
	if err := ts.DB.DisableUser(bg, u.ID, "admin"); err != nil {
		t.Fatal(err)
	}
	waitJS(t, a.ctx, "the stream to end", `document.getElementById('gate-feed').dataset.state === 'ended'`, 2*time.Second)
	t.Logf("account disabled to screen ended: %v (recheck 300 ms)", time.Since(start).Round(time.Millisecond))
	if got := a.text("result-decision"); got != "登录已过期，请重新登录" {
		t.Errorf("panel says %q", got)
	}
	screenshot(t, a.ctx, "gate-login-expired")
	if err := chromedp.Do(a.ctx, chromedp.Click(chromedp.CSS(`[data-testid=result-login]`))); err != nil {
		t.Fatal(err)
	}
	waitJS(t, a.ctx, "the login page", `location.pathname === "/login"`, 5*time.Second)
	next := evalJS[string](t, a.ctx, `(function () { var n = new URL(new URLSearchParams(location.search).get("next"), location.origin);
		return n.pathname + " " + n.searchParams.get("entrance"); })()`)
	if next != "/gate 北门" {
		t.Errorf("login returns to %q", next)
	}
}

// TestGateLatencyBrowser measures Enter key-up to the result painted on a
// real gate screen over 40 scans and holds the median to 30 ms. It is a
// measurement, so it runs only with PASSGATE_LATENCY=1, on a quiet
// machine.
func TestGateLatencyBrowser(t *testing.T) {
	t.Parallel()
	if os.Getenv("PASSGATE_LATENCY") != "1" {
		t.Skip("set PASSGATE_LATENCY=1 to measure the gate screen's latency")
	}
	ctx := newBrowser(t)
	base, ts := startBrowserServer(t)
	ts.createUser(t, "wang", store.UserStaff, "staff-password-1")
	green := issuePass(t, ts.DB, "张三明", "610113199001011230", 0)
	browserLogin(t, ctx, base, "wang", "staff-password-1", "/gate")
	g := openGate(t, ctx, base, "screen", "北门")
	var ms []float64
	for i := range 45 {
		evalJS[bool](t, ctx, `delete document.body.dataset.lastLatencyMs; true`)
		g.scan(green)
		waitJS(t, ctx, "the result to be painted", `document.body.dataset.lastLatencyMs !== undefined`, 5*time.Second)
		v, err := strconv.ParseFloat(evalJS[string](t, ctx, `document.body.dataset.lastLatencyMs`), 64)
		if err != nil {
			t.Fatal(err)
		}
		if i >= 5 { // the first few warm the caches up
			ms = append(ms, v)
		}
	}
	slices.Sort(ms)
	median := (ms[len(ms)/2-1] + ms[len(ms)/2]) / 2
	t.Logf("Enter key-up to result painted over %d scans: median %.1f ms, min %.1f ms, max %.1f ms",
		len(ms), median, ms[0], ms[len(ms)-1])
	if median > 30 {
		t.Errorf("median %.1f ms, want at most 30 ms", median)
	}
}

// TestGateTwoSessionsBrowser: the same staff account logged in at two
// entrances from two browsers (two login sessions). Logging out at one
// (from another tab of the same browser) ends that browser's screen
// only; the other keeps its live feed, its checks and its panel, through
// several session rechecks.
func TestGateTwoSessionsBrowser(t *testing.T) {
	t.Parallel()
	ctx := newBrowser(t)
	base, ts := startBrowserServer(t)
	ts.createUser(t, "wang", store.UserStaff, "staff-password-1")
	ts.Web.SetStreamRecheck(200 * time.Millisecond)
	green := issuePass(t, ts.DB, "张三明", "610113199001011230", 0)

	other, cancel := chromedp.NewContext(ctx, chromedp.WithNewBrowserContext()) // its own cookies
	defer cancel()
	console, consoleB := watchConsole(ctx), watchConsole(other)
	browserLogin(t, ctx, base, "wang", "staff-password-1", "/gate")
	browserLogin(t, other, base, "wang", "staff-password-1", "/gate")
	north := openGate(t, ctx, base, "north screen", "北门")
	south := openGate(t, other, base, "south screen", "南门")

	// Logged out from another tab of the north browser: the north
	// screen's stream ends at once, the south one's does not.
	tab, cancelTab := chromedp.NewContext(ctx)
	defer cancelTab()
	if err := chromedp.Do(tab, chromedp.Navigate(base+"/gate"), chromedp.Click(chromedp.CSS(`[data-testid=logout]`))); err != nil {
		t.Fatal(err)
	}
	waitJS(t, north.ctx, "the north screen to end", `document.getElementById('gate-feed').dataset.state === 'ended'`, 2*time.Second)
	if vis := north.js(`String(!document.querySelector('[data-role=login]').hidden)`); vis != "true" {
		t.Error("no login button on the logged-out screen")
	}
	north.scan(green)
	if st := north.state(); st != "error" {
		t.Errorf("the logged-out screen's panel %q after a scan, want the login message", st)
	}
	// Past several rechecks of the south screen's session.
	time.Sleep(time.Second)
	if st := south.js(`document.getElementById('gate-feed').dataset.state`); st != "live" {
		t.Fatalf("the other session's feed is %q after a logout elsewhere", st)
	}
	south.scan(green)
	waitJS(t, south.ctx, "the south screen's answer", `document.getElementById('gate-result').dataset.state === 'allow'`, 5*time.Second)
	if got := south.text("result-source"); got != "gate:wang · 南门" {
		t.Errorf("south panel's source %q", got)
	}
	// The logged-out browser's old screen, opened again, is refused
	// its feed and its checks.
	if err := chromedp.Do(north.ctx, chromedp.Navigate(base+"/gate?entrance="+url.QueryEscape("北门"))); err != nil {
		t.Fatal(err)
	}
	if path := evalJS[string](t, north.ctx, `location.pathname`); path != "/login" {
		t.Errorf("the logged-out browser opened %s, want the login page", path)
	}
	screenshot(t, south.ctx, "gate-other-session-live")
	console.check(t)
	consoleB.check(t)
}
