package web_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/hex"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"

	"passgate/check"
	"passgate/district"
	"passgate/pass"
	"passgate/store"
	"passgate/web"
	"passgate/web/i18n"
)

// traceID is a valid mainland ID number (GB 11643 example); the form
// accepts it with spaces and a lower-case x.
const traceID = "11010519491231002X"

func traceForm(id, from, to, window string) url.Values {
	return url.Values{"id_number": {id}, "from": {from}, "to": {to}, "window": {window}}
}

func TestTraceRoles(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	for _, role := range []store.UserRole{store.UserStaff, store.UserIssuer} {
		ts.createUser(t, string(role)+"1", role, "a long password "+string(role))
		c := ts.login(t, string(role)+"1", "a long password "+string(role))
		if resp, _ := ts.get(t, c, "/admin/trace"); resp.StatusCode != http.StatusForbidden {
			t.Errorf("%s GET /admin/trace: %d, want 403", role, resp.StatusCode)
		}
		if resp, _ := ts.postForm(t, c, "/admin/trace", traceForm(traceID, "2026-11-01", "2026-11-15", "15")); resp.StatusCode != http.StatusForbidden {
			t.Errorf("%s POST /admin/trace: %d, want 403", role, resp.StatusCode)
		}
		if resp, _ := ts.postForm(t, c, "/admin/trace/download", url.Values{"format": {"csv"}}); resp.StatusCode != http.StatusForbidden {
			t.Errorf("%s POST /admin/trace/download: %d, want 403", role, resp.StatusCode)
		}
	}
	n := 0
	err := ts.DB.FindAudit(t.Context(), store.AuditFilter{}, func(r *store.AuditRecord) error {
		if r.Action == store.AuditTrace {
			n++
		}
		return nil
	})
	if err != nil || n != 0 {
		t.Errorf("forbidden requests left %d trace audit records (%v)", n, err)
	}
}

