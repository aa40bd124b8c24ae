package web_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"passgate/citylink"
	"passgate/internal/figurestest"
	"passgate/internal/natstest"
	"passgate/store"
	"passgate/web"
)

// TestCityDashboardBrowser_Refresh: an open city dashboard shows a
// revocation a hub made after the page loaded, without a reload (the
// script fetches the page again every 30 s and takes its table).
func TestCityDashboardBrowser_Refresh(t *testing.T) {
	ctx := newBrowser(t)
	h1, w1 := figurestest.Hub(t, "雁塔区", 1)
	c := natstest.Start(t, w1.District)
	serveFigures(t, c, h1, w1.District)
	console := c.Connect(c.ConsoleSeedFile(), nats.CustomInboxPrefix(citylink.ConsoleInboxPrefix))
	base, ts := startBrowserServer(t, web.Config{City: &web.CityConsole{Conn: console, Districts: []string{w1.District, "lintong"}, Timeout: 3 * time.Second}, DashboardRefresh: 2 * time.Second})
	browserLogin(t, ctx, base, "admin", ts.AdminPassword, "/admin/city/dashboard")
	cell := `document.querySelector('[data-testid="city-dash-row"] [data-testid="revocations"]')?.textContent`
	waitJS(t, ctx, "the dashboard", cell+` === "1"`, 10*time.Second)
	waitJS(t, ctx, "the district with no hub named", `document.querySelector('[data-testid="city-dash-missing-district"]')?.dataset.district === "lintong"`, time.Second)
	screenshot(t, ctx, "city-dashboard")
	evalJS[bool](t, ctx, `window.loadedOnce = true`)
	if err := h1.CreateRevocation(context.Background(), &store.Revocation{Kind: store.RevokePass, Target: []byte("pass-9999999"), Reason: "test"}); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "the refreshed count", cell+` === "2"`, 20*time.Second)
	if !evalJS[bool](t, ctx, `window.loadedOnce === true`) {
		t.Error("the page was reloaded instead of its table")
	}
	if n := evalJS[int](t, ctx, `document.querySelectorAll('[data-role="dashboard"]').length`); n != 1 {
		t.Errorf("%d panels after the refresh", n)
	}
}
