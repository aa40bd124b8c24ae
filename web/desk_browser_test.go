package web_test

import (
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"

	"passgate/store"
)

// TestDeskBrowser: an issuer registers a resident through the form,
// issues a phone pass and a paper pass and opens the print view, in
// headless Chromium against a real server and database.
func TestDeskBrowser(t *testing.T) {
	t.Parallel()
	base, ts := startBrowserServer(t)
	ts.createUser(t, "issuer1", store.UserIssuer, "issuer-password-1")
	ctx := newBrowser(t)
	browserLogin(t, ctx, base, "issuer1", "issuer-password-1", "/desk")

	// A wrong check digit first: the form comes back with its message.
	err := chromedp.Do(ctx,
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="register-form"]`)),
		chromedp.SendKeys(chromedp.CSS(`[data-testid="reg-name"]`), "王小明"),
		chromedp.SetValue(chromedp.CSS(`[data-testid="reg-id-type"]`), "mainland"),
		chromedp.SendKeys(chromedp.CSS(`[data-testid="reg-id"]`), "110105194912310021"),
		chromedp.SendKeys(chromedp.CSS(`[data-testid="reg-phone"]`), "13800138000"),
		chromedp.Click(chromedp.CSS(`[data-testid="reg-submit"]`)),
	)
	if err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "the check digit message", `document.querySelector('[data-testid="err-id_number"]')`, 5*time.Second)
	screenshot(t, ctx, "desk-invalid")

	// From here on the page must log no error (a 422 document and the
	// favicon request before count as resource errors in Chromium).
	console := watchConsole(ctx)
	evalJS[bool](t, ctx, `(document.querySelector('[data-testid="reg-id"]').value = "", true)`)
	err = chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.CSS(`[data-testid="reg-id"]`), "11010519491231002X"),
		chromedp.Click(chromedp.CSS(`[data-testid="reg-submit"]`)),
	)
	if err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "the resident's page", `location.pathname.startsWith("/desk/people/") && document.querySelector('[data-testid="person-name"]')`, 5*time.Second)
	if name := evalJS[string](t, ctx, `document.querySelector('[data-testid="person-name"]').textContent`); name != "王*明" {
		t.Fatalf("person name %q", name)
	}
	screenshot(t, ctx, "desk")
	personURL := evalJS[string](t, ctx, `location.href`)

	// Phone pass: a large QR image that loads.
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`[data-testid="issue-phone"]`))); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "the phone pass QR", `(function(){var i=document.querySelector('[data-testid="pass-qr"]');return i && i.complete && i.naturalWidth > 200})()`, 5*time.Second)
	if w := evalJS[float64](t, ctx, `document.querySelector('[data-testid="pass-qr"]').getBoundingClientRect().width`); w < 250 {
		t.Errorf("phone QR is %v px wide on screen, want it large", w)
	}
	screenshot(t, ctx, "phone-pass")

	// Paper pass: the A6 print view, without navigation.
	err = chromedp.Do(ctx,
		chromedp.Navigate(personURL),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="issue-paper"]`)),
		chromedp.Click(chromedp.CSS(`[data-testid="issue-paper"]`)),
	)
	if err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "the print view", `(function(){var i=document.querySelector('[data-testid="pass-card"] img');return i && i.complete && i.naturalWidth > 0})()`, 5*time.Second)
	if n := evalJS[int](t, ctx, `document.querySelectorAll('nav, header.topbar').length`); n != 0 {
		t.Errorf("print view shows %d navigation elements", n)
	}
	// As printed: the controls disappear, the card keeps its A6 width.
	if _, err := chromedp.Call(ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{Media: "print"}); err != nil {
		t.Fatal(err)
	}
	// The media change restyles the page on the renderer's next frame:
	// on a loaded machine that can come after the call returns.
	waitJS(t, ctx, "the print controls to be hidden in print", `getComputedStyle(document.querySelector('[data-testid="print-controls"]')).display === "none"`, 3*time.Second)
	if w := evalJS[float64](t, ctx, `document.querySelector('[data-testid="pass-card"]').getBoundingClientRect().width`); w < 390 || w > 400 {
		t.Errorf("printed card is %v CSS px wide, want 105 mm (≈397 px)", w)
	}
	screenshot(t, ctx, "print")
	if _, err := chromedp.Call(ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{}); err != nil {
		t.Fatal(err)
	}
	console.check(t)
}
