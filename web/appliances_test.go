package web_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"

	"passgate/districtsync"
	"passgate/store"
	"passgate/tlsca"
	"passgate/web"
)

func hubCA(t *testing.T) []byte {
	t.Helper()
	a, err := tlsca.LoadOrCreate(t.TempDir(), []string{"localhost"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return a.CACertDER()
}

// A hub's admin registers an appliance and gets a one-time code that pins
// the hub's certificate; bad input is refused with the form kept; an
// appliance is retired with a reason.
func TestAppliancesPage(t *testing.T) {
	t.Parallel()
	ca := hubCA(t)
	ts := newTestServer(t, web.Config{HubIdentity: ca})
	cl := ts.login(t, "admin", ts.AdminPassword)
	doc := getDoc(t, ts, cl, "/admin/appliances")
	if doc.Find(`[data-testid="no-appliances"]`).Length() != 1 || doc.Find(`[data-testid="needs-https"]`).Length() != 0 {
		t.Fatal("empty registry page")
	}

	resp, body := ts.postForm(t, cl, "/admin/appliances", url.Values{"name": {"东门闸机"}, "issuer": {"1"}, "hours": {"48"}})
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("add: %d %q", resp.StatusCode, resp.Header.Get("Cache-Control"))
	}
	doc, err := goquery.NewDocumentFromReader(strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	text := doc.Find(`[data-testid="code"]`).Text()
	code, err := districtsync.ParseCode(text)
	if err != nil {
		t.Fatalf("code %q: %v", text, err)
	}
	pin, err := districtsync.PinOfDER(ca)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(code.Pin[:], pin) {
		t.Fatal("the code does not pin the hub's certificate")
	}
	if !strings.Contains(doc.Find(`[data-testid="code-command"]`).Text(), text) {
		t.Fatal("the enrol command does not carry the code")
	}
	a, err := ts.DB.ApplianceByCode(t.Context(), code.Hash())
	if err != nil || a.Name != "东门闸机" || a.Role != store.ApplianceOffice || time.Until(a.CodeExpires) < 47*time.Hour {
		t.Fatalf("registered: %+v, %v", a, err)
	}
	row := doc.Find(`[data-testid="appliance-row"][data-name="东门闸机"]`)
	if st, _ := row.Attr("data-state"); st != "pending" {
		t.Fatalf("new appliance state %q", st)
	}

	for _, c := range []struct {
		name  string
		form  url.Values
		field string
	}{
		{"EmptyName", url.Values{"name": {""}, "hours": {"24"}}, "appliance-name-error"},
		{"LongName", url.Values{"name": {strings.Repeat("长", 30)}, "hours": {"24"}}, "appliance-name-error"},
		{"ControlChar", url.Values{"name": {"a\x01b"}, "hours": {"24"}}, "appliance-name-error"},
		{"BidiOverride", url.Values{"name": {"东门\u202e机闸"}, "hours": {"24"}}, "appliance-name-error"},
		{"ZeroWidth", url.Values{"name": {"东门\u200b闸机"}, "hours": {"24"}}, "appliance-name-error"},
		{"Taken", url.Values{"name": {"东门闸机"}, "hours": {"24"}}, "appliance-name-error"},
		{"ZeroHours", url.Values{"name": {"b"}, "hours": {"0"}}, "appliance-hours-error"},
		{"TooLong", url.Values{"name": {"b"}, "hours": {"169"}}, "appliance-hours-error"},
		{"NotANumber", url.Values{"name": {"b"}, "hours": {"1e3"}}, "appliance-hours-error"},
	} {
		t.Run(c.name, func(t *testing.T) {
			resp, body := ts.postForm(t, cl, "/admin/appliances", c.form)
			if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(body, `id="`+c.field+`"`) || strings.Contains(body, `data-testid="code"`) {
				t.Fatalf("%d, field error %s present %t", resp.StatusCode, c.field, strings.Contains(body, c.field))
			}
		})
	}

	// Enrolled by file: the admin sees where the request came from and
	// the fingerprint of the issuer key it proved possession of.
	pend, err := districtsync.NewPending(code, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := districtsync.EnrolAppliance(context.Background(), ts.DB, &pend.Request, ca, "cli", "file req.json"); err != nil {
		t.Fatal(err)
	}
	fpr, _ := districtsync.RequestFingerprint(&pend.Request)
	row = getDoc(t, ts, cl, "/admin/appliances").Find(`[data-testid="appliance-row"][data-name="东门闸机"]`)
	if !strings.Contains(row.Find(`[data-testid="enrolled-from"]`).Text(), "file req.json") ||
		row.Find(`[data-testid="issuer-sha256"] code`).Text() != fmt.Sprintf("%x", fpr) {
		t.Fatalf("enrolled row: %q", row.Text())
	}

	appliancesDrain(t, ts, cl)
	appliancesRetire(t, ts, cl, code)
}

// appliancesDrain is the part of TestAppliancesPage about draining the
// enrolled appliance 东门闸机 before it is retired.
func appliancesDrain(t *testing.T, ts *testServer, cl *http.Client) {
	t.Helper()
	row := getDoc(t, ts, cl, "/admin/appliances").Find(`[data-testid="appliance-row"][data-name="东门闸机"]`)
	if row.Find(`[data-testid="drain"]`).Length() != 1 {
		t.Fatal("no drain button on an enrolled appliance")
	}
	if resp, _ := ts.postForm(t, cl, "/admin/appliances/drain", url.Values{"name": {"nobody"}}); resp.StatusCode != http.StatusUnprocessableEntity {
		t.Fatalf("drain an unknown appliance: %d", resp.StatusCode)
	}
	if resp, _ := ts.postForm(t, cl, "/admin/appliances/drain", url.Values{"name": {"东门闸机"}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("drain: %d", resp.StatusCode)
	}
	row = getDoc(t, ts, cl, "/admin/appliances").Find(`[data-testid="appliance-row"][data-name="东门闸机"]`)
	if st, _ := row.Attr("data-state"); st != "draining" || row.Find(`[data-testid="drain"]`).Length() != 0 || row.Find(`[data-testid="retire"]`).Length() != 1 {
		t.Fatalf("row after draining: state %q, %q", st, row.Text())
	}
	if resp, _ := ts.postForm(t, cl, "/admin/appliances/drain", url.Values{"name": {"东门闸机"}}); resp.StatusCode != http.StatusUnprocessableEntity {
		t.Fatalf("drain twice: %d", resp.StatusCode)
	}
	n := 0
	if err := ts.DB.FindAudit(t.Context(), store.AuditFilter{}, func(r *store.AuditRecord) error {
		if r.Action == store.AuditApplianceDraining && r.Actor == "admin" && r.Subject == "东门闸机" {
			n++
		}
		return nil
	}); err != nil || n != 1 {
		t.Fatalf("%d audit records of draining, %v", n, err)
	}
}

// appliancesRetire is the part of TestAppliancesPage about retiring
// the appliance 东门闸机, enrolled with code.
func appliancesRetire(t *testing.T, ts *testServer, cl *http.Client, code districtsync.Code) {
	t.Helper()
	// Retire: a reason is required; retiring twice is refused.
	if resp, _ := ts.postForm(t, cl, "/admin/appliances/retire", url.Values{"name": {"东门闸机"}}); resp.StatusCode != http.StatusUnprocessableEntity {
		t.Fatalf("retire without a reason: %d", resp.StatusCode)
	}
	if resp, _ := ts.postForm(t, cl, "/admin/appliances/retire", url.Values{"name": {"nobody"}, "reason": {"x"}}); resp.StatusCode != http.StatusUnprocessableEntity {
		t.Fatalf("retire an unknown appliance: %d", resp.StatusCode)
	}
	resp, _ := ts.postForm(t, cl, "/admin/appliances/retire", url.Values{"name": {"东门闸机"}, "reason": {"设备丢失"}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("retire: %d", resp.StatusCode)
	}
	doc := getDoc(t, ts, cl, "/admin/appliances")
	if st, _ := doc.Find(`[data-testid="appliance-row"][data-name="东门闸机"]`).Attr("data-state"); st != "retired" {
		t.Fatalf("state after retiring %q", st)
	}
	if _, err := ts.DB.ApplianceByCode(t.Context(), code.Hash()); err == nil {
		t.Fatal("the code of a retired appliance still enrols")
	}
	if resp, _ := ts.postForm(t, cl, "/admin/appliances/retire", url.Values{"name": {"东门闸机"}, "reason": {"again"}}); resp.StatusCode != http.StatusUnprocessableEntity {
		t.Fatalf("retire twice: %d", resp.StatusCode)
	}
	var retired []store.AuditRecord
	if err := ts.DB.FindAudit(t.Context(), store.AuditFilter{}, func(r *store.AuditRecord) error {
		if r.Action == store.AuditApplianceRetired {
			retired = append(retired, *r)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(retired) != 1 || retired[0].Actor != "admin" || retired[0].Subject != "东门闸机" {
		t.Fatalf("audit of the retirement: %+v", retired)
	}
}

// Without HTTPS a hub cannot hand out codes: the page says why and the
// form is refused.
func TestAppliancesPage_NoHTTPS(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	cl := ts.login(t, "admin", ts.AdminPassword)
	doc := getDoc(t, ts, cl, "/admin/appliances")
	if doc.Find(`[data-testid="needs-https"]`).Length() != 1 {
		t.Fatal("no HTTPS notice")
	}
	resp, body := ts.postForm(t, cl, "/admin/appliances", url.Values{"name": {"a"}, "hours": {"24"}})
	if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(body, "--tls-addr") {
		t.Fatalf("add without HTTPS: %d", resp.StatusCode)
	}
	if _, err := ts.DB.ApplianceByName(t.Context(), "a"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("an appliance was registered without HTTPS: %v", err)
	}
}
