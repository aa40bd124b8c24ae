package web_test

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"

	"passgate/district"
	"passgate/pass"
	"passgate/store"
	"passgate/web/i18n"
)

// gateFixture is a test appliance with a logged-in staff member and a
// scanner device.
type gateFixture struct {
	ts    *testServer
	staff *http.Client
	token string
}

func newGateFixture(t *testing.T) *gateFixture {
	t.Helper()
	ts := newTestServer(t)
	ts.createUser(t, "wang", store.UserStaff, "staff-password-1")
	_, token, err := ts.DB.CreateDevice(t.Context(), "gate-1", "test")
	if err != nil {
		t.Fatal(err)
	}
	return &gateFixture{ts: ts, staff: ts.login(t, "wang", "staff-password-1"), token: token}
}

// issuePass signs a real pass for a resident tested two hours ago.
func issuePass(t *testing.T, db *store.DB, name, id string, color pass.Color) string {
	t.Helper()
	iss, err := district.Issue(t.Context(), db, district.IssueRequest{
		Name: name, IDNumber: id, Color: color, TestedAt: time.Now().Add(-2*time.Hour - 5*time.Minute),
		Doses: -1, Actor: "test",
	})
	if err != nil {
		t.Fatal(err)
	}
	return iss.Text
}

// scanAPI posts a payload to the scan API as the device and returns the
// decision.
func (f *gateFixture) scanAPI(t *testing.T, payload string) map[string]any {
	t.Helper()
	b, _ := json.Marshal(map[string]string{"payload": payload})
	req, _ := http.NewRequest("POST", f.ts.Srv.URL+"/api/v1/scans", strings.NewReader(string(b)))
	req.Header.Set("Authorization", "Bearer "+f.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil || resp.StatusCode != 200 {
		t.Fatalf("scan API: status %d, %v", resp.StatusCode, err)
	}
	return m
}

// gateCheck posts body with content type ct to /gate/check as c.
func (f *gateFixture) gateCheck(t *testing.T, c *http.Client, ct, body string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest("POST", f.ts.Srv.URL+"/gate/check", strings.NewReader(body))
	req.Header.Set("Content-Type", ct)
	req.Header.Set("Accept", "application/json") // as gate.js asks
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	raw, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("/gate/check status %d: not JSON: %.200s", resp.StatusCode, raw)
	}
	return resp.StatusCode, m
}

func TestGatePage(t *testing.T) {
	t.Parallel()
	f := newGateFixture(t)
	text := issuePass(t, f.ts.DB, "张三明", "610113199001011230", 0)
	f.scanAPI(t, text)
	f.scanAPI(t, "garbage")
	f.scanAPI(t, "PG1:also garbage")

	t.Run("AnonymousGoesToLogin", func(t *testing.T) {
		resp, _ := f.ts.get(t, f.ts.client(t), "/gate")
		if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/login") {
			t.Fatalf("status %d location %q", resp.StatusCode, resp.Header.Get("Location"))
		}
	})
	t.Run("Renders", func(t *testing.T) {
		resp, body := f.ts.get(t, f.staff, "/gate")
		if resp.StatusCode != 200 {
			t.Fatalf("status %d", resp.StatusCode)
		}
		doc, err := goquery.NewDocumentFromReader(strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		text := func(id string) string {
			return strings.TrimSpace(doc.Find(`[data-testid="` + id + `"]`).Text())
		}
		if got := text("count-allow"); got != "1" {
			t.Errorf("allowed today %q, want 1", got)
		}
		if got := text("count-deny"); got != "2" {
			t.Errorf("denied today %q, want 2", got)
		}
		rows := doc.Find(`[data-testid="gate-recent-row"]`)
		if rows.Length() != 3 {
			t.Fatalf("%d recent rows, want 3", rows.Length())
		}
		// Newest first; the allow is the oldest.
		last := rows.Last()
		if !strings.Contains(last.Text(), "gate-1") || !strings.Contains(last.Find(`[data-testid="row-decision"]`).Text(), "✓") ||
			!strings.Contains(last.Text(), "通行码有效") {
			t.Errorf("oldest row %q", last.Text())
		}
		if !strings.Contains(rows.First().Find(`[data-testid="row-decision"]`).Text(), "✗") {
			t.Errorf("newest row %q", rows.First().Text())
		}
		// The log holds no names, and so must the page.
		if strings.Contains(body, "张") {
			t.Error("gate page shows a name from before any check on it")
		}
		if strings.Contains(body, "[gate.") {
			t.Error("a gate message key has no text")
		}
		if v, _ := doc.Find(`[data-testid="lists"]`).Attr("data-stale"); v != "false" {
			t.Errorf("fresh lists marked stale %q", v)
		}
		if text("lists-age") == "" {
			t.Error("no lists age")
		}
		panel := doc.Find(`[data-testid="gate-result"]`)
		if v, _ := panel.Attr("aria-live"); v == "" {
			t.Error("result panel is not a live region")
		}
		for _, sel := range []string{`script[src*="gate"]`, `link[href*="gate"]`, `[data-testid="manual-payload"]`, `[data-testid="feed-status"]`} {
			if doc.Find(sel).Length() == 0 {
				t.Errorf("page lacks %s", sel)
			}
		}
		if _, auto := doc.Find(`[data-testid="manual-payload"]`).Attr("autofocus"); auto {
			t.Error("manual field takes focus: scans would be typed into it under the OS layout")
		}
	})
}

