package web_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"

	"passgate/store"
	"passgate/web"
)

// auditFixture is a test appliance whose trail holds 120 records more
// than setup's, at known times (every 20 minutes from 2026-12-03 10:00
// UTC), by three actors and three actions.
func auditFixture(t *testing.T, ts *testServer) []store.AuditRecord {
	t.Helper()
	ctx := context.Background()
	base := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	actors := []store.Actor{"li", "wang", "zhao"}
	actions := []string{store.AuditExport, store.AuditTrace, store.AuditBackup}
	for i := range 120 {
		rec := &store.AuditRecord{At: base.Add(time.Duration(i) * 20 * time.Minute), Actor: actors[i%3],
			Action: actions[i/3%3], Subject: fmt.Sprint("subject-", i), Detail: store.AuditDetail(map[string]int{"n": i})}
		if err := ts.DB.Audit(ctx, rec); err != nil {
			t.Fatal(err)
		}
	}
	var all []store.AuditRecord
	if err := ts.DB.FindAudit(ctx, store.AuditFilter{}, func(r *store.AuditRecord) error {
		all = append(all, *r)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return all
}

// auditPages follows the page's "next" links from path and returns the
// seqs shown, in order.
func auditPages(t *testing.T, ts *testServer, cl *http.Client, path string) []int64 {
	t.Helper()
	var seqs []int64
	for pages := 0; path != ""; pages++ {
		if pages > 50 {
			t.Fatal("the pages do not end")
		}
		doc := getDoc(t, ts, cl, path)
		doc.Find(`[data-testid="audit-record"]`).Each(func(_ int, s *goquery.Selection) {
			n, err := strconv.ParseInt(s.AttrOr("data-seq", ""), 10, 64)
			if err != nil {
				t.Fatalf("record without a seq: %v", err)
			}
			seqs = append(seqs, n)
		})
		path = doc.Find(`[data-testid="audit-next"]`).AttrOr("href", "")
	}
	return seqs
}

// Each filter shows exactly the records that a plain reading of the
// trail selects, newest first, across pages with no gap and no repeat.
// Dates are midnight in the district's zone (Asia/Shanghai by default),
// whatever zone the server runs in.
func TestAuditPage_Filters(t *testing.T) {
	ts := newTestServer(t)
	cl := ts.login(t, "admin", ts.AdminPassword) // audited: before the fixture reads the trail
	all := auditFixture(t, ts)
	cst := time.FixedZone("CST", 8*3600)
	dec4 := time.Date(2026, 12, 4, 0, 0, 0, 0, cst) // 2026-12-03T16:00Z
	dec5 := dec4.AddDate(0, 0, 1)
	cases := []struct {
		name  string
		query url.Values
		keep  func(store.AuditRecord) bool
	}{
		{"everything", url.Values{}, func(store.AuditRecord) bool { return true }},
		{"from a date", url.Values{"from": {"2026-12-04"}}, func(r store.AuditRecord) bool { return !r.At.Before(dec4) }},
		{"a day", url.Values{"from": {"2026-12-04"}, "to": {"2026-12-05"}}, func(r store.AuditRecord) bool {
			return !r.At.Before(dec4) && r.At.Before(dec5)
		}},
		{"actor", url.Values{"actor": {"wang"}}, func(r store.AuditRecord) bool { return r.Actor == "wang" }},
		{"action", url.Values{"action": {store.AuditTrace}}, func(r store.AuditRecord) bool { return r.Action == store.AuditTrace }},
		{"all three", url.Values{"from": {"2026-12-04"}, "actor": {"zhao"}, "action": {store.AuditBackup}}, func(r store.AuditRecord) bool {
			return !r.At.Before(dec4) && r.Actor == "zhao" && r.Action == store.AuditBackup
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var want []int64
			for _, r := range slices.Backward(all) {
				if tc.keep(r) {
					want = append(want, r.Seq)
				}
			}
			if len(want) == 0 {
				t.Fatal("the case selects nothing: it proves nothing")
			}
			got := auditPages(t, ts, cl, "/admin/audit?"+tc.query.Encode())
			if !slices.Equal(got, want) {
				t.Fatalf("shown %v\nwant  %v", got, want)
			}
		})
	}
	// The first record of the day in the district: 2026-12-03T16:00Z,
	// shown in the district's clock.
	i := slices.IndexFunc(all, func(r store.AuditRecord) bool { return r.At.Equal(dec4) })
	if i < 0 {
		t.Fatal("no record at the district's midnight")
	}
	doc := getDoc(t, ts, cl, "/admin/audit?from=2026-12-04&to=2026-12-05&actor="+string(all[i].Actor))
	row := doc.Find(fmt.Sprintf(`[data-testid="audit-record"][data-seq="%d"]`, all[i].Seq))
	if at := row.Find("td").Eq(1).Text(); at != "2026-12-04 00:00:00" {
		t.Fatalf("the day's first record shown at %q, want 2026-12-04 00:00:00", at)
	}
}

// A filter that does not parse (an action not in the list, a date that
// is none) is refused with 422, the form kept as typed and no records.
func TestAuditPage_BadFilter(t *testing.T) {
	ts := newTestServer(t)
	auditFixture(t, ts)
	cl := ts.login(t, "admin", ts.AdminPassword)
	for _, q := range []url.Values{
		{"action": {"drop_table"}, "actor": {"wang"}},
		{"from": {"yesterday"}, "actor": {"wang"}},
		{"from": {"2026-12-05"}, "to": {"2026-12-04"}, "actor": {"wang"}},
		{"before": {"-3"}, "actor": {"wang"}},
		{"actor": {strings.Repeat("x", 300)}},
	} {
		resp, body := ts.get(t, cl, "/admin/audit?"+q.Encode())
		if resp.StatusCode != http.StatusUnprocessableEntity {
			t.Errorf("%v: status %d, want 422", q, resp.StatusCode)
			continue
		}
		doc, err := goquery.NewDocumentFromReader(strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if doc.Find(`[data-testid="audit-record"]`).Length() != 0 {
			t.Errorf("%v: records shown for a refused filter", q)
		}
		if v := doc.Find(`#actor`).AttrOr("value", ""); v != q.Get("actor") {
			t.Errorf("%v: actor field %q, want it kept", q, v)
		}
		if a := q.Get("action"); a != "" && doc.Find(`[data-testid="error-action"]`).Length() != 1 {
			t.Errorf("%v: no message on the action", q)
		}
	}
}

// A hostile detail (markup in keys and values) is shown as text.
func TestAuditPage_DetailEscaped(t *testing.T) {
	ts := newTestServer(t)
	err := ts.DB.Audit(context.Background(), &store.AuditRecord{Actor: "<img src=x onerror=alert(1)>", Action: store.AuditExport,
		Subject: "<b>s</b>", Detail: []byte(`{"reason":"<script>alert(1)</script>","<i>k</i>":{"n":[1,"</dd><script>x()</script>"]}}`)})
	if err != nil {
		t.Fatal(err)
	}
	cl := ts.login(t, "admin", ts.AdminPassword)
	resp, body := ts.get(t, cl, "/admin/audit?action=export")
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	for _, bad := range []string{"<script>alert", "<script>x()", "<img src=x", "<b>s</b>", "<i>k</i>"} {
		if strings.Contains(body, bad) {
			t.Errorf("page holds %q unescaped", bad)
		}
	}
	doc, _ := goquery.NewDocumentFromReader(strings.NewReader(body))
	d := doc.Find(`[data-testid="audit-detail"]`).First()
	keys := d.Find("dt").Map(func(_ int, s *goquery.Selection) string { return s.Text() })
	vals := d.Find("dd").Map(func(_ int, s *goquery.Selection) string { return s.Text() })
	if !slices.Equal(keys, []string{"reason", "<i>k</i>.n.0", "<i>k</i>.n.1"}) ||
		!slices.Equal(vals, []string{"<script>alert(1)</script>", "1", "</dd><script>x()</script>"}) {
		t.Fatalf("detail pairs %q = %q", keys, vals)
	}
}

// "Verify now" shows an intact trail and the signed checkpoint it was
// checked against; after the file is tampered with, the break.
func TestAuditPage_VerifyNow(t *testing.T) {
	ctx := context.Background()
	cpFile := filepath.Join(t.TempDir(), "audit-checkpoints")
	ts := newTestServer(t, web.Config{AuditCheckpoints: cpFile})
	auditFixture(t, ts)
	signed, cp, err := ts.DB.SignCheckpoint(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cpFile, signed, 0o600); err != nil {
		t.Fatal(err)
	}
	cl := ts.login(t, "admin", ts.AdminPassword)
	verify := func() *goquery.Selection {
		t.Helper()
		resp, body := ts.postForm(t, cl, "/admin/audit/verify", url.Values{})
		if resp.StatusCode != 200 {
			t.Fatalf("verify: %d", resp.StatusCode)
		}
		doc, _ := goquery.NewDocumentFromReader(strings.NewReader(body))
		return doc.Find(`[data-testid="audit-verify-result"]`)
	}
	res := verify()
	if res.AttrOr("data-ok", "") != "true" {
		t.Fatalf("intact trail: %q", res.Text())
	}
	if c := res.Find(`[data-testid="audit-checkpoint"]`).Text(); !strings.Contains(c, strconv.FormatInt(cp.Size, 10)) || !strings.Contains(c, cp.Origin) {
		t.Fatalf("checkpoint shown %q, want size %d and %s", c, cp.Size, cp.Origin)
	}
	rawExec(t, ts, `DROP TRIGGER audit_no_update`, `UPDATE audit SET actor = 'someone' WHERE seq = 5`)
	res = verify()
	if res.AttrOr("data-ok", "") != "false" || !strings.Contains(res.Find(`[data-testid="audit-verify-reason"]`).Text(), "record 5") {
		t.Fatalf("tampered trail: %q", res.Text())
	}
}

// A checkpoint whose signature does not verify is a broken anchor, not
// an intact trail.
func TestAuditPage_VerifyForgedCheckpoint(t *testing.T) {
	cpFile := filepath.Join(t.TempDir(), "audit-checkpoints")
	ts := newTestServer(t, web.Config{AuditCheckpoints: cpFile})
	signed, _, err := ts.DB.SignCheckpoint(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	forged := strings.Replace(string(signed), "\n", "\n9", 1) // another size, same signature
	if err := os.WriteFile(cpFile, []byte(forged), 0o600); err != nil {
		t.Fatal(err)
	}
	cl := ts.login(t, "admin", ts.AdminPassword)
	_, body := ts.postForm(t, cl, "/admin/audit/verify", url.Values{})
	doc, _ := goquery.NewDocumentFromReader(strings.NewReader(body))
	if res := doc.Find(`[data-testid="audit-verify-result"]`); res.AttrOr("data-ok", "") != "false" {
		t.Fatalf("forged checkpoint accepted: %q", res.Text())
	}
}

// Staff and issuers may neither read nor verify the trail.
func TestAuditPage_AdminOnly(t *testing.T) {
	ts := newTestServer(t)
	for _, role := range []store.UserRole{store.UserStaff, store.UserIssuer} {
		name := "u-" + string(role)
		ts.createUser(t, name, role, "password-"+string(role))
		cl := ts.login(t, name, "password-"+string(role))
		if resp, _ := ts.get(t, cl, "/admin/audit"); resp.StatusCode != http.StatusForbidden {
			t.Errorf("%s reads the audit page: %d", role, resp.StatusCode)
		}
		if resp, _ := ts.postForm(t, cl, "/admin/audit/verify", url.Values{}); resp.StatusCode != http.StatusForbidden {
			t.Errorf("%s verifies the trail: %d", role, resp.StatusCode)
		}
	}
}
