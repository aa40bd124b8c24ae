package web_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"

	"passgate/district"
	"passgate/store"
)

// TestGateRevokedPassNotShownGreen: a revoked green pass is denied for
// the revocation, and its panel does not call it green.
func TestGateRevokedPassNotShownGreen(t *testing.T) {
	t.Parallel()
	f := newGateFixture(t)
	ctx := t.Context()
	iss, err := district.Issue(ctx, f.ts.DB, district.IssueRequest{
		Name: "张三明", IDNumber: "610113199001011230", TestedAt: time.Now().Add(-time.Hour), Doses: -1, Actor: "test",
	})
	if err != nil {
		t.Fatal(err)
	}
	_, m := f.gateCheck(t, f.staff, "application/json", `{"payload":"`+iss.Text+`"}`)
	if zh := m["display"].(map[string]any)["zh-CN"].(map[string]any); m["decision"] != "allow" || zh["color"] != "绿码" {
		t.Fatalf("before revocation: %v", m)
	}
	id := iss.Claims.ID
	if err := f.ts.DB.CreateRevocation(ctx, &store.Revocation{Kind: store.RevokePass, Target: id[:], Reason: "lost"}); err != nil {
		t.Fatal(err)
	}
	if err := f.ts.Checker.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	_, m = f.gateCheck(t, f.staff, "application/json", `{"payload":"`+iss.Text+`"}`)
	zh := m["display"].(map[string]any)["zh-CN"].(map[string]any)
	en := m["display"].(map[string]any)["en"].(map[string]any)
	if m["decision"] != "deny" || m["reason"] != "revoked" {
		t.Fatalf("after revocation: %v", m)
	}
	if zh["color"] != "" || en["color"] != "" {
		t.Errorf("a revoked pass's panel names its colour: %q / %q", zh["color"], en["color"])
	}
}