// lockedBuffer collects a server's log lines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestTracePage(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	// A second handler over the same database whose logs are kept, to
	// show that the ID number is not logged.
	logs := &lockedBuffer{}
	c0, err := check.New(context.Background(), check.Config{DB: ts.DB})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c0.Close)
	srv := httptest.NewServer(web.New(web.Config{DB: ts.DB, Checker: c0, Log: slog.New(slog.NewTextHandler(logs, nil))}).Handler())
	t.Cleanup(srv.Close)
	ts.Srv = srv

	ctx := t.Context()
	person, err := district.SubjectOf(ctx, ts.DB, traceID)
	if err != nil {
		t.Fatal(err)
	}
	other := pass.Subject{0x0a, 1}
	far := pass.Subject{0x0a, 2}
	at := time.Date(2026, 11, 3, 9, 0, 0, 0, time.Local)
	for _, s := range []*store.Scan{
		{At: at, Source: "南门闸机", Decision: "allow", Reason: "ok", Subject: person},
		{At: at.Add(-10 * time.Minute), Source: "南门闸机", Decision: "deny", Reason: "status_red", Subject: other},
		{At: at.Add(40 * time.Minute), Source: "南门闸机", Decision: "allow", Reason: "ok", Subject: far},
		{At: at.Add(2 * time.Hour), Source: "=cmd", Decision: "allow", Reason: "ok", Subject: person},
		{At: at.Add(2*time.Hour + 5*time.Minute), Source: "=cmd", Decision: "allow", Reason: "ok", Subject: other},
	} {
		if err := ts.DB.LogScan(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	c := ts.login(t, "admin", ts.AdminPassword)

	resp, body := ts.get(t, c, "/admin")
	if doc := adminDoc(t, body); resp.StatusCode != http.StatusOK || doc.Find(`[data-testid="admin-link-trace"]`).AttrOr("href", "") != "/admin/trace" {
		t.Errorf("admin overview does not link to tracing")
	}
	for _, lang := range []string{"zh", "en"} {
		u, _ := url.Parse(ts.Srv.URL)
		c.Jar.SetCookies(u, []*http.Cookie{{Name: i18n.CookieName, Value: lang}})
		if _, body := ts.get(t, c, "/admin/trace"); strings.Contains(body, "admin.trace.") || !strings.Contains(body, `data-testid="trace-form"`) {
			t.Errorf("%s: form missing or untranslated", lang)
		}
		_, body := ts.postForm(t, c, "/admin/trace", traceForm(" 110105 19491231 002x ", "2026-11-01", "2026-11-15", "15"))
		if strings.Contains(body, "admin.trace.") || strings.Contains(body, "admin.export.") {
			t.Errorf("%s: untranslated key in the results page", lang)
		}
	}

	resp, body = ts.postForm(t, c, "/admin/trace", traceForm(traceID, "2026-11-01", "2026-11-15", "15"))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("trace: %d %.300s", resp.StatusCode, body)
	}
	if strings.Contains(body, traceID) {
		t.Error("results page shows the ID number")
	}
	if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("results page Cache-Control %q", cc)
	}
	doc := adminDoc(t, body)
	if n := doc.Find(`[data-testid="trace-check"]`).Length(); n != 2 {
		t.Errorf("%d checks shown, want 2", n)
	}
	var sources []string
	doc.Find(`[data-testid="trace-check-source"]`).Each(func(_ int, s *goquery.Selection) { sources = append(sources, s.Text()) })
	if strings.Join(sources, "|") != "南门闸机|=cmd" {
		t.Errorf("check sources %q", sources)
	}
	contacts := doc.Find(`[data-testid="trace-contact"]`)
	if contacts.Length() != 2 {
		t.Fatalf("%d contact rows, want 2 (the one 40 minutes away is not a contact)", contacts.Length())
	}
	otherHex := hex.EncodeToString(other[:])
	if got := contacts.First().Find(`[data-testid="trace-contact-subject"]`).Text(); got != otherHex {
		t.Errorf("first contact %q, want %s", got, otherHex)
	}
	if got := contacts.First().Find(`[data-testid="trace-contact-offset"]`).Text(); got != "-10:00" {
		t.Errorf("first offset %q, want -10:00", got)
	}
	if got := doc.Find(`[data-testid="trace-summary-overlaps"]`).Text(); got != "2" {
		t.Errorf("summary overlaps %q, want 2", got)
	}
	if strings.Contains(body, hex.EncodeToString(far[:])) {
		t.Error("someone checked 40 minutes later is listed with a 15 minute window")
	}
	subjectHex := doc.Find(`[data-testid="trace-download"] input[name="subject"]`).AttrOr("value", "")
	if subjectHex != hex.EncodeToString(person[:]) {
		t.Fatalf("download form subject %q", subjectHex)
	}

	traceDownloadAndAudit(t, ts, c, doc, subjectHex, otherHex, logs)
}

