package web_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"passgate/pass"
)

// In a real browser: the admin chooses another district's trust anchor
// file, reads its district and fingerprint, types the fingerprint read
// out to them, and the root joins the list.
func TestTrustPageBrowser(t *testing.T) {
	t.Parallel()
	base, ts := startBrowserServer(t)
	ctx := newBrowser(t)
	console := watchConsole(ctx)
	file, a := otherDistrictAnchor(t)
	path := filepath.Join(t.TempDir(), "xuhui.anchor")
	if err := os.WriteFile(path, file, 0o600); err != nil {
		t.Fatal(err)
	}
	fp := pass.FormatFingerprint(a.Roots[0].Fingerprint())
	browserLogin(t, ctx, base, "admin", ts.AdminPassword, "/admin/trust")
	err := chromedp.Do(ctx,
		chromedp.SetUploadFiles(chromedp.CSS(`#anchor-file`), []string{path}),
		chromedp.Click(chromedp.CSS(`form[data-testid="trust-check"] button[type="submit"]`)),
	)
	if err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "the confirmation", `document.querySelector('[data-testid="anchor-fingerprint"]')`, 10*time.Second)
	if got := evalJS[string](t, ctx, `document.querySelector('[data-testid="anchor-district"]').textContent`); got != a.District {
		t.Fatalf("district shown %q, want %q", got, a.District)
	}
	if got := evalJS[string](t, ctx, `document.querySelector('[data-testid="anchor-fingerprint"]').textContent`); got != fp {
		t.Fatalf("fingerprint shown %q", got)
	}
	screenshot(t, ctx, "trust-confirm")
	err = chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.CSS(`#trust-fingerprint`), strings.ToUpper(fp)),
		chromedp.Click(chromedp.CSS(`form[data-testid="trust-import"] button[type="submit"]`)),
	)
	if err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "the imported root in the list", `document.querySelector('[data-testid="root-row"][data-district="`+a.District+`"]')`, 10*time.Second)
	console.check(t)
}
