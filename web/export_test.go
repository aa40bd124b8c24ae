package web_test

import (
	"bytes"
	"context"
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
	ts := newTestServer(t)
	for _, role := range []string{store.UserStaff, store.UserIssuer} {
		ts.createUser(t, role+"1", role, "a long password "+role)
		c := ts.login(t, role+"1", "a long password "+role)
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
	ts := newTestServer(t)
	ctx := context.Background()
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

	resp, body = ts.postForm(t, c, "/admin/export", exportForm("2026-11-01", "2026-12-01"))
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
	resp, body = ts.postForm(t, c, "/admin/export", exportForm("2026-11-01", "2026-12-01", "format", "xlsx", "source", "南门闸机"))
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
	} {
		resp, body := ts.postForm(t, c, "/admin/export", form)
		if resp.StatusCode != http.StatusUnprocessableEntity || resp.Header.Get("Content-Disposition") != "" ||
			!strings.Contains(body, `data-testid="export-form"`) || !strings.Contains(body, "⚠") {
			t.Errorf("%s: %d, want 422 with the form and the error", name, resp.StatusCode)
		}
	}
}