func TestGatePageEnglish(t *testing.T) {
	t.Parallel()
	f := newGateFixture(t)
	u, _ := url.Parse(f.ts.Srv.URL)
	f.staff.Jar.SetCookies(u, []*http.Cookie{{Name: i18n.CookieName, Value: "en", Path: "/"}})
	resp, body := f.ts.get(t, f.staff, "/gate")
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	doc, err := goquery.NewDocumentFromReader(strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if lang, _ := doc.Find("html").Attr("lang"); lang != "en" {
		t.Fatalf("page language %q", lang)
	}
	if got := doc.Find(`[data-testid="result-decision"]`).Text(); got != "Please scan" {
		t.Errorf("idle panel %q", got)
	}
	if !strings.Contains(doc.Find(".gate-side").Text(), "Allowed today") {
		t.Error("counters not in English")
	}
	if strings.Contains(body, "[gate.") {
		t.Error("a gate message key has no text")
	}
	status, m := f.gateCheck(t, f.staff, "application/json", `{"payload":""}`)
	if status != http.StatusUnprocessableEntity || m["error"] != "Scan or enter a pass first" {
		t.Errorf("status %d %v", status, m)
	}
}

// gateCheckWorld is a server of its own for one subtest of
// TestGateCheck, with a green pass to check.
func gateCheckWorld(t *testing.T) (*gateFixture, string) {
	t.Helper()
	f := newGateFixture(t)
	return f, issuePass(t, f.ts.DB, "张三明", "610113199001011230", 0)
}

// gateCheckedOnce is a gateCheckWorld whose pass was already checked
// once, as the subtests about a second check need.
func gateCheckedOnce(t *testing.T) (*gateFixture, string) {
	t.Helper()
	f, text := gateCheckWorld(t)
	if status, m := f.gateCheck(t, f.staff, "application/json", `{"payload":"`+text+`"}`); status != 200 || m["decision"] != "allow" {
		t.Fatalf("first check: status %d %v", status, m)
	}
	return f, text
}

func TestGateCheck(t *testing.T) {
	t.Parallel()
	// Each subtest has its own server, so that any one runs alone.
	t.Run("JSONAllow", testGateCheckJSONAllow)
	t.Run("FormRepeat", testGateCheckFormRepeat)
	t.Run("GarbageIsALoggedDeny", testGateCheckGarbageIsALoggedDeny)
	t.Run("RedDenied", testGateCheckRedDenied)
	t.Run("Empty422", testGateCheckEmpty422)
	t.Run("BadJSON400", testGateCheckBadJSON400)
	t.Run("TooLarge413", testGateCheckTooLarge413)
	t.Run("AnonymousRefused", testGateCheckAnonymousRefused)
	t.Run("CrossOriginRefused", testGateCheckCrossOriginRefused)
}

func testGateCheckJSONAllow(t *testing.T) {
	f, text := gateCheckWorld(t)
	status, m := f.gateCheck(t, f.staff, "application/json", `{"payload":"`+text+`"}`)
	if status != 200 || m["decision"] != "allow" || m["reason"] != "ok" || m["source"] != "gate:wang" {
		t.Fatalf("status %d %v", status, m)
	}
	h, _ := m["holder"].(map[string]any)
	if h["name"] != "张*明" || h["id_tail"] != "1230" {
		t.Fatalf("holder %v", h)
	}
	disp := m["display"].(map[string]any)
	zh, en := disp["zh-CN"].(map[string]any), disp["en"].(map[string]any)
	if zh["headline"] != "通过" || zh["reason"] != "通行码有效" || zh["reason_other"] != "Valid pass" {
		t.Errorf("zh display %v", zh)
	}
	if zh["tested"] != "核酸 2 小时前" || en["tested"] != "tested 2 h ago" {
		t.Errorf("test age %q / %q", zh["tested"], en["tested"])
	}
	if en["id_tail"] != "ID ends 1230" || en["reason_other"] != "通行码有效" || !strings.HasPrefix(en["expires"].(string), "valid until ") {
		t.Errorf("en display %v", en)
	}
	if zh["repeat"] != "" {
		t.Errorf("first check flagged repeat: %v", zh["repeat"])
	}
	scans, err := f.ts.DB.FindScans(t.Context(), store.ScanFilter{Limit: 1})
	if err != nil || len(scans) != 1 || scans[0].Source != "gate:wang" || float64(scans[0].ID) != m["scan_id"] {
		t.Fatalf("not logged as gate:wang: %v %v", scans, err)
	}
}

func testGateCheckFormRepeat(t *testing.T) {
	f, text := gateCheckedOnce(t)
	status, m := f.gateCheck(t, f.staff, "application/x-www-form-urlencoded", url.Values{"payload": {text}}.Encode())
	if status != 200 || m["decision"] != "allow" || m["repeat"] != true {
		t.Fatalf("status %d %v", status, m)
	}
	zh := m["display"].(map[string]any)["zh-CN"].(map[string]any)
	if !strings.Contains(zh["repeat"].(string), "重复") {
		t.Errorf("repeat notice %q", zh["repeat"])
	}
}

func testGateCheckGarbageIsALoggedDeny(t *testing.T) {
	f, _ := gateCheckWorld(t)
	status, m := f.gateCheck(t, f.staff, "application/json", `{"payload":"hello there"}`)
	zh := m["display"].(map[string]any)["zh-CN"].(map[string]any)
	if status != 200 || m["decision"] != "deny" || m["reason"] != "not_a_pass" || m["holder"] != nil ||
		zh["reason"] != "不是通行码" || zh["name"] != "" {
		t.Fatalf("status %d %v", status, m)
	}
}

func testGateCheckRedDenied(t *testing.T) {
	f, _ := gateCheckWorld(t)
	red := issuePass(t, f.ts.DB, "李四", "11010519491231002X", pass.Red)
	_, m := f.gateCheck(t, f.staff, "application/json", `{"payload":"`+red+`"}`)
	if m["decision"] != "deny" || m["reason"] != "status_red" {
		t.Fatalf("%v", m)
	}
}

func testGateCheckEmpty422(t *testing.T) {
	f, _ := gateCheckWorld(t)
	status, m := f.gateCheck(t, f.staff, "application/json", `{"payload":"  "}`)
	if status != http.StatusUnprocessableEntity || m["error"] == "" {
		t.Fatalf("status %d %v", status, m)
	}
	status, _ = f.gateCheck(t, f.staff, "application/json", `{}`)
	if status != http.StatusUnprocessableEntity {
		t.Fatalf("missing payload: status %d", status)
	}
}

func testGateCheckBadJSON400(t *testing.T) {
	f, _ := gateCheckWorld(t)
	status, _ := f.gateCheck(t, f.staff, "application/json", `{"payload":`)
	if status != http.StatusBadRequest {
		t.Fatalf("status %d", status)
	}
}

func testGateCheckTooLarge413(t *testing.T) {
	f, _ := gateCheckWorld(t)
	status, _ := f.gateCheck(t, f.staff, "application/json", `{"payload":"`+strings.Repeat("A", 17<<10)+`"}`)
	if status != http.StatusRequestEntityTooLarge {
		t.Fatalf("status %d", status)
	}
}

func testGateCheckAnonymousRefused(t *testing.T) {
	f, text := gateCheckedOnce(t)
	before, _ := f.ts.DB.FindScans(t.Context(), store.ScanFilter{Limit: 1})
	status, _ := f.gateCheck(t, f.ts.client(t), "application/json", `{"payload":"`+text+`"}`)
	if status != http.StatusUnauthorized {
		t.Fatalf("status %d", status)
	}
	after, _ := f.ts.DB.FindScans(t.Context(), store.ScanFilter{Limit: 1})
	if after[0].ID != before[0].ID {
		t.Fatal("an anonymous check was logged")
	}
}

func testGateCheckCrossOriginRefused(t *testing.T) {
	f, _ := gateCheckWorld(t)
	req, _ := http.NewRequest("POST", f.ts.Srv.URL+"/gate/check", strings.NewReader(`{"payload":"x"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	req.Header.Set("Origin", "https://evil.example")
	resp, err := f.staff.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("cross-site check: status %d", resp.StatusCode)
	}
}

// TestGateCheckWithoutJavaScript: the manual form works as a plain form,
// answering the gate screen with the result in its panel.
func TestGateCheckWithoutJavaScript(t *testing.T) {
	t.Parallel()
	f := newGateFixture(t)
	text := issuePass(t, f.ts.DB, "张三明", "610113199001011230", 0)
	find := func(body, id string) *goquery.Selection {
		t.Helper()
		doc, err := goquery.NewDocumentFromReader(strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		return doc.Find(`[data-testid="` + id + `"]`)
	}
	resp, body := f.ts.postForm(t, f.staff, "/gate/check", url.Values{"payload": {text}})
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("status %d type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if st, _ := find(body, "gate-result").Attr("data-state"); st != "allow" {
		t.Errorf("panel state %q", st)
	}
	for id, want := range map[string]string{"result-decision": "通过", "result-name": "张*明", "result-idtail": "证件尾号 1230", "count-allow": "1"} {
		if got := strings.TrimSpace(find(body, id).Text()); got != want {
			t.Errorf("%s = %q, want %q", id, got, want)
		}
	}
	if _, hidden := find(body, "result-repeat").Attr("hidden"); !hidden {
		t.Error("repeat notice shown for a first check")
	}
	_, body = f.ts.postForm(t, f.staff, "/gate/check", url.Values{"payload": {text}})
	if _, hidden := find(body, "result-repeat").Attr("hidden"); hidden {
		t.Error("repeat notice hidden for a repeat")
	}
	resp, body = f.ts.postForm(t, f.staff, "/gate/check", url.Values{"payload": {""}})
	if resp.StatusCode != http.StatusUnprocessableEntity || strings.TrimSpace(find(body, "result-decision").Text()) != "请先扫码或输入通行码内容" {
		t.Errorf("empty form: status %d, panel %q", resp.StatusCode, find(body, "result-decision").Text())
	}
}

// sseEvent is one server-sent event.
type sseEvent struct {
	ID   uint64
	Type string // "" for a decision
	Data map[string]any
}

// sseStream reads events from an open /gate/events response.
type sseStream struct {
	resp   *http.Response
	events chan sseEvent // decisions, replayed ones, and the end
	status chan sseEvent // status events
	cancel context.CancelFunc
	done   chan struct{} // closed when the server ended the stream
}

// openSSE opens the live feed as c; query names the screen
// ("?screen=…&entrance=…"), or is empty.
func openSSE(t *testing.T, c *http.Client, base, lastID string, query ...string) *sseStream {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	req, _ := http.NewRequestWithContext(ctx, "GET", base+"/gate/events"+strings.Join(query, ""), nil)
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := c.Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		cancel()
		t.Fatalf("events: status %d type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	s := &sseStream{resp: resp, events: make(chan sseEvent, 64), status: make(chan sseEvent, 64), cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		defer close(s.events)
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		var ev sseEvent
		var data string
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if data != "" {
					_ = json.Unmarshal([]byte(data), &ev.Data)
					if ev.Type != "status" {
						s.events <- ev
					} else {
						s.status <- ev
					}
				}
				ev, data = sseEvent{}, ""
			case strings.HasPrefix(line, "event: "):
				ev.Type = line[7:]
			case strings.HasPrefix(line, "id: "):
				ev.ID, _ = strconv.ParseUint(line[4:], 10, 64)
			case strings.HasPrefix(line, "data: "):
				data += line[6:]
			}
		}
	}()
	t.Cleanup(s.close)
	return s
}

func (s *sseStream) close() {
	s.cancel()
	s.resp.Body.Close()
}

func (s *sseStream) next(t *testing.T) sseEvent {
	t.Helper()
	select {
	case ev, ok := <-s.events:
		if !ok {
			t.Fatal("event stream ended")
		}
		return ev
	case <-time.After(2 * time.Second):
		t.Fatal("no event within 2 s")
	}
	return sseEvent{}
}

// screenQuery names a screen and its entrance for /gate/events.
func screenQuery(screen, entrance string) string {
	return "?screen=" + screen + "&entrance=" + url.QueryEscape(entrance)
}

// Screen ids as a gate page gets them: 22 base64url characters.
const (
	screenA = "AAAAAAAAAAAAAAAAAAAAAA"
	screenB = "BBBBBBBBBBBBBBBBBBBBBB"
)

// gateEventsWorld is a server of its own for one subtest of
// TestGateEvents, with a green pass, and a screen's feed that has carried
// two checks live (those are the events the subtests replay): the second
// returned.
func gateEventsWorld(t *testing.T) (*gateFixture, string, sseEvent) {
	t.Helper()
	f := newGateFixture(t)
	text := issuePass(t, f.ts.DB, "张三明", "610113199001011230", 0)
	s := openSSE(t, f.staff, f.ts.Srv.URL, "", screenQuery(screenA, ""))
	// A screen learns the lists' age as soon as it connects.
	select {
	case st := <-s.status:
		ages, _ := st.Data["lists_age"].(map[string]any)
		if st.Type != "status" || st.ID != 0 || !strings.HasSuffix(fmt.Sprint(ages["zh-CN"]), "秒前") ||
			!strings.HasSuffix(fmt.Sprint(ages["en"]), "s ago") || st.Data["lists_stale"] != false {
			t.Errorf("status event %+v", st)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("no status event on connect")
	}
	start := time.Now()
	m := f.scanAPI(t, text)
	ev := s.next(t)
	if d := time.Since(start); d > time.Second {
		t.Errorf("event took %v", d)
	}
	if ev.ID == 0 || ev.Data["source"] != "gate-1" || ev.Data["decision"] != "allow" || ev.Data["scan_id"] != m["scan_id"] {
		t.Fatalf("event %+v for scan %v", ev, m["scan_id"])
	}
	// An input at no entrance of this screen's: listed, not for the
	// panel, and nothing about the holder.
	if ev.Data["holder"] != nil || ev.Data["panel"] != nil {
		t.Errorf("another input's check carries %v / panel %v", ev.Data["holder"], ev.Data["panel"])
	}
	if zh, _ := ev.Data["display"].(map[string]any)["zh-CN"].(map[string]any); zh["headline"] != "通过" || zh["name"] != "" {
		t.Errorf("event display %v", ev.Data["display"])
	}
	// A check from the gate page itself is on the feed too.
	_, g := f.gateCheck(t, f.staff, "application/json", `{"payload":"nope","screen":"`+screenA+`"}`)
	ev2 := s.next(t)
	if ev2.ID != ev.ID+1 || ev2.Data["scan_id"] != g["scan_id"] || ev2.Data["source"] != "gate:wang" {
		t.Fatalf("second event %+v, want id %d scan %v", ev2, ev.ID+1, g["scan_id"])
	}
	s.close()
	return f, text, ev2
}

func TestGateEvents(t *testing.T) {
	// Not parallel: it bounds how soon an event arrives,
	// which other tests' load would delay.
	t.Run("AnonymousGoesToLogin", testGateEventsAnonymousGoesToLogin)
	t.Run("ReplayOnlyOwnResults", testGateEventsReplayOnlyOwnResults)
	t.Run("FreshScreenGetsNoReplay", testGateEventsFreshScreenGetsNoReplay)
	t.Run("EveryScreenListsIt", testGateEventsEveryScreenListsIt)
	t.Run("AssignedInputInItsEntrancesPanel", testGateEventsAssignedInputInItsEntrancesPanel)
}

func testGateEventsAnonymousGoesToLogin(t *testing.T) {
	f := newGateFixture(t)
	resp, _ := f.ts.get(t, f.ts.client(t), "/gate/events")
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("status %d", resp.StatusCode)
	}
}

func testGateEventsReplayOnlyOwnResults(t *testing.T) {
	f, text, ev2 := gateEventsWorld(t)
	// Checks made while the screen was away: one of its own, one of
	// another screen of the same user, one of an API device.
	_, own := f.gateCheck(t, f.staff, "application/json", `{"payload":"`+text+`","screen":"`+screenA+`"}`)
	f.gateCheck(t, f.staff, "application/json", `{"payload":"other screen","screen":"`+screenB+`"}`)
	missed := f.scanAPI(t, "missed one")
	r := openSSE(t, f.staff, f.ts.Srv.URL, "1", screenQuery(screenA, ""))
	// Its own two since id 1, the other screen's and the device's
	// not: nothing of someone else's can be paged back.
	a, b := r.next(t), r.next(t)
	if a.Type != "replay" || a.ID != ev2.ID || b.ID != ev2.ID+1 || b.Data["scan_id"] != own["scan_id"] {
		t.Fatalf("replayed %+v %+v, want ids %d and %d", a, b, ev2.ID, ev2.ID+1)
	}
	// Then live events continue after the replay.
	m5 := f.scanAPI(t, "after replay")
	c := r.next(t)
	if c.Type == "" && c.Data["scan_id"] == missed["scan_id"] {
		// The device's check, published just before the stream
		// opened, may reach it live: listed, as every check is.
		c = r.next(t)
	}
	if c.Type != "" || c.Data["scan_id"] != m5["scan_id"] {
		t.Fatalf("live after replay %+v", c)
	}
	// The same screen id from another login session is another
	// screen: it gets nothing back.
	other := f.ts.login(t, "wang", "staff-password-1")
	o := openSSE(t, other, f.ts.Srv.URL, "1", screenQuery(screenA, ""))
	select {
	case ev := <-o.events:
		t.Fatalf("another session's screen replayed %+v", ev)
	case <-time.After(200 * time.Millisecond):
	}
}

func testGateEventsFreshScreenGetsNoReplay(t *testing.T) {
	f, _, _ := gateEventsWorld(t)
	r := openSSE(t, f.staff, f.ts.Srv.URL, "", screenQuery(screenA, ""))
	select {
	case ev := <-r.events:
		t.Fatalf("fresh screen got old event %+v", ev)
	case <-time.After(200 * time.Millisecond):
	}
}

func testGateEventsEveryScreenListsIt(t *testing.T) {
	f, _, _ := gateEventsWorld(t)
	other := f.ts.login(t, "wang", "staff-password-1")
	a := openSSE(t, f.staff, f.ts.Srv.URL, "", screenQuery(screenA, ""))
	b := openSSE(t, other, f.ts.Srv.URL, "", screenQuery(screenB, ""))
	m := f.scanAPI(t, "to everyone")
	if ea, eb := a.next(t), b.next(t); ea.Data["scan_id"] != m["scan_id"] || eb.Data["scan_id"] != m["scan_id"] {
		t.Fatalf("screens got %v and %v, want %v", ea.Data["scan_id"], eb.Data["scan_id"], m["scan_id"])
	}
}

func testGateEventsAssignedInputInItsEntrancesPanel(t *testing.T) {
	f, text, _ := gateEventsWorld(t)
	admin := f.ts.login(t, "admin", f.ts.AdminPassword)
	resp, _ := f.ts.postForm(t, admin, "/admin/inputs/entrance", url.Values{"source": {"gate-1"}, "entrance": {"北门"}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("assign: status %d", resp.StatusCode)
	}
	north := openSSE(t, f.staff, f.ts.Srv.URL, "", screenQuery(screenA, "北门"))
	south := openSSE(t, f.staff, f.ts.Srv.URL, "", screenQuery(screenB, "南门"))
	m := f.scanAPI(t, text)
	n, so := north.next(t), south.next(t)
	if n.Data["scan_id"] != m["scan_id"] || n.Data["panel"] != true || n.Data["entrance"] != "北门" {
		t.Fatalf("north screen got %v", n.Data)
	}
	if h, _ := n.Data["holder"].(map[string]any); h["name"] != "张*明" {
		t.Errorf("north screen's holder %v", n.Data["holder"])
	}
	if so.Data["panel"] != nil || so.Data["holder"] != nil || so.Data["entrance"] != "北门" {
		t.Errorf("south screen got %v", so.Data)
	}
}

// TestGateEventsEndWithSession: a screen's live feed ends when its login
// session does, with an "end" event, at once on logout and within the
// recheck interval when the account is disabled behind its back.
func TestGateEventsEndWithSession(t *testing.T) {
	t.Parallel()
	ended := func(t *testing.T, s *sseStream, within time.Duration) {
		t.Helper()
		deadline := time.After(within)
		for {
			select {
			case ev, ok := <-s.events:
				if !ok {
					t.Fatal("stream closed without an end event")
				}
				if ev.Type == "end" {
					select {
					case <-s.done:
						return
					case <-time.After(time.Second):
						t.Fatal("stream still open after its end event")
					}
				}
			case <-deadline:
				t.Fatalf("stream still open after %v", within)
			}
		}
	}
	t.Run("Logout", func(t *testing.T) {
		f := newGateFixture(t)
		s := openSSE(t, f.staff, f.ts.Srv.URL, "", screenQuery(screenA, ""))
		resp, _ := f.ts.postForm(t, f.staff, "/logout", nil)
		if resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("logout: status %d", resp.StatusCode)
		}
		ended(t, s, time.Second) // the recheck is 15 s: only the logout can do this
	})
	t.Run("AccountDisabled", func(t *testing.T) {
		f := newGateFixture(t)
		f.ts.Web.SetStreamRecheck(100 * time.Millisecond)
		s := openSSE(t, f.staff, f.ts.Srv.URL, "", screenQuery(screenA, ""))
		u, err := f.ts.DB.FindUserByName(t.Context(), "wang")
		if err != nil {
			t.Fatal(err)
		}
		// Straight in the store, as another process would: only the
		// stream's own recheck can notice.
		if err := f.ts.DB.DisableUser(context.Background(), u.ID, "admin"); err != nil {
			t.Fatal(err)
		}
		ended(t, s, time.Second)
	})
	t.Run("SessionExpiredOrPurged", func(t *testing.T) {
		f := newGateFixture(t)
		f.ts.Web.SetStreamRecheck(100 * time.Millisecond)
		s := openSSE(t, f.staff, f.ts.Srv.URL, "", screenQuery(screenA, ""))
		u, _ := f.ts.DB.FindUserByName(t.Context(), "wang")
		// The session row gone from the store, as the hourly purge of
		// expired sessions or another process leaves it.
		raw, err := sql.Open("sqlite", f.ts.DB.Path()+"?_pragma=busy_timeout(10000)")
		if err != nil {
			t.Fatal(err)
		}
		defer raw.Close()
		if _, err := raw.Exec(`DELETE FROM sessions WHERE user_id = ?`, u.ID); err != nil {
			t.Fatal(err)
		}
		ended(t, s, time.Second)
	})
	t.Run("DisabledByAdmin", func(t *testing.T) {
		f := newGateFixture(t)
		s := openSSE(t, f.staff, f.ts.Srv.URL, "", screenQuery(screenA, ""))
		u, _ := f.ts.DB.FindUserByName(t.Context(), "wang")
		admin := f.ts.login(t, "admin", f.ts.AdminPassword)
		resp, _ := f.ts.postForm(t, admin, "/admin/users/"+strconv.FormatInt(u.ID, 10)+"/disable", nil)
		if resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("disable: status %d", resp.StatusCode)
		}
		ended(t, s, time.Second)
	})
	t.Run("PasswordResetByAdmin", func(t *testing.T) {
		f := newGateFixture(t)
		s := openSSE(t, f.staff, f.ts.Srv.URL, "", screenQuery(screenA, ""))
		u, _ := f.ts.DB.FindUserByName(t.Context(), "wang")
		admin := f.ts.login(t, "admin", f.ts.AdminPassword)
		resp, _ := f.ts.postForm(t, admin, "/admin/users/"+strconv.FormatInt(u.ID, 10)+"/password", url.Values{})
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("password reset: status %d", resp.StatusCode)
		}
		ended(t, s, time.Second)
	})
}

// TestGateScreenRefused: a screen id or entrance no gate page could have
// sent is refused with an audit record, and nothing is checked.
func TestGateScreenRefused(t *testing.T) {
	t.Parallel()
	f := newGateFixture(t)
	refusals := func() int {
		n := 0
		_ = f.ts.DB.FindAudit(t.Context(), store.AuditFilter{}, func(r *store.AuditRecord) error {
			if r.Action == store.AuditScreenRefused {
				n++
			}
			return nil
		})
		return n
	}
	for _, c := range []struct{ name, body, query string }{
		{"ShortScreen", `{"payload":"x","screen":"abc"}`, "?screen=abc"},
		{"ScreenWithSeparator", `{"payload":"x","screen":"AAAAAAAAAAAAAAAAAAAAA\n"}`, "?screen=AAAAAAAAAAAAAAAAAAAAA%0A"},
		{"EntranceWithNewline", `{"payload":"x","screen":"` + screenA + `","entrance":"北\n门"}`, "?screen=" + screenA + "&entrance=%E5%8C%97%0A"},
		{"EntranceTooLong", `{"payload":"x","entrance":"` + strings.Repeat("门", 33) + `"}`, "?entrance=" + strings.Repeat("%E9%97%A8", 33)},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := refusals()
			scans, _ := f.ts.DB.FindScans(t.Context(), store.ScanFilter{Limit: 1})
			status, m := f.gateCheck(t, f.staff, "application/json", c.body)
			if status != http.StatusBadRequest || m["error"] == "" {
				t.Fatalf("check: status %d %v", status, m)
			}
			after, _ := f.ts.DB.FindScans(t.Context(), store.ScanFilter{Limit: 1})
			if len(after) != len(scans) {
				t.Fatal("a refused check was logged")
			}
			resp, _ := f.ts.get(t, f.staff, "/gate/events"+c.query)
			if resp.StatusCode != http.StatusBadRequest {
				t.Fatalf("events: status %d", resp.StatusCode)
			}
			if n := refusals(); n != before+2 {
				t.Fatalf("%d refusals audited, want 2", n-before)
			}
		})
	}
}

// TestGateCheckErrorInBothLanguages: a check the appliance cannot make
// answers its message in the page's language and in the other, as the
// result panel shows every message beside its translation.
func TestGateCheckErrorInBothLanguages(t *testing.T) {
	t.Parallel()
	f := newGateFixture(t)
	status, m := f.gateCheck(t, f.staff, "application/json", `{"payload":"  "}`)
	zh := i18n.Printer{Lang: i18n.ZH}
	if status != http.StatusUnprocessableEntity || m["error"] != zh.T("gate.err.empty") || m["error_other"] != zh.OtherT("gate.err.empty") {
		t.Fatalf("status %d %v, want the empty-pass message in Chinese and English", status, m)
	}
}

// TestGateCheckRefusalInBothLanguages: a check refused before the gate
// handler (a request from another site) answers the gate page's script in
// both languages too.
func TestGateCheckRefusalInBothLanguages(t *testing.T) {
	t.Parallel()
	f := newGateFixture(t)
	req, _ := http.NewRequest("POST", f.ts.Srv.URL+"/gate/check", strings.NewReader(`{"payload":"x"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Origin", "http://evil.example")
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	resp, err := f.staff.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]string
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		t.Fatalf("status %d: not JSON: %v", resp.StatusCode, err)
	}
	zh := i18n.Printer{Lang: i18n.ZH}
	if resp.StatusCode != http.StatusForbidden || m["error"] == "" || m["error_other"] != zh.OtherT("error.cross_origin") {
		t.Fatalf("status %d %v, want the refusal in Chinese and English", resp.StatusCode, m)
	}
}
