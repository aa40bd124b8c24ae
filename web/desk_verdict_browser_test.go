package web_test

import (
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"passgate/district"
	"passgate/store"
)

// TestDeskBrowser_Verdict: under the default policy (a negative test
// within 72 h) the page of a resident with no test shows, above the issue
// buttons, that the gate will refuse the pass; following its link to the
// test form and recording a test there, the page comes back without the
// warning and with the test's date and limit.
func TestDeskBrowser_Verdict(t *testing.T) {
	t.Parallel()
	base, ts := startBrowserServer(t)
	ts.createUser(t, "issuer1", store.UserIssuer, "issuer-password-1")
	p, _, err := district.Register(t.Context(), ts.DB, district.RegisterRequest{
		Name: "李四", IDType: store.IDPassport, IDNumber: "E12345678", Actor: "issuer1",
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := newBrowser(t)
	browserLogin(t, ctx, base, "issuer1", "issuer-password-1", "/desk")
	console := watchConsole(ctx)

	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/desk/people/"+p.Subject.String())); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "the person page", `document.querySelector('[data-testid="issue-phone"]')`, 5*time.Second)
	const refusal = `document.querySelector('[data-testid="verdict-refusal"]')`
	if got := evalJS[string](t, ctx, `(`+refusal+` || {}).textContent || ""`); got != "✗ 此码在本场所将被拒绝：无核酸检测记录" {
		t.Fatalf("warning %q", got)
	}
	// Seen, not hidden: visible, in the deny colour, and above the buttons.
	if !evalJS[bool](t, ctx, `(function(){
		var w = document.querySelector('[data-testid="verdict"]'), b = document.querySelector('[data-testid="issue-phone"]');
		var r = w.getBoundingClientRect();
		return r.height > 20 && getComputedStyle(w).display !== "none" && r.bottom <= b.getBoundingClientRect().top &&
			getComputedStyle(w).borderLeftColor === getComputedStyle(document.documentElement).getPropertyValue("--deny").trim().replace(/^#(..)(..)(..)$/, (m, r, g, b) => "rgb(" + [r, g, b].map(h => parseInt(h, 16)).join(", ") + ")");
	})()`) {
		t.Fatal("the warning is not shown above the issue buttons")
	}
	if err := chromedp.Do(ctx, chromedp.ScrollIntoView(chromedp.CSS(`[data-testid="issue-section"]`))); err != nil {
		t.Fatal(err)
	}
	screenshot(t, ctx, "desk-verdict-refused")

	// Its link leads to the test form; a negative sample two hours ago.
	sample := time.Now().Add(-2 * time.Hour)
	err = chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`[data-testid="verdict-record-test"]`)),
		chromedp.SetValue(chromedp.CSS(`[data-testid="sample-time"]`), sample.Format("2006-01-02T15:04")),
		chromedp.Click(chromedp.CSS(`[data-testid="result-negative"]`)),
		chromedp.Click(chromedp.CSS(`[data-testid="test-submit"]`)),
	)
	if err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "the page after the test", `location.search.includes("done=test") && document.querySelector('[data-testid="verdict"]')`, 5*time.Second)
	if evalJS[bool](t, ctx, `!!`+refusal) {
		t.Fatal("the warning is still shown after a test was recorded")
	}
	if got := evalJS[string](t, ctx, `document.querySelector('[data-testid="verdict"]').textContent.trim()`); got != "✓ 此码在本场所可通行" {
		t.Errorf("verdict after the test %q", got)
	}
	want := "核酸 " + sample.Format("01-02 15:04") + "，72 小时内有效"
	if got := evalJS[string](t, ctx, `document.querySelector('[data-testid="verdict-test-line"]').textContent`); got != want {
		t.Errorf("test line %q, want %q", got, want)
	}
	if err := chromedp.Do(ctx, chromedp.ScrollIntoView(chromedp.CSS(`[data-testid="issue-section"]`))); err != nil {
		t.Fatal(err)
	}
	screenshot(t, ctx, "desk-verdict-accepted")

	// The paper card prints the test and the policy's validity, and with
	// them still fits one A6 page.
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`[data-testid="issue-paper"]`))); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "the A6 print view", `(function(){var i=document.querySelector('[data-testid="pass-card"] img');return i && i.complete && i.naturalWidth > 0})()`, 5*time.Second)
	if got := evalJS[string](t, ctx, `document.querySelector('[data-testid="card-test"]').textContent`); got != want {
		t.Errorf("card test line %q, want %q", got, want)
	}
	until := "有效期至 " + sample.Truncate(time.Minute).Add(72*time.Hour).Format("2006-01-02 15:04")
	if got := evalJS[string](t, ctx, `document.querySelector('[data-testid="card-valid"]').textContent`); got != until {
		t.Errorf("card validity %q, want %q", got, until)
	}
	screenshot(t, ctx, "desk-verdict-card")
	assertPaper(t, printPDF(t, ctx, "print-a6-tested"), "A6 card with its test", 105, 148, 1)
	console.check(t)
}
