package web_test

import (
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"

	"passgate/district"
	"passgate/store"
)

// rawExec runs statements on the test appliance's database file directly,
// to put it in the sync states the sync engine produces.
func rawExec(t *testing.T, ts *testServer, stmts ...string) {
	t.Helper()
	raw, err := sql.Open("sqlite", ts.DB.Path()+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	for _, q := range stmts {
		if _, err := raw.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}

type readyBody struct {
	Status   string            `json:"status"`
	Checks   map[string]string `json:"checks"`
	Sync     map[string]any    `json:"sync"`
	Warnings []string          `json:"warnings"`
}

func getReady(t *testing.T, ts *testServer) (int, readyBody) {
	t.Helper()
	resp, err := http.Get(ts.Srv.URL + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b readyBody
	if err := json.NewDecoder(resp.Body).Decode(&b); err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

func getDoc(t *testing.T, ts *testServer, cl *http.Client, path string) *goquery.Document {
	t.Helper()
	r, page := ts.get(t, cl, path)
	if r.StatusCode != http.StatusOK {
		t.Fatalf("%s: %d", path, r.StatusCode)
	}
	doc, err := goquery.NewDocumentFromReader(strings.NewReader(page))
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

// An appliance enrolled with a hub shows how old its lists from the hub
// are and how many records wait for the hub, on the gate screen, the
// status page and /readyz; a standalone one shows none of it.
func TestSyncVisibility_Appliance(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	cl := ts.login(t, "admin", ts.AdminPassword)

	if code, b := getReady(t, ts); code != 200 || b.Sync != nil || len(b.Warnings) != 0 {
		t.Fatalf("standalone readyz: %d %+v", code, b)
	}
	if doc := getDoc(t, ts, cl, "/gate"); doc.Find(`[data-testid="sync"]`).Length() != 0 {
		t.Fatal("standalone gate screen shows a sync line")
	}
	if doc := getDoc(t, ts, cl, "/admin/status"); doc.Find(`[data-testid="sync-none"]`).Length() != 1 {
		t.Fatal("standalone status page does not say it is standalone")
	}

	ctx := t.Context()
	for i := range 5 {
		s := &store.Scan{Source: "gate-1", Decision: "deny", Reason: "not_a_pass", At: time.Now().Add(time.Duration(i) * time.Millisecond)}
		if err := ts.DB.LogScan(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	// Enrolled, never pulled yet.
	rawExec(t, ts,
		`INSERT INTO sync_hub (id, url, hub_ca, appliance, token, bundle_key, enrolled_ms)
			VALUES (1, 'https://hub.example:8443', x'01', 'gate-east', zeroblob(32), x'02', 0)`,
		`INSERT INTO sync_state (id, scans_acked) VALUES (1, 2)`)
	doc := getDoc(t, ts, cl, "/gate")
	if got := doc.Find(`[data-testid="sync-waiting"]`).Text(); got != "3" {
		t.Fatalf("gate: %q records waiting, want 3", got)
	}
	if got := doc.Find(`[data-testid="lists-age"]`).Text(); got != "尚未从区级中心获取" {
		t.Fatalf("gate lists age before the first pull: %q", got)
	}
	if st, _ := doc.Find(`[data-testid="lists"]`).Attr("data-stale"); st != "true" {
		t.Fatal("gate: lists never received are not flagged")
	}
	code, b := getReady(t, ts)
	if code != 200 || b.Sync == nil || b.Sync["scans_waiting"] != float64(3) || len(b.Warnings) != 1 || !strings.Contains(b.Warnings[0], "not yet received") {
		t.Fatalf("readyz before the first pull: %d %+v", code, b)
	}

	// Pulled 20 minutes ago, pushed a minute ago, an error since.
	now := time.Now()
	ms := func(d time.Duration) string { return strconv.FormatInt(now.Add(-d).UnixMilli(), 10) }
	rawExec(t, ts, `UPDATE sync_state SET last_pull_ms = `+ms(20*time.Minute)+`, last_push_ms = `+ms(time.Minute)+
		`, last_error = 'dial tcp: connection refused', last_error_ms = `+ms(0))
	doc = getDoc(t, ts, cl, "/gate")
	if got := doc.Find(`[data-testid="lists-age"]`).Text(); got != "20 分钟前" {
		t.Fatalf("gate lists age 20 minutes after the last pull: %q", got)
	}
	if st, _ := doc.Find(`[data-testid="lists"]`).Attr("data-stale"); st != "true" {
		t.Fatal("gate: lists 20 minutes old are not flagged")
	}
	code, b = getReady(t, ts)
	if code != 200 || b.Status != "ok" || len(b.Warnings) != 1 || !strings.Contains(b.Warnings[0], "old") ||
		b.Sync["last_error"] != "dial tcp: connection refused" || b.Sync["lists_stale"] != true {
		t.Fatalf("readyz with old lists: %d %+v", code, b)
	}
	doc = getDoc(t, ts, cl, "/admin/status")
	if doc.Find(`[data-testid="sync-hub"]`).Text() != "https://hub.example:8443" ||
		doc.Find(`[data-testid="sync-waiting"]`).Text() != "3" ||
		!strings.Contains(doc.Find(`[data-testid="sync-error"]`).Text(), "connection refused") {
		t.Fatalf("status page sync section: %q", doc.Find(`[data-testid="sync"]`).Text())
	}

	// Just pulled, everything acknowledged.
	rawExec(t, ts, `UPDATE sync_state SET last_pull_ms = `+ms(0)+`, scans_acked = 5, last_error = ''`)
	doc = getDoc(t, ts, cl, "/gate")
	if st, _ := doc.Find(`[data-testid="lists"]`).Attr("data-stale"); st != "false" {
		t.Fatal("gate: fresh lists flagged stale")
	}
	if got := doc.Find(`[data-testid="sync-waiting"]`).Text(); got != "0" {
		t.Fatalf("gate: %q waiting after everything was acknowledged", got)
	}
	if code, b = getReady(t, ts); code != 200 || len(b.Warnings) != 0 {
		t.Fatalf("readyz in sync: %d %+v", code, b)
	}
}

// An enrolled appliance whose oldest record waiting for the hub is older
// than the policy's backlog warning says so on /readyz and the status
// page (still ready: it keeps checking); a longer threshold silences it.
func TestSyncVisibility_BacklogLate(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	cl := ts.login(t, "admin", ts.AdminPassword)
	ctx := t.Context()
	now := time.Now()
	for _, age := range []time.Duration{20 * time.Minute, time.Minute} {
		if err := ts.DB.LogScan(ctx, &store.Scan{Source: "gate-1", Decision: "deny", Reason: "not_a_pass", At: now.Add(-age)}); err != nil {
			t.Fatal(err)
		}
	}
	rawExec(t, ts,
		`INSERT INTO sync_hub (id, url, hub_ca, appliance, token, bundle_key, enrolled_ms)
			VALUES (1, 'https://hub.example:8443', x'01', 'gate-east', zeroblob(32), x'02', 0)`,
		`INSERT INTO sync_state (id, scans_acked, last_pull_ms) VALUES (1, 0, `+strconv.FormatInt(now.UnixMilli(), 10)+`)`)
	code, b := getReady(t, ts)
	if code != 200 || b.Status != "ok" || b.Sync["backlog_late"] != true || len(b.Warnings) != 1 ||
		!strings.Contains(b.Warnings[0], "oldest record waiting for the district hub is 20m") {
		t.Fatalf("readyz with a 20-minute-old backlog: %d %+v", code, b)
	}
	doc := getDoc(t, ts, cl, "/admin/status")
	if got := doc.Find(`[data-testid="sync-backlog-late"]`).Text(); !strings.Contains(got, "20 分钟") {
		t.Fatalf("status page: backlog warning %q, want the 20 minutes", got)
	}

	pol, err := ts.DB.Policy(ctx)
	if err != nil {
		t.Fatal(err)
	}
	pol.BacklogWarn = 30 * time.Minute
	if err := ts.DB.ChangePolicy(ctx, pol, "admin"); err != nil {
		t.Fatal(err)
	}
	if code, b = getReady(t, ts); code != 200 || b.Sync["backlog_late"] != false || len(b.Warnings) != 0 {
		t.Fatalf("readyz under a 30-minute threshold: %d %+v", code, b)
	}
	if doc := getDoc(t, ts, cl, "/admin/status"); doc.Find(`[data-testid="sync-backlog-late"]`).Length() != 0 {
		t.Fatal("status page warns under a 30-minute threshold")
	}
}

// A hub lists its appliances with their last contact, backlog and clock
// offset, flagging a clock beyond the policy's tolerance.
func TestSyncVisibility_Hub(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	cl := ts.login(t, "admin", ts.AdminPassword)
	if doc := getDoc(t, ts, cl, "/admin/status"); doc.Find(`[data-testid="appliances"]`).Length() != 0 {
		t.Fatal("a hub without appliances shows an appliances table")
	}
	contact := strconv.FormatInt(time.Now().Add(-time.Minute).UnixMilli(), 10)
	rawExec(t, ts,
		`INSERT INTO appliances (name, may_issue, created_ms, enrolled_ms, last_contact_ms, clock_skew_ms, backlog)
			VALUES ('gate-east', 0, 0, 1, `+contact+`, 7200000, 1500)`,
		`INSERT INTO appliances (name, may_issue, created_ms, enrolled_ms, last_contact_ms, clock_skew_ms)
			VALUES ('office', 1, 0, 1, `+contact+`, -2000)`,
		`INSERT INTO appliances (name, may_issue, created_ms) VALUES ('spare', 0, 0)`)
	doc := getDoc(t, ts, cl, "/admin/status")
	rows := doc.Find(`[data-testid="appliance-row"]`)
	if rows.Length() != 3 {
		t.Fatalf("%d appliance rows, want 3", rows.Length())
	}
	want := map[string]struct{ state, backlog, flag string }{
		"gate-east": {"active", "1500", "true"},
		"office":    {"active", "0", "false"},
		"spare":     {"pending", "0", "false"},
	}
	rows.Each(func(_ int, row *goquery.Selection) {
		name, _ := row.Attr("data-name")
		state, _ := row.Attr("data-state")
		flag, _ := row.Find(`[data-testid="appliance-skew"]`).Attr("data-flag")
		w := want[name]
		if state != w.state || row.Find(`[data-testid="appliance-backlog"]`).Text() != w.backlog || flag != w.flag {
			t.Errorf("%s: state %s backlog %q skew flag %s; want %+v", name, state, row.Find(`[data-testid="appliance-backlog"]`).Text(), flag, w)
		}
	})
}

// The desk refuses, with what to do, to issue for a person whose status
// the district changed elsewhere since this appliance recorded it.
func TestDeskPass_StatusChangedElsewhere(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	iss, err := district.Issue(t.Context(), ts.DB, district.IssueRequest{Name: "张三明", IDNumber: "11010519491231002X", Actor: "desk"})
	if err != nil {
		t.Fatal(err)
	}
	subject := iss.Person.Subject
	// The district's change comes after the registration here, and the
	// status recorded below after it.
	time.Sleep(20 * time.Millisecond)
	at := strconv.FormatInt(time.Now().UnixMilli(), 10)
	time.Sleep(20 * time.Millisecond)
	rawExec(t, ts, `INSERT INTO revocations (kind, target, before_ms, reason, at_ms, origin)
		VALUES (1, x'`+hex.EncodeToString(subject[:])+`', `+at+`, '区级核酸阳性', `+at+`, 'hub')`)
	cl := ts.login(t, "admin", ts.AdminPassword)
	resp, body := ts.postForm(t, cl, "/desk/people/"+hex.EncodeToString(subject[:])+"/pass", url.Values{"kind": {"phone"}})
	if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(body, "区级核酸阳性") || !strings.Contains(body, "请先在本机登记其当前状态") {
		t.Fatalf("issue after a change elsewhere: %d %.300s", resp.StatusCode, body)
	}
	// Recording the status here clears the way.
	resp, _ = ts.postForm(t, cl, "/desk/people/"+hex.EncodeToString(subject[:])+"/status", url.Values{"color": {"red"}, "reason": {"区级通知"}})
	if resp.StatusCode != http.StatusSeeOther && resp.StatusCode != http.StatusOK {
		t.Fatalf("record the status: %d", resp.StatusCode)
	}
	if resp, body = ts.postForm(t, cl, "/desk/people/"+hex.EncodeToString(subject[:])+"/pass", url.Values{"kind": {"phone"}}); resp.StatusCode != http.StatusOK {
		t.Fatalf("issue after recording the status: %d %.300s", resp.StatusCode, body)
	}
}

// An enrolled gate whose lists are older than the policy's "stale
// after" says so prominently in both languages; fresh lists show no
// banner.
func TestGateStaleBanner(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	cl := ts.login(t, "admin", ts.AdminPassword)
	if doc := getDoc(t, ts, cl, "/gate"); !doc.Find(`[data-testid="lists-banner"]`).Is("[hidden]") {
		t.Fatal("standalone gate with fresh lists shows the stale banner")
	}
	now := time.Now()
	ms := func(d time.Duration) string { return strconv.FormatInt(now.Add(-d).UnixMilli(), 10) }
	rawExec(t, ts,
		`INSERT INTO sync_hub (id, url, hub_ca, appliance, token, bundle_key, enrolled_ms)
			VALUES (1, 'https://hub.example:8443', x'01', 'gate-east', zeroblob(32), x'02', 0)`,
		`INSERT INTO sync_state (id, last_pull_ms) VALUES (1, `+ms(90*time.Second)+`)`)
	// 90 s is within the default two minutes.
	if doc := getDoc(t, ts, cl, "/gate"); !doc.Find(`[data-testid="lists-banner"]`).Is("[hidden]") {
		t.Fatal("lists 90 s old flagged under the default threshold")
	}
	rawExec(t, ts, `UPDATE sync_state SET last_pull_ms = `+ms(3*time.Minute+5*time.Second))
	banner := getDoc(t, ts, cl, "/gate").Find(`[data-testid="lists-banner"]`)
	if banner.Is("[hidden]") || banner.Text() != "名单已 3 分钟未更新 / Lists 3 minutes old" {
		t.Fatalf("banner at 3 minutes: %q hidden %v", banner.Text(), banner.Is("[hidden]"))
	}
	// A shorter threshold from the policy.
	pol, err := ts.DB.Policy(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	pol.StaleAfter = 30 * time.Second
	if err := ts.DB.ChangePolicy(t.Context(), pol, "test"); err != nil {
		t.Fatal(err)
	}
	if err := ts.Checker.Refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
	rawExec(t, ts, `UPDATE sync_state SET last_pull_ms = `+ms(45*time.Second))
	banner = getDoc(t, ts, cl, "/gate").Find(`[data-testid="lists-banner"]`)
	if banner.Is("[hidden]") || !strings.HasPrefix(banner.Text(), "名单已 4") || !strings.Contains(banner.Text(), "seconds old") {
		t.Fatalf("banner at 45 s with a 30 s threshold: %q", banner.Text())
	}
	if code, b := getReady(t, ts); code != 200 || len(b.Warnings) != 1 || b.Sync["lists_stale_after_seconds"] != float64(30) {
		t.Fatalf("readyz: %d %+v", code, b)
	}
	rawExec(t, ts, `UPDATE sync_state SET last_pull_ms = `+ms(0))
	if doc := getDoc(t, ts, cl, "/gate"); !doc.Find(`[data-testid="lists-banner"]`).Is("[hidden]") {
		t.Fatal("fresh lists show the stale banner")
	}
}
