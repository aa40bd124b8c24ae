package web_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"passgate/store"
	"passgate/web"
)

// TestDashboardBrowser opens the admin's landing page in Chromium on a
// busy day at a hub and checks that every chart is drawn: visible, of
// real size, with its bars. The full page is saved as dashboard.png under
// $ARTIFACTS (else the test's temporary folder).
func TestDashboardBrowser(t *testing.T) {
	ctx := newBrowser(t)
	base, ts := startBrowserServer(t)
	day, now := synthNow()
	ts.DB.Now = func() time.Time { return now }
	loadSynthHub(t, ts.DB, now, synthDay(day, now, 20000, 11))

	browserLogin(t, ctx, base, "admin", ts.AdminPassword, "")
	if path := evalJS[string](t, ctx, `location.pathname`); path != "/admin" {
		t.Fatalf("admin lands on %s, want /admin", path)
	}
	waitJS(t, ctx, "the dashboard", `!!document.querySelector('[data-role="dashboard"] svg')`, 10*time.Second)

	type drawn struct {
		W, H float64
		Bars int
	}
	for id, minBars := range map[string]int{"chart-timeline": 60, "chart-reasons": 5, "chart-sources": 6, "chart-places": 4} {
		d := evalJS[drawn](t, ctx, `(() => {
			const svg = document.querySelector('#`+id+` svg');
			const r = svg.getBoundingClientRect();
			const bars = [...svg.querySelectorAll('rect.chart-bar')].filter(b => {
				const br = b.getBoundingClientRect();
				return br.width > 0 && br.height > 0 && getComputedStyle(b).fill !== 'none';
			});
			return {W: r.width, H: r.height, Bars: bars.length};
		})()`)
		if d.W < 200 || d.H < 40 || d.Bars < minBars {
			t.Errorf("%s drawn %.0f×%.0f with %d bars, want at least 200×40 and %d bars", id, d.W, d.H, d.Bars, minBars)
		}
	}
	// Allowed and denied bars differ in colour, as the legend says.
	if fills := evalJS[[]string](t, ctx, `['allow','deny'].map(c => getComputedStyle(document.querySelector('#chart-timeline rect.'+c)).fill)`); fills[0] == fills[1] {
		t.Errorf("allowed and denied bars share the colour %s", fills[0])
	}
	if n := evalJS[int](t, ctx, `document.querySelectorAll('[data-testid="dash-appliance"][data-stale] td.deny').length`); n == 0 {
		t.Error("the stale appliance is not shown in red")
	}
	if n := evalJS[int](t, ctx, `document.querySelectorAll('[data-testid="admin-nav"] a').length`); n < 8 {
		t.Errorf("%d admin links below the dashboard", n)
	}

	png, err := fullScreenshot(t, ctx)
	if err != nil {
		t.Fatal(err)
	}
	dir := os.Getenv("ARTIFACTS")
	if dir == "" {
		dir = t.TempDir()
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "dashboard.png")
	if err := os.WriteFile(p, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", p)
}

// TestDashboardBrowser_Refresh: an open dashboard shows a check logged
// after it loaded without a reload of the page (its script fetches the
// panel every 30 s; here every 2 s).
func TestDashboardBrowser_Refresh(t *testing.T) {
	ctx := newBrowser(t)
	base, ts := startBrowserServer(t, web.Config{DashboardRefresh: 2 * time.Second})
	day, now := synthNow()
	ts.DB.Now = func() time.Time { return now }
	loadSynthHub(t, ts.DB, now, synthDay(day, now, 100, 3))
	browserLogin(t, ctx, base, "admin", ts.AdminPassword, "")
	waitJS(t, ctx, "the dashboard", `document.querySelector('[data-testid="dash-total"]')?.textContent === "100"`, 10*time.Second)
	// Marks the loaded document: a reload would lose it.
	evalJS[bool](t, ctx, `window.loadedOnce = true`)
	err := ts.DB.LogScan(context.Background(), &store.Scan{At: now.Add(-time.Minute), Source: "gate-west", Decision: "deny", Reason: "revoked"})
	if err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "the refreshed total", `document.querySelector('[data-testid="dash-total"]').textContent === "101"`, 20*time.Second)
	if !evalJS[bool](t, ctx, `window.loadedOnce === true`) {
		t.Error("the page was reloaded instead of its panel")
	}
	if n := evalJS[int](t, ctx, `document.querySelectorAll('[data-role="dashboard"]').length`); n != 1 {
		t.Errorf("%d dashboard panels after the refresh", n)
	}
}
