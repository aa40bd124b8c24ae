package web_test

import (
	"bytes"
	"context"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"passgate/store"
	"passgate/web/i18n"
	"passgate/web/view"
)

// panelSection is the result panel's markup within page: the section
// with data-role="panel", or "" when page has none. It fails the test
// when page holds more than one.
func panelSection(t *testing.T, page string) string {
	t.Helper()
	if n := strings.Count(page, `data-role="panel"`); n != 1 {
		if n == 0 {
			return ""
		}
		t.Fatalf("%d result panels on one page", n)
	}
	i := strings.LastIndex(page[:strings.Index(page, `data-role="panel"`)], "<section")
	j := strings.Index(page[i:], "</section>")
	if i < 0 || j < 0 {
		t.Fatal("the result panel is not a whole section")
	}
	return page[i : i+j+len("</section>")]
}

// renderPanel is the result panel component alone.
func renderPanel(t *testing.T, tr i18n.Printer, ready, hint, next string, r *view.GateResult) string {
	t.Helper()
	var b bytes.Buffer
	if err := view.ResultPanel(tr, ready, hint, next, r).Render(context.Background(), &b); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

var dataRoleRE = regexp.MustCompile(`data-role="([^"]+)"`)

// dataRoles are the data-role values in markup, in order.
func dataRoles(markup string) []string {
	var roles []string
	for _, m := range dataRoleRE.FindAllStringSubmatch(markup, -1) {
		roles = append(roles, m[1])
	}
	return roles
}

// TestResultPanelOneComponent: every page that shows a check's result
// shows it in the one panel component, byte for byte the component's
// markup while it waits, and with the component's parts after a check
// posted without script.
func TestResultPanelOneComponent(t *testing.T) {
	ts := newTestServer(t)
	ts.createUser(t, "wang", store.UserStaff, "staff-password-1")
	staff := ts.login(t, "wang", "staff-password-1")
	tr := i18n.Printer{Lang: i18n.ZH}
	east := url.QueryEscape("东门")
	for _, pg := range []struct{ path, ready, hint, next string }{
		{"/gate", "gate.ready", "gate.ready_hint", "/gate"},
		{"/gate?entrance=" + east, "gate.ready", "gate.ready_hint", "/gate?entrance=" + east},
		{"/gate/camera", "camera.ready", "camera.ready_hint", "/gate/camera"},
		{"/gate/camera?entrance=" + east, "camera.ready", "camera.ready_hint", "/gate/camera?entrance=" + east},
	} {
		resp, body := ts.get(t, staff, pg.path)
		if resp.StatusCode != 200 {
			t.Fatalf("%s: status %d", pg.path, resp.StatusCode)
		}
		got := panelSection(t, body)
		want := renderPanel(t, tr, pg.ready, pg.hint, pg.next, nil)
		if got != want {
			t.Errorf("%s: the result panel is not the component's markup:\n got %s\nwant %s", pg.path, got, want)
		}
	}

	// A check posted without script: the page carries its result in the
	// same component.
	_, body := ts.postForm(t, staff, "/gate/check", url.Values{"payload": {"not a pass at all"}})
	got := panelSection(t, body)
	if got == "" {
		t.Fatal("the checked page has no result panel")
	}
	want := renderPanel(t, tr, "gate.ready", "gate.ready_hint", "/gate", &view.GateResult{State: "deny"})
	if g, w := strings.Join(dataRoles(got), " "), strings.Join(dataRoles(want), " "); g != w {
		t.Errorf("checked page's panel parts %q, the component's %q", g, w)
	}
	if !strings.Contains(got, `data-state="deny"`) {
		t.Errorf("checked page's panel does not show the deny: %s", got)
	}
}

// panelRoles are the data-role values of the result panel's parts.
func panelRoles(t *testing.T) []string {
	t.Helper()
	roles := dataRoles(renderPanel(t, i18n.Printer{Lang: i18n.ZH}, "gate.ready", "gate.ready_hint", "/gate", nil))
	if len(roles) < 10 {
		t.Fatalf("the panel names only %d parts: %v", len(roles), roles)
	}
	return roles
}

// TestResultPanelMarkupOnlyInComponent: no view template other than the
// component's writes the panel's parts, so a page cannot grow a second
// panel that looks the same and behaves differently.
func TestResultPanelMarkupOnlyInComponent(t *testing.T) {
	roles := panelRoles(t)
	for f, src := range readSources(t, "view/*.templ") {
		if filepath.Base(f) == "result.templ" {
			continue
		}
		for _, marker := range append(panelMarkers(roles), `class="result-`, `"gate-result"`) {
			if strings.Contains(src, marker) {
				t.Errorf("%s writes the result panel's %s: use view.ResultPanel", f, marker)
			}
		}
	}
}

// panelMarkers are the attributes that find the panel's parts.
func panelMarkers(roles []string) []string {
	var m []string
	for _, r := range roles {
		m = append(m, `data-role="`+r+`"`, `data-role=`+r+`]`)
	}
	return m
}

// TestResultPanelPaintedOnlyByResultJS: of the page scripts only
// result.js knows the panel's markup (its id, parts and classes); the
// others hand it decisions. No script finds an element by data-testid,
// which is the tests' alone.
func TestResultPanelPaintedOnlyByResultJS(t *testing.T) {
	roles := panelRoles(t)
	sawResult := false
	bySelector := regexp.MustCompile(`(querySelector(All)?|closest|matches)\([^)]*testid`)
	for f, src := range readSources(t, "../assets/static/*.js") {
		if m := bySelector.FindString(src); m != "" {
			t.Errorf("%s finds an element by data-testid: %s", f, m)
		}
		if filepath.Base(f) == "result.js" {
			sawResult = true
			if !strings.Contains(src, `[data-role=panel]`) {
				t.Errorf("result.js does not find the panel by its data-role")
			}
			continue
		}
		markers := append(panelMarkers(roles), "gate-result", "result-")
		for _, marker := range markers {
			if strings.Contains(src, marker) {
				t.Errorf("%s touches the result panel's markup (%s): call passgateResult instead", f, marker)
			}
		}
	}
	if !sawResult {
		t.Fatal("no result.js")
	}
}

// readSources are the files matching pattern with their text; it fails
// the test when there are fewer than three, as a wrong path would give.
func readSources(t *testing.T, pattern string) map[string]string {
	t.Helper()
	files, err := filepath.Glob(pattern)
	if err != nil || len(files) < 3 {
		t.Fatalf("%s: %v %v", pattern, files, err)
	}
	src := make(map[string]string, len(files))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		src[f] = string(b)
	}
	return src
}