// traceDownloadAndAudit is the part of TestTracePage about the download
// offered on the result page doc, and the audit records and logs of the
// queries, which never hold the ID number.
func traceDownloadAndAudit(t *testing.T, ts *testServer, c *http.Client, doc *goquery.Document, subjectHex, otherHex string, logs *lockedBuffer) {
	t.Helper()
	// The download repeats the query by pseudonym.
	dl := url.Values{"subject": {subjectHex}, "format": {"csv"}}
	for _, k := range []string{"from", "to", "window"} {
		dl.Set(k, doc.Find(`[data-testid="trace-download"] input[name="`+k+`"]`).AttrOr("value", ""))
	}
	resp, body := ts.postForm(t, c, "/admin/trace/download", dl)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("download: %d %.300s", resp.StatusCode, body)
	}
	if !strings.HasPrefix(body, "\xef\xbb\xbf") {
		t.Error("CSV without BOM")
	}
	if cd := resp.Header.Get("Content-Disposition"); !strings.Contains(cd, "trace_20261101-20261114_15m.csv") {
		t.Errorf("Content-Disposition %q", cd)
	}
	checks, _, _ := strings.Cut(strings.TrimPrefix(body, "\xef\xbb\xbf"), "\r\n\r\n")
	recs, err := csv.NewReader(strings.NewReader(checks)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 3 || recs[0][0] != "check_time" || recs[1][7] != otherHex || recs[2][1] != "'=cmd" ||
		recs[1][11] != "true" || recs[1][12] != "600" || recs[2][11] != "false" || recs[2][12] != "300" {
		t.Errorf("CSV rows %q", recs)
	}

	// Three queries were audited (two pages in the language loop, one
	// page, one download: four), each with the pseudonym and never the
	// ID number; the logs do not hold it either.
	var audits []*store.AuditRecord
	err = ts.DB.FindAudit(t.Context(), store.AuditFilter{}, func(r *store.AuditRecord) error {
		if r.Action == store.AuditTrace {
			rc := *r
			audits = append(audits, &rc)
		}
		for _, f := range []string{string(r.Actor), r.Subject, string(r.Detail)} {
			if strings.Contains(strings.ToUpper(strings.ReplaceAll(f, " ", "")), traceID) {
				t.Errorf("audit record %d holds the ID number: %s", r.Seq, f)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(audits) != 4 {
		t.Fatalf("%d trace audit records, want 4", len(audits))
	}
	last := audits[len(audits)-1]
	if last.Actor != "admin" || last.Subject != subjectHex || !strings.Contains(string(last.Detail), `"checks":2`) ||
		!strings.Contains(string(last.Detail), `"contact_rows":2`) || !strings.Contains(string(last.Detail), `"format":"csv"`) {
		t.Errorf("audit record %+v detail %s", last, last.Detail)
	}
	if l := logs.String(); strings.Contains(l, traceID) || strings.Contains(l, "19491231") || !strings.Contains(l, subjectHex) {
		t.Errorf("logs hold the ID number or miss the query:\n%s", l)
	}
}

func TestTraceBadInput(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	c := ts.login(t, "admin", ts.AdminPassword)
	cases := []struct {
		name  string
		form  url.Values
		field string
	}{
		{"empty ID", traceForm("", "2026-11-01", "2026-11-15", "15"), "id_number"},
		{"bad check digit", traceForm("110105194912310021", "2026-11-01", "2026-11-15", "15"), "id_number"},
		{"bad birth date", traceForm("110105194913310029", "2026-11-01", "2026-11-15", "15"), "id_number"},
		{"short document", traceForm("E12", "2026-11-01", "2026-11-15", "15"), "id_number"},
		{"symbols", traceForm("E1234<script>", "2026-11-01", "2026-11-15", "15"), "id_number"},
		{"huge ID", traceForm(strings.Repeat("1", 5000), "2026-11-01", "2026-11-15", "15"), "id_number"},
		{"bad from", traceForm(traceID, "yesterday", "2026-11-15", "15"), "from"},
		{"bad to", traceForm(traceID, "2026-11-01", "2026-13-01", "15"), "to"},
		{"reversed", traceForm(traceID, "2026-11-15", "2026-11-01", "15"), "to"},
		{"empty range", traceForm(traceID, "2026-11-01", "2026-11-01", "15"), "to"},
		{"over 366 days", traceForm(traceID, "2025-01-01", "2026-11-01", "15"), "to"},
		{"window zero", traceForm(traceID, "2026-11-01", "2026-11-15", "0"), "window"},
		{"window 30s", traceForm(traceID, "2026-11-01", "2026-11-15", "30s"), "window"},
		{"window 25h", traceForm(traceID, "2026-11-01", "2026-11-15", "1500"), "window"},
		{"window text", traceForm(traceID, "2026-11-01", "2026-11-15", "soon"), "window"},
		{"window negative", traceForm(traceID, "2026-11-01", "2026-11-15", "-5"), "window"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := ts.postForm(t, c, "/admin/trace", tc.form)
			if resp.StatusCode != http.StatusUnprocessableEntity {
				t.Fatalf("status %d, want 422", resp.StatusCode)
			}
			if adminDoc(t, body).Find(`[data-testid="error-`+tc.field+`"]`).Length() != 1 {
				t.Errorf("no message on field %s", tc.field)
			}
		})
	}
	person, _ := district.SubjectOf(t.Context(), ts.DB, traceID)
	good := url.Values{"subject": {hex.EncodeToString(person[:])}, "from": {"2026-11-01T00:00:00+08:00"},
		"to": {"2026-11-15T00:00:00+08:00"}, "window": {"15"}, "format": {"csv"}}
	for _, tc := range []struct{ name, key, val string }{
		{"unknown format", "format", "pdf"},
		{"no format", "format", ""},
		{"bad subject", "subject", "zz"},
		{"short subject", "subject", "abcd"},
		{"reversed", "to", "2026-10-01T00:00:00+08:00"},
		{"window 0", "window", "0"},
	} {
		t.Run("download "+tc.name, func(t *testing.T) {
			f := url.Values{}
			for k, v := range good {
				f[k] = v
			}
			f.Set(tc.key, tc.val)
			if resp, _ := ts.postForm(t, c, "/admin/trace/download", f); resp.StatusCode != http.StatusUnprocessableEntity {
				t.Errorf("status %d, want 422", resp.StatusCode)
			}
		})
	}
	if resp, _ := ts.postForm(t, c, "/admin/trace/download", good); resp.StatusCode != http.StatusOK {
		t.Errorf("the good download: %d", resp.StatusCode)
	}
}

// TestTracePageTruncatedAndNamed: a trace cut at its row limit marks, on
// the page and in the download, each check whose contacts were cut off
// (never as if nobody was near), and says how much is not listed; a
// contact in the district's register shows with masked name and ID tail,
// never the full name or number.
func TestTracePageTruncatedAndNamed(t *testing.T) {
	ts := newTestServer(t, web.Config{TraceLimit: 3})
	person := seedTruncatedTrace(t, ts)
	const otherID, otherName = truncOtherID, truncOtherName
	c := ts.login(t, "admin", ts.AdminPassword)
	resp, body := ts.postForm(t, c, "/admin/trace", traceForm(traceID, "2026-11-01", "2026-11-15", "15"))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("trace: %d", resp.StatusCode)
	}
	doc := adminDoc(t, body)
	if b := doc.Find(`[data-testid="trace-truncated"]`).Text(); !strings.Contains(b, "3") || !strings.Contains(b, "2") {
		t.Errorf("truncation banner %q", b)
	}
	var cut []string
	doc.Find(`[data-testid="trace-check"]`).Each(func(_ int, s *goquery.Selection) {
		cut = append(cut, strings.TrimSpace(s.Find(`[data-testid="trace-check-source"]`).Text())+":"+
			strings.TrimSpace(s.Find(`[data-testid="trace-check-cut"]`).Text()))
	})
	if len(cut) != 3 || cut[0] != "东门:" || cut[1] != "南门:" || !strings.HasPrefix(cut[2], "西门:⚠") || !strings.Contains(cut[2], "2") {
		t.Errorf("per-check truncation marks %q", cut)
	}
	var names []string
	doc.Find(`[data-testid="trace-contact"]`).Each(func(_ int, s *goquery.Selection) {
		names = append(names, s.Find(`[data-testid="trace-contact-name"]`).Text()+"/"+s.Find(`[data-testid="trace-contact-id-tail"]`).Text())
	})
	if strings.Join(names, ",") != "王*明/5678,/,/" {
		t.Errorf("contact names %q", names)
	}
	if s := doc.Find(`[data-testid="trace-summary-row"]`).First(); s.Find(`[data-testid="trace-summary-name"]`).Text() != "王*明" ||
		s.Find(`[data-testid="trace-summary-id-tail"]`).Text() != "5678" {
		t.Errorf("summary row %q", s.Text())
	}
	if strings.Contains(body, otherName) || strings.Contains(body, otherID) {
		t.Error("the page holds the contact's full name or ID number")
	}

	// The download of the same query says so too.
	dl := url.Values{"subject": {hex.EncodeToString(person[:])}, "format": {"csv"}}
	for _, k := range []string{"from", "to", "window"} {
		dl.Set(k, doc.Find(`[data-testid="trace-download"] input[name="`+k+`"]`).AttrOr("value", ""))
	}
	resp, body = ts.postForm(t, c, "/admin/trace/download", dl)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("download: %d", resp.StatusCode)
	}
	tables := strings.Split(strings.TrimPrefix(body, "\xef\xbb\xbf"), "\r\n\r\n")
	if len(tables) != 3 {
		t.Fatalf("%d CSV tables, want 3", len(tables))
	}
	result, err := csv.NewReader(strings.NewReader(tables[2])).ReadAll()
	if err != nil || len(result) != 2 || strings.Join(result[1][:7], " ") != "true 3 3 0 3 2 3" {
		t.Errorf("result table %q (%v)", result, err)
	}
	checks, err := csv.NewReader(strings.NewReader(tables[0])).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	last := checks[len(checks)-1]
	if last[1] != "西门" || last[5] != "true" || last[6] != "2" || last[7] != "" {
		t.Errorf("cut check row %q", last)
	}
}

// The registered contact of seedTruncatedTrace.
const truncOtherID, truncOtherName = "E12345678", "王小明"

// seedTruncatedTrace logs, for the person traceID names, three checks
// that a trace limited to three rows cuts: the first with nobody near,
// the second with the registered contact and two others (the limit), the
// third with two more, cut off. It returns the person's pseudonym.
func seedTruncatedTrace(t *testing.T, ts *testServer) pass.Subject {
	t.Helper()
	ctx := context.Background()
	person, err := district.SubjectOf(ctx, ts.DB, traceID)
	if err != nil {
		t.Fatal(err)
	}
	const otherID, otherName = truncOtherID, truncOtherName
	named, err := district.SubjectOf(ctx, ts.DB, otherID)
	if err != nil {
		t.Fatal(err)
	}
	if err := ts.DB.SavePerson(ctx, &store.Person{Subject: named, MaskedName: pass.MaskName(otherName), IDTail: pass.IDTail(otherID),
		IDType: store.IDPassport, Color: pass.Green}, "test"); err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 11, 3, 9, 0, 0, 0, time.Local)
	// Check 1: nobody near. Check 2: the registered contact and two
	// others (the limit of three rows). Check 3: two more, cut off.
	for _, s := range []*store.Scan{
		{At: at, Source: "东门", Decision: "allow", Reason: "ok", Subject: person},
		{At: at.Add(time.Hour), Source: "南门", Decision: "allow", Reason: "ok", Subject: person},
		{At: at.Add(time.Hour + time.Minute), Source: "南门", Decision: "allow", Reason: "ok", Subject: named},
		{At: at.Add(time.Hour + 2*time.Minute), Source: "南门", Decision: "allow", Reason: "ok", Subject: pass.Subject{0x0c, 1}},
		{At: at.Add(time.Hour + 3*time.Minute), Source: "南门", Decision: "allow", Reason: "ok", Subject: pass.Subject{0x0c, 2}},
		{At: at.Add(2 * time.Hour), Source: "西门", Decision: "allow", Reason: "ok", Subject: person},
		{At: at.Add(2*time.Hour + time.Minute), Source: "西门", Decision: "allow", Reason: "ok", Subject: pass.Subject{0x0c, 3}},
		{At: at.Add(2*time.Hour + 2*time.Minute), Source: "西门", Decision: "allow", Reason: "ok", Subject: pass.Subject{0x0c, 4}},
	} {
		if err := ts.DB.LogScan(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	return person
}
