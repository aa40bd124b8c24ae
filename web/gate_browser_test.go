package web_test

import (
	"context"
	"encoding/json"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"passgate/pass"
	"passgate/store"
)

// scannerJS defines window.__scan(text, mode, gapMs): it types text the
// way a keyboard-wedge scanner does, as key presses at US key positions
// (event.code) followed by Enter, with gapMs between keys. mode sets what
// the operating system would report as event.key: "azerty" for a French
// layout, "ime" for an active Chinese input method, "us" for a US layout.
// The promise resolves after the key-up of Enter.
const scannerJS = `
window.__scan = (function () {
  var sym = { " ": ["Space", false], "-": ["Minus", false], "_": ["Minus", true], "=": ["Equal", false],
    "+": ["Equal", true], "/": ["Slash", false], "?": ["Slash", true], ".": ["Period", false],
    ":": ["Semicolon", true], ";": ["Semicolon", false], "$": ["Digit4", true], "%": ["Digit5", true],
    "*": ["Digit8", true], ",": ["Comma", false] };
  var shiftedDigits = ")!@#$%^&*(";
  function us(ch) {
    if (/[a-z]/.test(ch)) return ["Key" + ch.toUpperCase(), false];
    if (/[A-Z]/.test(ch)) return ["Key" + ch, true];
    if (/[0-9]/.test(ch)) return ["Digit" + ch, false];
    if (sym[ch]) return sym[ch];
    var i = shiftedDigits.indexOf(ch);
    if (i >= 0) return ["Digit" + i, true];
    throw new Error("no US key for " + ch);
  }
  // What a French AZERTY layout reports for a US key position.
  var azLetters = { A: "q", Q: "a", W: "z", Z: "w", M: "," };
  var azDigits = "à&é\"'(-è_ç";
  var azOther = { Space: [" ", " "], Minus: [")", "°"], Equal: ["=", "+"], Slash: ["!", "§"],
    Period: [";", "."], Semicolon: ["m", "M"], Comma: [",", "?"] };
  function azerty(code, shift) {
    if (code.indexOf("Key") === 0) {
      var l = code.slice(3), k = azLetters[l] || l.toLowerCase();
      if (l === "M") return shift ? "?" : ",";
      return shift ? k.toUpperCase() : k;
    }
    if (code.indexOf("Digit") === 0) {
      var d = +code.slice(5);
      return shift ? String(d) : azDigits.charAt(d);
    }
    return azOther[code][shift ? 1 : 0];
  }
  function sleep(ms) { return new Promise(function (r) { setTimeout(r, ms); }); }
  function fire(type, code, key, shift, ime) {
    var t = document.activeElement || document.body;
    t.dispatchEvent(new KeyboardEvent(type, { code: code, key: key, shiftKey: shift,
      isComposing: ime, bubbles: true, cancelable: true, composed: true }));
  }
  return async function (text, mode, gap) {
    for (var i = 0; i < text.length; i++) {
      var k = us(text.charAt(i)), code = k[0], shift = k[1];
      var key = mode === "ime" ? "Process" : mode === "azerty" ? azerty(code, shift) : text.charAt(i);
      if (shift) fire("keydown", "ShiftLeft", "Shift", true, mode === "ime");
      fire("keydown", code, key, shift, mode === "ime");
      fire("keyup", code, key, shift, mode === "ime");
      if (shift) fire("keyup", "ShiftLeft", "Shift", false, mode === "ime");
      if (gap > 0) await sleep(gap);
    }
    fire("keydown", "Enter", "Enter", false, false);
    fire("keyup", "Enter", "Enter", false, false);
  };
})();
true`

