package web_test

import (
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"passgate/store"
)

// TestStoryBrowser is a new appliance's first day, in headless Chromium
// against a real server and database: the first admin creates a gate
// account and an issuing account, the issuer registers a resident, records
// a negative test and prints a paper pass, and the gate staff checks that
// printed pass with a keyboard-wedge scanner on a French keyboard layout.
func TestStoryBrowser(t *testing.T) {
	t.Parallel()
	base, ts := startBrowserServer(t)
	ctx := newBrowser(t)
	console := watchConsole(ctx)
	click := func(sel string) {
		t.Helper()
		if err := chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS(sel)), chromedp.Click(chromedp.CSS(sel))); err != nil {
			t.Fatalf("click %s: %v", sel, err)
		}
	}
	typeInto := func(sel, text string) {
		t.Helper()
		if err := chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS(sel)), chromedp.SendKeys(chromedp.CSS(sel), text)); err != nil {
			t.Fatalf("type into %s: %v", sel, err)
		}
	}
	logout := func() {
		t.Helper()
		click(`[data-testid="logout"]`)
		waitJS(t, ctx, "the login page", `location.pathname === "/login"`, 5*time.Second)
	}

	// The admin creates the two accounts through the admin form.
	browserLogin(t, ctx, base, "admin", ts.AdminPassword, "/admin/users")
	for _, u := range []struct{ name, role, password string }{
		{"gate1", "staff", "gate-password-1"},
		{"desk1", "issuer", "desk-password-1"},
	} {
		typeInto(`#new-username`, u.name)
		if err := chromedp.Do(ctx, chromedp.SetValue(chromedp.CSS(`#new-role`), u.role)); err != nil {
			t.Fatal(err)
		}
		typeInto(`#new-password`, u.password)
		click(`[data-testid="create-user"] button[type="submit"]`)
		waitJS(t, ctx, "the account "+u.name+" in the list",
			`[...document.querySelectorAll('[data-testid="username"]')].some(e => e.textContent.trim() === "`+u.name+`")`, 5*time.Second)
	}
	logout()

	// The issuer registers a resident, records a negative test from two
	// hours ago and prints a paper pass.
	browserLogin(t, ctx, base, "desk1", "desk-password-1", "/desk")
	typeInto(`[data-testid="reg-name"]`, "陈小红")
	if err := chromedp.Do(ctx, chromedp.SetValue(chromedp.CSS(`[data-testid="reg-id-type"]`), "mainland")); err != nil {
		t.Fatal(err)
	}
	typeInto(`[data-testid="reg-id"]`, "11010519491231002X")
	click(`[data-testid="reg-submit"]`)
	waitJS(t, ctx, "the resident's page", `location.pathname.startsWith("/desk/people/") && document.querySelector('[data-testid="person-name"]')`, 5*time.Second)
	personURL := evalJS[string](t, ctx, `location.href`)
	evalJS[bool](t, ctx, `(function () {
		var d = new Date(Date.now() - 2 * 3600 * 1000), p = n => String(n).padStart(2, "0");
		document.querySelector('[data-testid="sample-time"]').value =
			d.getFullYear() + "-" + p(d.getMonth() + 1) + "-" + p(d.getDate()) + "T" + p(d.getHours()) + ":" + p(d.getMinutes());
		return true;
	})()`)
	click(`[data-testid="result-negative"]`)
	click(`[data-testid="test-submit"]`)
	waitJS(t, ctx, "the recorded test", `document.querySelector('[data-testid="person-tested"]') && /\d/.test(document.querySelector('[data-testid="person-tested"]').textContent)`, 5*time.Second)
	click(`[data-testid="issue-paper"]`)
	waitJS(t, ctx, "the print view", `(function(){var i=document.querySelector('[data-testid="pass-card"] img');return i && i.complete && i.naturalWidth > 0})()`, 5*time.Second)
	// The gate scanner reads what is printed: decode the QR on the card.
	printed := decodeQR(t, evalJS[string](t, ctx, `document.querySelector('[data-testid="pass-card"] img').src`))
	if err := chromedp.Do(ctx, chromedp.Navigate(personURL)); err != nil {
		t.Fatal(err)
	}
	logout()

	// The gate staff checks the printed pass with a scanner.
	browserLogin(t, ctx, base, "gate1", "gate-password-1", "/gate")
	waitJS(t, ctx, "the live feed", `document.querySelector('[data-testid=feed-status]').dataset.state === 'live'`, 5*time.Second)
	evalJS[bool](t, ctx, scannerJS)
	evalJS[bool](t, ctx, `window.__scan(`+jsString(printed)+`, "azerty", 0).then(() => true)`)
	waitJS(t, ctx, "the decision", `document.getElementById('gate-result').dataset.state === 'allow'`, 5*time.Second)
	if got := evalJS[string](t, ctx, `document.querySelector('[data-testid=result-name]').textContent.trim()`); got != "陈*红" {
		t.Fatalf("gate shows %q, want the resident's masked name", got)
	}
	screenshot(t, ctx, "story-gate")
	console.check(t)

	scans, err := ts.DB.FindScans(t.Context(), store.ScanFilter{Limit: 10})
	if err != nil || len(scans) != 1 || scans[0].Source != "gate:gate1" || scans[0].Decision != "allow" {
		t.Fatalf("logged scans %+v %v, want one allow from gate:gate1", scans, err)
	}
}
