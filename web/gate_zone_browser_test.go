package web_test

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"passgate/store"
)

// On a server in UTC the gate screen shows each check's time on the
// district's clock, both in the list the server renders and in the rows
// its live feed adds, and tells its script the zone (for the counters'
// midnight): Beijing time by default, Urumqi's when the district sets it.
func TestGateBrowser_TimesInDistrictZone(t *testing.T) {
	serverInUTC(t)
	ctx := newBrowser(t)
	base, ts := startBrowserServer(t)
	ts.createUser(t, "wang", store.UserStaff, "staff-password-1")
	_, token, err := ts.DB.CreateDevice(t.Context(), "gate-1", "test")
	if err != nil {
		t.Fatal(err)
	}
	green := issuePass(t, ts.DB, "张三明", "610113199001011230", 0)
	console := watchConsole(ctx)
	browserLogin(t, ctx, base, "wang", "staff-password-1", "/gate")

	for _, zone := range []string{store.DefaultTimeZone, "Asia/Urumqi"} {
		loc := setZone(t, ts, zone)
		if err := chromedp.Do(ctx, chromedp.Navigate(base+"/gate")); err != nil {
			t.Fatal(err)
		}
		waitJS(t, ctx, "the live feed", `document.querySelector('[data-testid=feed-status]').dataset.state === 'live'`, 5*time.Second)
		if got := evalJS[string](t, ctx, `document.querySelector('[data-testid=gate]').dataset.timeZone`); got != zone {
			t.Errorf("%s: the page tells its script the zone %q", zone, got)
		}

		req, _ := http.NewRequest("POST", base+"/api/v1/scans", strings.NewReader(`{"payload":`+jsString(green)+`}`))
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var m struct {
			ScanID int64 `json:"scan_id"`
		}
		err = json.NewDecoder(resp.Body).Decode(&m)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		id := strconv.FormatInt(m.ScanID, 10)
		scans, err := ts.DB.FindScans(t.Context(), store.ScanFilter{Limit: 1})
		if err != nil || len(scans) == 0 || scans[0].ID != m.ScanID {
			t.Fatalf("the check is not logged: %v", err)
		}
		want := scans[0].At.In(loc).Format("15:04:05")
		row := `document.querySelector('[data-testid=gate-recent-row][data-scan-id="` + id + `"]')`

		waitJS(t, ctx, "the check in the live list", `document.body.dataset.lastListedId === "`+id+`"`, 5*time.Second)
		if got := evalJS[string](t, ctx, row+`.cells[0].textContent.trim()`); got != want {
			t.Errorf("%s: live row shows %q, want %q (UTC %s)", zone, got, want, scans[0].At.UTC().Format("15:04:05"))
		}
		if err := chromedp.Do(ctx, chromedp.Reload()); err != nil {
			t.Fatal(err)
		}
		waitJS(t, ctx, "the reloaded list", row+` !== null`, 5*time.Second)
		if got := evalJS[string](t, ctx, row+`.cells[0].textContent.trim()`); got != want {
			t.Errorf("%s: rendered row shows %q, want %q", zone, got, want)
		}
		screenshot(t, ctx, "gate-zone-"+strings.ReplaceAll(zone, "/", "-"))
	}
	console.check(t)
}