func TestGateBrowser(t *testing.T) {
	// Not parallel: it bounds how soon the gate screen shows a check,
	// which other tests' load would delay.
	ctx := newBrowser(t)
	base, ts := startBrowserServer(t)
	ts.createUser(t, "wang", store.UserStaff, "staff-password-1")
	_, token, err := ts.DB.CreateDevice(t.Context(), "gate-1", "test")
	if err != nil {
		t.Fatal(err)
	}
	green := issuePass(t, ts.DB, "张三明", "610113199001011230", 0)
	red := issuePass(t, ts.DB, "李四", "11010519491231002X", pass.Red)

	console := watchConsole(ctx)
	browserLogin(t, ctx, base, "wang", "staff-password-1", "/gate")
	waitJS(t, ctx, "the live feed", `document.querySelector('[data-testid=feed-status]').dataset.state === 'live'`, 5*time.Second)
	evalJS[bool](t, ctx, scannerJS)

	text := func(testid string) string {
		t.Helper()
		return evalJS[string](t, ctx, `document.querySelector('[data-testid=`+testid+`]').textContent.trim()`)
	}
	lastScan := func() int64 {
		t.Helper()
		scans, err := ts.DB.FindScans(t.Context(), store.ScanFilter{Limit: 1})
		if err != nil {
			t.Fatal(err)
		}
		if len(scans) == 0 {
			return 0
		}
		return scans[0].ID
	}
	// scan types payload as a scanner and waits for the painted result;
	// it returns the Enter-to-paint latency the page measured.
	scan := func(payload, mode string, gap int) float64 {
		t.Helper()
		evalJS[bool](t, ctx, `delete document.body.dataset.lastLatencyMs; true`)
		evalJS[bool](t, ctx, `window.__scan(`+jsString(payload)+`, "`+mode+`", `+strconv.Itoa(gap)+`).then(() => true)`)
		waitJS(t, ctx, "the result to be painted", `document.body.dataset.lastLatencyMs !== undefined`, 5*time.Second)
		ms, err := strconv.ParseFloat(evalJS[string](t, ctx, `document.body.dataset.lastLatencyMs`), 64)
		if err != nil {
			t.Fatal(err)
		}
		return ms
	}

	// Scans are typed with no pause between keys: a real scanner types a
	// key every millisecond or two, and a loaded test machine can stretch
	// any timer far past the screen's 100 ms reset gap.
	w := &gateBrowserWorld{ctx: ctx, ts: ts, base: base, token: token, green: green, red: red, text: text, lastScan: lastScan, scan: scan}
	t.Run("ScannerOnAZERTYAllows", func(t *testing.T) { testGateBrowserScannerOnAZERTYAllows(t, w) })
	t.Run("ScannerUnderChineseIMEDeniesRed", func(t *testing.T) { testGateBrowserScannerUnderChineseIMEDeniesRed(t, w) })
	t.Run("GarbageDenied", func(t *testing.T) { testGateBrowserGarbageDenied(t, w) })
	t.Run("ScanAPIListedWithinASecond", func(t *testing.T) { testGateBrowserScanAPIListedWithinASecond(t, w) })
	t.Run("TypingInAFieldIsNotAScan", func(t *testing.T) { testGateBrowserTypingInAFieldIsNotAScan(t, w) })
	t.Run("SlowTypingOnThePageIsNotAScan", func(t *testing.T) { testGateBrowserSlowTypingOnThePageIsNotAScan(t, w) })
	t.Run("Paste", func(t *testing.T) { testGateBrowserPaste(t, w) })
	t.Run("ManualField", func(t *testing.T) { testGateBrowserManualField(t, w) })
	t.Run("Latency", func(t *testing.T) { testGateBrowserLatency(t, w) })
	console.check(t)
}

// gateBrowserWorld is the gate screen of TestGateBrowser that its
// subtests use in turn: the tab, its server, a device token, a green and
// a red pass, and the page helpers.
type gateBrowserWorld struct {
	ctx         context.Context
	ts          *testServer
	base, token string
	green, red  string
	text        func(testid string) string
	lastScan    func() int64
	scan        func(payload, mode string, gap int) float64
}