// TestGatePageScreen: every gate page is a screen of its own, at the
// entrance it was opened for, with the hold time and without characters
// a kiosk may have no font for.
func TestGatePageScreen(t *testing.T) {
	t.Parallel()
	f := newGateFixture(t)
	if err := f.ts.DB.SetEntrance(t.Context(), "gate-1", "北门", "admin"); err != nil {
		t.Fatal(err)
	}
	if err := f.ts.DB.SetGateHold(t.Context(), 5*time.Second, "admin"); err != nil {
		t.Fatal(err)
	}
	page := func(path string) *goquery.Document {
		t.Helper()
		resp, body := f.ts.get(t, f.staff, path)
		if resp.StatusCode != 200 {
			t.Fatalf("%s: status %d", path, resp.StatusCode)
		}
		for _, glyph := range []string{"⌖", "📷", "⚠"} {
			if strings.Contains(body, glyph) {
				t.Errorf("%s holds %q: draw it", path, glyph)
			}
		}
		doc, err := goquery.NewDocumentFromReader(strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if n := doc.Find(`[data-testid=result-icon] svg`).Length(); n != 4 {
			t.Errorf("%s: %d panel icons, want one per state", path, n)
		}
		return doc
	}
	one, two := page("/gate?entrance="+url.QueryEscape("北门")), page("/gate")
	s1, _ := one.Find(".gate").Attr("data-screen")
	s2, _ := two.Find(".gate").Attr("data-screen")
	if len(s1) != 22 || len(s2) != 22 || s1 == s2 {
		t.Errorf("screen ids %q and %q", s1, s2)
	}
	if e, _ := one.Find(".gate").Attr("data-entrance"); e != "北门" {
		t.Errorf("entrance %q", e)
	}
	if h, _ := one.Find(".gate").Attr("data-hold-ms"); h != "5000" {
		t.Errorf("hold %q", h)
	}
	if v, _ := one.Find(`[data-testid=entrance] option[selected]`).Attr("value"); v != "北门" {
		t.Errorf("entrance picker selects %q", v)
	}
	if href, _ := one.Find(`[data-testid=gate-camera-link]`).Attr("href"); href != "/gate/camera?entrance=%E5%8C%97%E9%97%A8" {
		t.Errorf("camera link %q", href)
	}
	if one.Find(`[data-testid=gate-camera-link] svg`).Length() != 1 {
		t.Error("camera link has no drawn icon")
	}
	if e, _ := two.Find(".gate").Attr("data-entrance"); e != "" {
		t.Errorf("entrance without one chosen %q", e)
	}
	cam := page("/gate/camera?entrance=" + url.QueryEscape("北门"))
	if e, _ := cam.Find(".camera").Attr("data-entrance"); e != "北门" {
		t.Errorf("camera entrance %q", e)
	}
	// A malformed entrance in the address is no entrance: the page asks.
	bad := page("/gate?entrance=%0A")
	if e, _ := bad.Find(".gate").Attr("data-entrance"); e != "" {
		t.Errorf("malformed entrance kept: %q", e)
	}
}

// TestAdminInputsEntrances: an admin places inputs and API devices at
// entrances and sets the hold time; anything else is refused.
func TestAdminInputsEntrances(t *testing.T) {
	t.Parallel()
	f := newGateFixture(t)
	admin := f.ts.login(t, "admin", f.ts.AdminPassword)
	post := func(path string, v url.Values) int {
		t.Helper()
		resp, _ := f.ts.postForm(t, admin, path, v)
		return resp.StatusCode
	}
	_, body := f.ts.get(t, admin, "/admin/inputs")
	doc, _ := goquery.NewDocumentFromReader(strings.NewReader(body))
	if doc.Find(`[data-testid="source-gate-1"]`).Length() != 1 {
		t.Fatal("the API device is not offered for an entrance")
	}
	if code := post("/admin/inputs/entrance", url.Values{"source": {"gate-1"}, "entrance": {"北门"}}); code != http.StatusSeeOther {
		t.Fatalf("assign: %d", code)
	}
	if m, _ := f.ts.DB.FindEntrances(t.Context()); m["gate-1"] != "北门" {
		t.Fatalf("stored %v", m)
	}
	for name, v := range map[string]url.Values{
		"UnknownSource":   {"source": {"nobody"}, "entrance": {"北门"}},
		"EntranceTooLong": {"source": {"gate-1"}, "entrance": {strings.Repeat("门", 33)}},
		"ControlChar":     {"source": {"gate-1"}, "entrance": {"北\x01门"}},
	} {
		if code := post("/admin/inputs/entrance", v); code != http.StatusUnprocessableEntity {
			t.Errorf("%s: status %d", name, code)
		}
	}
	if m, _ := f.ts.DB.FindEntrances(t.Context()); len(m) != 1 || m["gate-1"] != "北门" {
		t.Errorf("a refused assignment changed %v", m)
	}
	if code := post("/admin/inputs/hold", url.Values{"seconds": {"12"}}); code != http.StatusSeeOther {
		t.Fatalf("hold: %d", code)
	}
	for _, bad := range []string{"1", "61", "", "abc", "-5", "99999999999999999999"} {
		if code := post("/admin/inputs/hold", url.Values{"seconds": {bad}}); code != http.StatusUnprocessableEntity {
			t.Errorf("hold %q: status %d", bad, code)
		}
	}
	if d, _ := f.ts.DB.GateHold(t.Context()); d != 12*time.Second {
		t.Errorf("hold %v", d)
	}
	// Unassigning: an empty entrance.
	if code := post("/admin/inputs/entrance", url.Values{"source": {"gate-1"}, "entrance": {""}}); code != http.StatusSeeOther {
		t.Fatalf("unassign: %d", code)
	}
	if m, _ := f.ts.DB.FindEntrances(t.Context()); len(m) != 0 {
		t.Errorf("after unassigning %v", m)
	}
	// Staff may not.
	if resp, _ := f.ts.postForm(t, f.staff, "/admin/inputs/entrance", url.Values{"source": {"gate-1"}, "entrance": {"南门"}}); resp.StatusCode != http.StatusForbidden {
		t.Errorf("staff assigning: status %d", resp.StatusCode)
	}
}
