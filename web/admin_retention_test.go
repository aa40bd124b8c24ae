package web_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"passgate/store"
)

// Pass and audit retention are set on the policy page: shown with their
// labels, saved when in range, refused with a field message and 422 when
// not, and kept when a form leaves them out.
func TestAdminPolicyPassAuditRetention(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	admin := ts.login(t, "admin", ts.AdminPassword)
	base := url.Values{"colors": {"green"}, "test_age": {"none"}, "min_doses": {"0"},
		"repeat_minutes": {"5"}, "skew_minutes": {"5"}, "retention_days": {"28"}}
	form := func(passDays, auditDays string) url.Values {
		v := url.Values{}
		for k, vs := range base {
			v[k] = vs
		}
		if passDays != "" {
			v.Set("pass_retention_days", passDays)
		}
		if auditDays != "" {
			v.Set("audit_retention_days", auditDays)
		}
		return v
	}
	policy := func() *store.Policy {
		p, err := ts.DB.Policy(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	const day = 24 * time.Hour

	// A new district shows the defaults, with Chinese labels first.
	_, page := ts.get(t, admin, "/admin/policy")
	doc := adminDoc(t, page)
	for field, want := range map[string]string{"pass_retention_days": "90", "audit_retention_days": "365"} {
		in := doc.Find(`input[name="` + field + `"]`)
		if v, _ := in.Attr("value"); v != want {
			t.Errorf("%s shows %q, want %q", field, v, want)
		}
		if doc.Find(`label[for="`+field+`"]`).Length() != 1 {
			t.Errorf("%s has no label", field)
		}
	}
	if !strings.Contains(page, "通行码记录保留天数") || !strings.Contains(page, "审计记录保留天数") {
		t.Error("the policy page lacks the retention labels")
	}

	// In range, the minimums included.
	for _, c := range []struct {
		passDays, auditDays string
		pass, audit         time.Duration
	}{
		{"7", "400", 7 * day, 400 * day},
		{"1", "30", day, 30 * day},
		{"3650", "3650", 3650 * day, 3650 * day},
	} {
		if resp, body := ts.postForm(t, admin, "/admin/policy", form(c.passDays, c.auditDays)); resp.StatusCode != 303 {
			t.Fatalf("save %s/%s: %d %s", c.passDays, c.auditDays, resp.StatusCode, body)
		}
		if p := policy(); p.PassRetention != c.pass || p.AuditRetention != c.audit {
			t.Fatalf("saved %s/%s as %v/%v", c.passDays, c.auditDays, p.PassRetention, p.AuditRetention)
		}
	}
	if resp, _ := ts.postForm(t, admin, "/admin/policy", form("12", "45")); resp.StatusCode != 303 {
		t.Fatalf("save: %d", resp.StatusCode)
	}
	// Fields left out keep the periods in force.
	if resp, _ := ts.postForm(t, admin, "/admin/policy", form("", "")); resp.StatusCode != 303 {
		t.Fatalf("save without the fields: %d", resp.StatusCode)
	}
	if p := policy(); p.PassRetention != 12*day || p.AuditRetention != 45*day {
		t.Fatalf("a form without the fields changed the periods to %v/%v", p.PassRetention, p.AuditRetention)
	}

	policyRetentionOutOfRange(t, ts, admin, form, policy)
}

// policyRetentionOutOfRange is the part of
// TestAdminPolicyPassAuditRetention about periods out of range, refused
// with the form shown again, in Chinese and in English; the periods in
// force are 12 and 45 days.
func policyRetentionOutOfRange(t *testing.T, ts *testServer, admin *http.Client, form func(passDays, auditDays string) url.Values, policy func() *store.Policy) {
	t.Helper()
	const day = 24 * time.Hour
	// Out of range: 422, the form re-rendered with the message on the
	// field and the value as typed, nothing saved.
	for _, c := range []struct{ passDays, auditDays, field, msg string }{
		{"0", "", "pass_retention_days", "请输入 1 至 3650 的天数"},
		{"3651", "", "pass_retention_days", "请输入 1 至 3650 的天数"},
		{"1.5", "", "pass_retention_days", "请输入 1 至 3650 的天数"},
		{"ninety", "", "pass_retention_days", "请输入 1 至 3650 的天数"},
		{"", "29", "audit_retention_days", "请输入 30 至 3650 的天数"},
		{"", "-365", "audit_retention_days", "请输入 30 至 3650 的天数"},
		{"", "99999999999999999999", "audit_retention_days", "请输入 30 至 3650 的天数"},
	} {
		resp, body := ts.postForm(t, admin, "/admin/policy", form(c.passDays, c.auditDays))
		if resp.StatusCode != 422 {
			t.Errorf("%s/%s: %d, want 422", c.passDays, c.auditDays, resp.StatusCode)
			continue
		}
		doc := adminDoc(t, body)
		if msg := byTestID(doc, "error-"+c.field).Text(); !strings.Contains(msg, c.msg) {
			t.Errorf("%s/%s: message %q, want %q", c.passDays, c.auditDays, msg, c.msg)
		}
		typed := c.passDays + c.auditDays
		if v, _ := doc.Find(`input[name="` + c.field + `"]`).Attr("value"); v != typed {
			t.Errorf("%s re-rendered as %q, want %q", c.field, v, typed)
		}
		if inv, _ := doc.Find(`input[name="` + c.field + `"]`).Attr("aria-invalid"); inv != "true" {
			t.Errorf("%s not marked invalid", c.field)
		}
	}
	if p := policy(); p.PassRetention != 12*day || p.AuditRetention != 45*day {
		t.Fatalf("a refused form changed the periods to %v/%v", p.PassRetention, p.AuditRetention)
	}

	// English labels and messages.
	if resp, _ := ts.postForm(t, admin, "/lang", url.Values{"lang": {"en"}, "next": {"/admin/policy"}}); resp.StatusCode != 303 {
		t.Fatalf("switch to English: %d", resp.StatusCode)
	}
	_, page := ts.get(t, admin, "/admin/policy")
	if !strings.Contains(page, "Days a pass record is kept after the pass expires") || !strings.Contains(page, "Days audit records are kept") {
		t.Error("the English policy page lacks the retention labels")
	}
	resp, body := ts.postForm(t, admin, "/admin/policy", form("", "10"))
	if msg := byTestID(adminDoc(t, body), "error-audit_retention_days").Text(); resp.StatusCode != 422 ||
		!strings.Contains(msg, "Enter a number of days from 30 to 3650.") {
		t.Errorf("English: %d %q", resp.StatusCode, msg)
	}
}