func testGateBrowserScannerOnAZERTYAllows(t *testing.T, w *gateBrowserWorld) {
	ctx, ts, green, text, scan := w.ctx, w.ts, w.green, w.text, w.scan
	scan(green, "azerty", 0)
	if got := evalJS[string](t, ctx, `document.getElementById('gate-result').dataset.state`); got != "allow" {
		t.Fatalf("panel state %q, reason %q", got, text("result-reason"))
	}
	for id, want := range map[string]string{
		"result-decision": "通过", "result-source": "gate:wang", "result-name": "张*明", "result-idtail": "证件尾号 1230",
		"result-reason": "通行码有效", "result-reason-other": "Valid pass", "result-tested": "核酸 2 小时前",
		"result-color": "绿码", "count-allow": "1", "count-deny": "0",
	} {
		if got := text(id); got != want {
			t.Errorf("%s = %q, want %q", id, got, want)
		}
	}
	if !strings.HasPrefix(text("result-expires"), "有效期至 ") {
		t.Errorf("expiry %q", text("result-expires"))
	}
	if !regexp.MustCompile(`^\d\d:\d\d:\d\d$`).MatchString(text("result-time")) {
		t.Errorf("time of check %q", text("result-time"))
	}
	// The icon is drawn, not a character a kiosk may lack a font for.
	if icon := evalJS[string](t, ctx, `(function () { var v = [].filter.call(document.querySelectorAll('[data-testid=result-icon] svg'),
		function (e) { return getComputedStyle(e).display !== 'none'; }); return v.length === 1 ? v[0].getAttribute('class') : String(v.length); })()`); icon != "icon icon-allow" {
		t.Errorf("visible icon %q", icon)
	}
	scans, _ := ts.DB.FindScans(t.Context(), store.ScanFilter{Limit: 1})
	if len(scans) != 1 || scans[0].Source != "gate:wang" || scans[0].Decision != "allow" {
		t.Fatalf("logged %+v", scans)
	}
	if id := evalJS[string](t, ctx, `document.body.dataset.lastScanId`); id != strconv.FormatInt(scans[0].ID, 10) {
		t.Errorf("page shows scan %s, logged %d", id, scans[0].ID)
	}
	if n := evalJS[int](t, ctx, `document.querySelectorAll('[data-testid=gate-recent-row]').length`); n != 1 {
		t.Errorf("%d recent rows, want 1 (the page's own check must not be listed twice)", n)
	}
	screenshot(t, ctx, "gate-allow")
}

func testGateBrowserScannerUnderChineseIMEDeniesRed(t *testing.T, w *gateBrowserWorld) {
	ctx, red, text, scan := w.ctx, w.red, w.text, w.scan
	scan(red, "ime", 0)
	if got := evalJS[string](t, ctx, `document.getElementById('gate-result').dataset.state`); got != "deny" {
		t.Fatalf("panel state %q, reason %q", got, text("result-reason"))
	}
	for id, want := range map[string]string{
		"result-decision": "禁止通行", "result-color": "红码", "result-reason": "红码，禁止通行",
		"result-reason-other": "Red status", "result-name": "李*", "count-deny": "1",
	} {
		if got := text(id); got != want {
			t.Errorf("%s = %q, want %q", id, got, want)
		}
	}
	screenshot(t, ctx, "gate-deny")
}

func testGateBrowserGarbageDenied(t *testing.T, w *gateBrowserWorld) {
	text, scan := w.text, w.scan
	scan("HELLO-THIS-IS-NOT-A-PASS", "us", 0)
	if got, want := text("result-reason"), "不是通行码"; got != want {
		t.Errorf("reason %q, want %q", got, want)
	}
	if got := text("result-name"); got != "" {
		t.Errorf("a name shown for garbage: %q", got)
	}
}

func testGateBrowserScanAPIListedWithinASecond(t *testing.T, w *gateBrowserWorld) {
	ctx, base, token, green, text := w.ctx, w.base, w.token, w.green, w.text
	panelScan := evalJS[string](t, ctx, `document.getElementById('gate-result').dataset.scanId || ""`)
	allowed, err := strconv.Atoi(text("count-allow"))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	req, _ := http.NewRequest("POST", base+"/api/v1/scans", strings.NewReader(`{"payload":`+jsString(green)+`}`))
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	err = json.NewDecoder(resp.Body).Decode(&m)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	id := strconv.FormatInt(int64(m["scan_id"].(float64)), 10)
	waitJS(t, ctx, "the API's check in the live list", `document.body.dataset.lastListedId === "`+id+`"`, time.Second)
	t.Logf("scan API to gate screen's list: %v", time.Since(start).Round(time.Millisecond))
	if time.Since(start) > time.Second {
		t.Errorf("took %v", time.Since(start))
	}
	first := evalJS[string](t, ctx, `document.querySelector('[data-testid=gate-recent-row]').textContent`)
	if !strings.Contains(first, "gate-1") || !strings.Contains(first, "✓") {
		t.Errorf("newest row %q", first)
	}
	// The device stands at no entrance of this screen's: its check
	// must not take over the panel.
	if got := evalJS[string](t, ctx, `document.getElementById('gate-result').dataset.scanId || ""`); got != panelScan {
		t.Errorf("panel shows scan %q, want this screen's own %q", got, panelScan)
	}
	// The gateway's check counts on every screen, like the screen's own.
	if got, want := text("count-allow"), strconv.Itoa(allowed+1); got != want {
		t.Errorf("allowed count %q, want %s", got, want)
	}
}

