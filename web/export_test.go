package web_test

import (
	"bytes"
	"encoding/csv"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"

	"passgate/store"
	"passgate/web/i18n"
)

func exportForm(from, to string, kv ...string) url.Values {
	v := url.Values{"kind": {"scans"}, "format": {"csv"}, "from": {from}, "to": {to}}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Set(kv[i], kv[i+1])
	}
	return v
}

func TestExportRoles(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	for _, role := range []store.UserRole{store.UserStaff, store.UserIssuer} {
		ts.createUser(t, string(role)+"1", role, "a long password "+string(role))
		c := ts.login(t, string(role)+"1", "a long password "+string(role))
		if resp, _ := ts.get(t, c, "/admin/export"); resp.StatusCode != http.StatusForbidden {
			t.Errorf("%s GET /admin/export: %d, want 403", role, resp.StatusCode)
		}
		if resp, body := ts.postForm(t, c, "/admin/export", exportForm("2026-11-01", "2026-12-01")); resp.StatusCode != http.StatusForbidden || strings.Contains(body, "\ufeff") {
			t.Errorf("%s POST /admin/export: %d, want 403", role, resp.StatusCode)
		}
	}
	if resp, _ := ts.postForm(t, ts.client(t), "/admin/export", exportForm("2026-11-01", "2026-12-01")); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("anonymous POST: %d, want 401", resp.StatusCode)
	}
}

func TestExportDownload(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	ctx := t.Context()
	day := time.Date(2026, 11, 3, 9, 0, 0, 0, time.Local)
	for i, src := range []string{"南门闸机", "=cmd", "南门闸机"} {
		if err := ts.DB.LogScan(ctx, &store.Scan{At: day.Add(time.Duration(i) * time.Minute), Source: src, Decision: "deny", Reason: "expired"}); err != nil {
			t.Fatal(err)
		}
	}
	c := ts.login(t, "admin", ts.AdminPassword)

	resp, body := ts.get(t, c, "/admin/export")
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `data-testid="export-form"`) {
		t.Fatalf("form: %d", resp.StatusCode)
	}
	// Every message of the page exists in both languages.
	for _, lang := range []string{"zh", "en"} {
		u, _ := url.Parse(ts.Srv.URL)
		c.Jar.SetCookies(u, []*http.Cookie{{Name: i18n.CookieName, Value: lang}})
		if _, body := ts.get(t, c, "/admin/export"); strings.Contains(body, "admin.export.") {
			t.Errorf("%s: untranslated key in the export page", lang)
		}
	}

	resp, body = downloadExport(t, ts, c, exportForm("2026-11-01", "2026-12-01"))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("export: %d %.300s", resp.StatusCode, body)
	}
	cd := resp.Header.Get("Content-Disposition")
	wantCD := `attachment; filename="scans_20261101-20261130.csv"; filename*=UTF-8''%E9%9B%81%E5%A1%94%E5%8C%BA_scans_20261101-20261130.csv`
	if cd != wantCD {
		t.Errorf("Content-Disposition %s\nwant %s", cd, wantCD)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/csv") {
		t.Errorf("Content-Type %q", ct)
	}
	if !strings.HasPrefix(body, "\xef\xbb\xbf") || !strings.Contains(body, "\r\n") {
		t.Fatalf("not an Excel CSV: %q", body[:min(40, len(body))])
	}
	recs, err := csv.NewReader(strings.NewReader(body[3:])).ReadAll()
	if err != nil || len(recs) != 4 || recs[1][1] != "南门闸机" || recs[2][1] != "'=cmd" {
		t.Errorf("CSV %q, %v", recs, err)
	}

	// The source filter, as XLSX.
	resp, body = downloadExport(t, ts, c, exportForm("2026-11-01", "2026-12-01", "format", "xlsx", "source", "南门闸机"))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("xlsx export: %d", resp.StatusCode)
	}
	f, err := excelize.OpenReader(bytes.NewReader([]byte(body)))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := f.GetRows("scans")
	if err != nil || len(rows) != 3 || rows[2][1] != "南门闸机" {
		t.Errorf("xlsx rows %q, %v", rows, err)
	}
}

func TestExportBadInput(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	c := ts.login(t, "admin", ts.AdminPassword)
	for name, form := range map[string]url.Values{
		"bad date":       exportForm("2026-02-30", "2026-03-01"),
		"not a time":     exportForm("yesterday", "2026-03-01"),
		"reversed":       exportForm("2026-12-01", "2026-11-01"),
		"empty range":    exportForm("2026-11-01", "2026-11-01"),
		"absurd window":  exportForm("2020-01-01", "2026-01-01"),
		"unknown format": exportForm("2026-11-01", "2026-12-01", "format", "xls"),
		"unknown kind":   exportForm("2026-11-01", "2026-12-01", "kind", "people"),
		"bad decision":   exportForm("2026-11-01", "2026-12-01", "decision", "maybe"),
		"filter misuse":  exportForm("2026-11-01", "2026-12-01", "kind", "passes", "source", "东门"),
		"missing to":     exportForm("2026-11-01", ""),
		"unknown action": exportForm("2026-11-01", "2026-12-01", "kind", "audit", "reason", "登录"),
		"audit decision": exportForm("2026-11-01", "2026-12-01", "kind", "audit", "decision", "deny"),
	} {
		resp, body := ts.postForm(t, c, "/admin/export", form)
		if resp.StatusCode != http.StatusUnprocessableEntity || resp.Header.Get("Content-Disposition") != "" ||
			!strings.Contains(body, `data-testid="export-form"`) || !strings.Contains(body, "⚠") {
			t.Errorf("%s: %d, want 422 with the form and the error", name, resp.StatusCode)
		}
	}
}

// TestExportAuditKind exports the audit trail from the web form,
// filtered by action, and finds the export itself audited.
func TestExportAuditKind(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	ts.createUser(t, "张管理", store.UserAdmin, "a long password 张")
	ts.login(t, "张管理", "a long password 张")
	c := ts.login(t, "admin", ts.AdminPassword)
	if _, body := ts.get(t, c, "/admin/export"); !strings.Contains(body, `<option value="audit"`) {
		t.Error("the form does not offer the audit trail")
	}
	now := time.Now()
	from, to := now.AddDate(0, 0, -1).Format(time.DateOnly), now.AddDate(0, 0, 2).Format(time.DateOnly)
	resp, body := downloadExport(t, ts, c, exportForm(from, to, "kind", "audit", "reason", store.AuditLogin))
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(body, "\ufeff") {
		t.Fatalf("audit export: %d %.200s", resp.StatusCode, body)
	}
	recs, err := csv.NewReader(strings.NewReader(strings.TrimPrefix(body, "\ufeff"))).ReadAll()
	if err != nil || len(recs) != 3 || strings.Join(recs[0], ",") != "seq,time,actor,action,subject,detail,hash,appliance" {
		t.Fatalf("audit CSV %q, %v", recs, err)
	}
	if recs[1][3] != "login" || recs[1][2] != "张管理" || recs[2][2] != "admin" || !strings.Contains(resp.Header.Get("Content-Disposition"), "_audit_") {
		t.Errorf("audit rows %q, %s", recs, resp.Header.Get("Content-Disposition"))
	}
	var last store.AuditRecord
	_ = ts.DB.FindAudit(t.Context(), store.AuditFilter{Last: 1}, func(a *store.AuditRecord) error { last = *a; return nil })
	if last.Action != store.AuditExport || last.Subject != "audit" || !strings.Contains(string(last.Detail), `"reason":"login"`) {
		t.Errorf("the audit export was not audited: %+v %s", last, last.Detail)
	}
}
