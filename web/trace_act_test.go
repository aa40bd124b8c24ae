package web_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"

	"passgate/district"
	"passgate/pass"
	"passgate/store"
)

// traceActFixture is a traced person near two registered contacts (one
// with a phone) and one who is not registered here.
type traceActFixture struct {
	ts             *testServer
	admin          *http.Client
	token          string
	a, b, stranger pass.Subject
	firstTraceSeq  int64
}

// seedTraceContacts registers two contacts of the person traceID names
// (李四 with a phone, 王五 without) and logs them, and a stranger not
// registered here, near the person's check at 南门闸机; 李四 and the
// stranger also meet later at 北门.
func seedTraceContacts(t *testing.T, ts *testServer) *traceActFixture {
	t.Helper()
	ctx := t.Context()
	person, err := district.SubjectOf(ctx, ts.DB, traceID)
	if err != nil {
		t.Fatal(err)
	}
	reg := func(name, id, phone string) pass.Subject {
		p, _, err := district.Register(ctx, ts.DB, district.RegisterRequest{
			Name: name, IDType: store.IDPassport, IDNumber: id, Phone: phone, Actor: "admin"})
		if err != nil {
			t.Fatal(err)
		}
		return p.Subject
	}
	f := &traceActFixture{ts: ts, a: reg("李四", "E12345678", "13800138000"), b: reg("王五", "E87654321", ""),
		stranger: pass.Subject{0x0b, 7}}
	at := time.Date(2026, 11, 3, 9, 0, 0, 0, time.Local)
	for _, s := range []*store.Scan{
		{At: at, Source: "南门闸机", Decision: "allow", Reason: "ok", Subject: person},
		{At: at.Add(time.Minute), Source: "南门闸机", Decision: "allow", Reason: "ok", Subject: f.a},
		{At: at.Add(2 * time.Minute), Source: "南门闸机", Decision: "allow", Reason: "ok", Subject: f.b},
		{At: at.Add(3 * time.Minute), Source: "南门闸机", Decision: "allow", Reason: "ok", Subject: f.stranger},
		{At: at.Add(5 * time.Hour), Source: "北门", Decision: "allow", Reason: "ok", Subject: f.a},
		{At: at.Add(5*time.Hour + time.Minute), Source: "北门", Decision: "allow", Reason: "ok", Subject: f.stranger},
	} {
		if err := ts.DB.LogScan(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

func newTraceActFixture(t *testing.T) *traceActFixture {
	t.Helper()
	ts := newTestServer(t)
	f := seedTraceContacts(t, ts)
	f.admin = ts.login(t, "admin", ts.AdminPassword)
	resp, body := ts.postForm(t, f.admin, "/admin/trace", traceForm(traceID, "2026-11-01", "2026-11-15", "15"))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("trace: %d", resp.StatusCode)
	}
	doc, err := goquery.NewDocumentFromReader(strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	action, _ := doc.Find(`[data-testid="trace-act"]`).Attr("action")
	f.token = strings.TrimSuffix(strings.TrimPrefix(action, "/admin/trace/"), "/act")
	if len(f.token) != 32 {
		t.Fatalf("action form %q: no token", action)
	}
	if n := doc.Find(`[data-testid="trace-summary-person"]`).Length(); n != 2 {
		t.Errorf("%d contacts link to a person page, want the 2 registered", n)
	}
	f.firstTraceSeq = lastTraceAudit(t, ts, store.AuditTrace).Seq
	return f
}

// lastTraceAudit is the newest audit record of action.
func lastTraceAudit(t *testing.T, ts *testServer, action string) *store.AuditRecord {
	t.Helper()
	var last *store.AuditRecord
	err := ts.DB.FindAudit(t.Context(), store.AuditFilter{}, func(r *store.AuditRecord) error {
		if r.Action == action {
			c := *r
			last = &c
		}
		return nil
	})
	if err != nil || last == nil {
		t.Fatalf("no %s audit record (%v)", action, err)
	}
	return last
}

// refusalsFor counts the refused-request records by their why.
func refusalsFor(t *testing.T, ts *testServer) map[string]int {
	t.Helper()
	n := map[string]int{}
	err := ts.DB.FindAudit(t.Context(), store.AuditFilter{}, func(r *store.AuditRecord) error {
		if r.Action == store.AuditRequestRefused {
			n[detailOf(t, r)["why"].(string)]++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func detailOf(t *testing.T, r *store.AuditRecord) map[string]any {
	t.Helper()
	var d map[string]any
	if err := json.Unmarshal(r.Detail, &d); err != nil {
		t.Fatal(err)
	}
	return d
}

func (f *traceActFixture) act(t *testing.T, c *http.Client, v url.Values) (*http.Response, string) {
	return f.ts.postForm(t, c, "/admin/trace/"+f.token+"/act", v)
}

func TestTracePersonAndPhone(t *testing.T) {
	t.Parallel()
	f := newTraceActFixture(t)
	page := "/admin/trace/" + f.token + "/person/" + f.a.String()
	resp, body := f.ts.get(t, f.admin, page)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("person page: %d", resp.StatusCode)
	}
	if strings.Contains(body, "13800138000") {
		t.Error("the phone number is shown before it was asked for")
	}
	look := lastTraceAudit(t, f.ts, store.AuditPersonLookup)
	if d := detailOf(t, look); look.Subject != f.a.String() || look.Actor != "admin" || d["trace"] != float64(f.firstTraceSeq) || d["via"] != "trace" {
		t.Errorf("look-up record %+v %s: want admin, the contact and trace %d", look, look.Detail, f.firstTraceSeq)
	}
	if resp, body := f.ts.postForm(t, f.admin, page+"/phone", url.Values{"reason": {"  "}}); resp.StatusCode != http.StatusUnprocessableEntity || strings.Contains(body, "13800138000") {
		t.Errorf("phone without a reason: %d, shown %v", resp.StatusCode, strings.Contains(body, "13800138000"))
	}
	resp, body = f.ts.postForm(t, f.admin, page+"/phone", url.Values{"reason": {"电话通知隔离"}})
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "13800138000") {
		t.Fatalf("phone with a reason: %d, shown %v", resp.StatusCode, strings.Contains(body, "13800138000"))
	}
	shown := lastTraceAudit(t, f.ts, store.AuditPhoneShown)
	if d := detailOf(t, shown); shown.Subject != f.a.String() || shown.Actor != "admin" || d["reason"] != "电话通知隔离" || d["trace"] != float64(f.firstTraceSeq) {
		t.Errorf("phone record %+v %s", shown, shown.Detail)
	}
	// Refused: a contact not registered, someone the trace did not find,
	// a made-up token, and the same token from another session.
	for _, p := range []string{
		"/admin/trace/" + f.token + "/person/" + f.stranger.String(),
		"/admin/trace/" + f.token + "/person/" + pass.Subject{9}.String(),
		"/admin/trace/00112233445566778899aabbccddeeff/person/" + f.a.String(),
	} {
		if resp, _ := f.ts.get(t, f.admin, p); resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", p, resp.StatusCode)
		}
	}
	other := f.ts.login(t, "admin", f.ts.AdminPassword)
	if resp, _ := f.ts.get(t, other, page); resp.StatusCode != http.StatusNotFound {
		t.Errorf("another session's token: %d, want 404", resp.StatusCode)
	}
	if got := refusalsFor(t, f.ts); got["trace_contact"] != 2 || got["trace_token"] != 2 {
		t.Errorf("refusals on record %v, want 2 trace_contact and 2 trace_token", got)
	}
	for _, role := range []store.UserRole{store.UserStaff, store.UserIssuer} {
		name, password := string(role)+"1", "a long password "+string(role)
		f.ts.createUser(t, name, role, password)
		c := f.ts.login(t, name, password)
		if resp, _ := f.ts.get(t, c, page); resp.StatusCode != http.StatusForbidden {
			t.Errorf("%s person page: %d, want 403", role, resp.StatusCode)
		}
		if resp, _ := f.ts.postForm(t, c, page+"/phone", url.Values{"reason": {"x"}}); resp.StatusCode != http.StatusForbidden {
			t.Errorf("%s phone: %d, want 403", role, resp.StatusCode)
		}
		if resp, _ := f.act(t, c, url.Values{"action": {"status"}, "contact": {f.a.String()}, "color": {"yellow"}, "reason": {"x"}}); resp.StatusCode != http.StatusForbidden {
			t.Errorf("%s act: %d, want 403", role, resp.StatusCode)
		}
	}
}

func TestTraceActStatus(t *testing.T) {
	t.Parallel()
	f := newTraceActFixture(t)
	refusals := []struct {
		name string
		v    url.Values
	}{
		{"empty", url.Values{"action": {"status"}, "color": {"yellow"}, "reason": {"密接"}}},
		{"unknown", url.Values{"action": {"status"}, "contact": {f.a.String(), pass.Subject{9}.String()}, "color": {"yellow"}, "reason": {"密接"}}},
		{"not here", url.Values{"action": {"status"}, "contact": {f.stranger.String()}, "color": {"yellow"}, "reason": {"密接"}}},
		{"no reason", url.Values{"action": {"status"}, "contact": {f.a.String()}, "color": {"yellow"}}},
		{"bad colour", url.Values{"action": {"status"}, "contact": {f.a.String()}, "color": {"blue"}, "reason": {"密接"}}},
		{"bad hex", url.Values{"action": {"status"}, "contact": {"zz"}, "color": {"yellow"}, "reason": {"密接"}}},
		{"two for second degree", url.Values{"action": {"trace"}, "contact": {f.a.String(), f.b.String()}}},
		{"bad format", url.Values{"action": {"export"}, "contact": {f.a.String()}, "format": {"pdf"}}},
		{"bad action", url.Values{"action": {"delete"}, "contact": {f.a.String()}}},
	}
	for _, c := range refusals {
		resp, body := f.act(t, f.admin, c.v)
		if resp.StatusCode != http.StatusUnprocessableEntity {
			t.Errorf("%s: %d, want 422", c.name, resp.StatusCode)
			continue
		}
		doc, _ := goquery.NewDocumentFromReader(strings.NewReader(body))
		if doc.Find(`[data-testid="trace-act"]`).Length() != 1 {
			t.Errorf("%s: the form is not kept", c.name)
		}
		if len(c.v["contact"]) > 0 && c.v.Get("contact") == f.a.String() && doc.Find(`[data-testid="trace-select"][checked]`).Length() == 0 {
			t.Errorf("%s: the selection is not kept", c.name)
		}
	}
	for _, s := range []pass.Subject{f.a, f.b} {
		if p, _ := f.ts.DB.FindPerson(t.Context(), s); p.Color != pass.Green {
			t.Fatalf("a refused request changed %s to %s", s, p.Color)
		}
	}

	resp, _ := f.act(t, f.admin, url.Values{"action": {"status"}, "contact": {f.a.String(), f.b.String()}, "reason": {"与确诊者同时进门"}, "color": {"yellow"}})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status: %d", resp.StatusCode)
	}
	want := map[string]bool{f.a.String(): true, f.b.String(): true}
	err := f.ts.DB.FindAudit(t.Context(), store.AuditFilter{}, func(r *store.AuditRecord) error {
		if r.Action != store.AuditStatusChanged || !want[r.Subject] {
			return nil
		}
		d := detailOf(t, r)
		if d["to"] == "yellow" && d["reason"] == "与确诊者同时进门" && d["trace"] == float64(f.firstTraceSeq) && r.Actor == "admin" {
			delete(want, r.Subject)
		}
		return nil
	})
	if err != nil || len(want) != 0 {
		t.Errorf("status changes without a record naming the trace: %v (%v)", want, err)
	}
	if got := refusalsFor(t, f.ts); got["trace_contact"] != 2 {
		t.Errorf("refusals on record %v, want the 2 contacts put in by hand (unknown, bad hex)", got)
	}
	for _, s := range []pass.Subject{f.a, f.b} {
		if p, _ := f.ts.DB.FindPerson(t.Context(), s); p.Color != pass.Yellow {
			t.Errorf("%s is %s, want yellow", s, p.Color)
		}
	}
	if _, err := f.ts.DB.VerifyAudit(t.Context()); err != nil {
		t.Errorf("the trail does not verify after the changes: %v", err)
	}
}

func TestTraceActExportAndSecondDegree(t *testing.T) {
	t.Parallel()
	f := newTraceActFixture(t)
	resp, body := f.act(t, f.admin, url.Values{"action": {"export"}, "contact": {f.a.String()}, "format": {"csv"}})
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/csv") {
		t.Fatalf("export: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if !strings.Contains(body, f.a.String()) || strings.Contains(body, f.b.String()) {
		t.Errorf("the file does not hold exactly the selection:\n%s", body)
	}
	// A check near which nobody selected was is left out, not written
	// as if nobody was near.
	if _, body := f.act(t, f.admin, url.Values{"action": {"export"}, "contact": {f.b.String()}, "format": {"csv"}}); strings.Contains(body, "北门") {
		t.Errorf("the selection's file lists a check none of the selection was near:\n%s", body)
	}
	ex := lastTraceAudit(t, f.ts, store.AuditExport)
	if d := detailOf(t, ex); d["trace"] != float64(f.firstTraceSeq) || d["kind"] != "trace_selection" {
		t.Errorf("export record %s", ex.Detail)
	}

	resp, body = f.act(t, f.admin, url.Values{"action": {"trace"}, "contact": {f.a.String()}})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("second degree: %d", resp.StatusCode)
	}
	tr := lastTraceAudit(t, f.ts, store.AuditTrace)
	if d := detailOf(t, tr); tr.Subject != f.a.String() || d["degree"] != float64(2) || d["first_trace"] != float64(f.firstTraceSeq) {
		t.Errorf("second-degree record %+v %s", tr, tr.Detail)
	}
	// The contact's own contacts: the stranger met at 北门 too.
	if !strings.Contains(body, f.stranger.String()) || !strings.Contains(body, "北门") {
		t.Error("the second-degree page lacks the contact's contact")
	}
}