func testGateBrowserTypingInAFieldIsNotAScan(t *testing.T, w *gateBrowserWorld) {
	ctx, lastScan := w.ctx, w.lastScan
	before := lastScan()
	err := chromedp.Do(ctx,
		chromedp.Focus(chromedp.CSS(`[data-testid=manual-payload]`)),
		chromedp.SendKeys(chromedp.CSS(`[data-testid=manual-payload]`), "hello world 12345"),
	)
	if err != nil {
		t.Fatal(err)
	}
	// Even scanner-fast key events aimed at the field are left alone.
	evalJS[bool](t, ctx, `window.__scan("SCANNERFASTTEXT", "us", 0).then(() => true)`)
	time.Sleep(300 * time.Millisecond)
	if after := lastScan(); after != before {
		t.Fatalf("typing in the field made a check (%d → %d)", before, after)
	}
	if v := evalJS[string](t, ctx, `document.querySelector('[data-testid=manual-payload]').value`); v != "hello world 12345" {
		t.Errorf("field holds %q", v)
	}
	evalJS[bool](t, ctx, `(function () { var f = document.querySelector('[data-testid=manual-payload]'); f.value = ""; f.blur(); return true; })()`)
}

func testGateBrowserSlowTypingOnThePageIsNotAScan(t *testing.T, w *gateBrowserWorld) {
	ctx, lastScan := w.ctx, w.lastScan
	before := lastScan()
	evalJS[bool](t, ctx, `window.__scan("ABCDEFGHIJ", "us", 150).then(() => true)`)
	time.Sleep(300 * time.Millisecond)
	if after := lastScan(); after != before {
		t.Fatalf("a person typing made a check (%d → %d)", before, after)
	}
}

func testGateBrowserPaste(t *testing.T, w *gateBrowserWorld) {
	ctx, green, lastScan := w.ctx, w.green, w.lastScan
	before := lastScan()
	evalJS[bool](t, ctx, `(function () { var dt = new DataTransfer(); dt.setData("text/plain", `+jsString(green)+`);
		document.body.dispatchEvent(new ClipboardEvent("paste", { clipboardData: dt, bubbles: true, cancelable: true })); return true; })()`)
	waitJS(t, ctx, "the pasted check", `Number(document.body.dataset.lastScanId) > `+strconv.FormatInt(before, 10), 5*time.Second)
	if got := evalJS[string](t, ctx, `document.getElementById('gate-result').dataset.state`); got != "allow" {
		t.Errorf("pasted pass: state %q", got)
	}
}

func testGateBrowserManualField(t *testing.T, w *gateBrowserWorld) {
	ctx, text, lastScan := w.ctx, w.text, w.lastScan
	before := lastScan()
	err := chromedp.Do(ctx,
		chromedp.SetValue(chromedp.CSS(`[data-testid=manual-payload]`), "typed-by-hand"),
		chromedp.Click(chromedp.CSS(`[data-testid=manual-submit]`)),
	)
	if err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "the manual check", `Number(document.body.dataset.lastScanId) > `+strconv.FormatInt(before, 10), 5*time.Second)
	if got := text("result-reason"); got != "不是通行码" {
		t.Errorf("reason %q", got)
	}
	if v := evalJS[string](t, ctx, `document.querySelector('[data-testid=manual-payload]').value`); v != "" {
		t.Errorf("field keeps %q after the check", v)
	}
}

func testGateBrowserLatency(t *testing.T, w *gateBrowserWorld) {
	ctx, green, scan := w.ctx, w.green, w.scan
	var ms []float64
	// The keys come back to back here: typing speed does not change
	// the time from Enter to the painted result, and the run is short.
	for range 20 {
		ms = append(ms, scan(green, "azerty", 0))
	}
	slices.Sort(ms)
	t.Logf("Enter key-up to result painted over %d scans: median %.1f ms, min %.1f ms, max %.1f ms",
		len(ms), (ms[9]+ms[10])/2, ms[0], ms[len(ms)-1])
	if n := evalJS[int](t, ctx, `document.querySelectorAll('[data-testid=gate-recent-row]').length`); n != 20 {
		t.Errorf("%d recent rows, want the list capped at 20", n)
	}
}

// jsString quotes s as a JavaScript string literal.
func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
