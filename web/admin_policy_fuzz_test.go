package web

import (
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"passgate/web/i18n"
)

// FuzzParsePolicyRetention: whatever the retention fields hold, the form
// either names the field in error or yields periods within the store's
// bounds (zero: keep the one in force), so a save never fails in the
// store with a 500.
func FuzzParsePolicyRetention(f *testing.F) {
	for _, s := range [][2]string{
		{"90", "365"}, {"1", "30"}, {"3650", "3650"}, {"0", "29"}, {"", ""}, {"-1", "+30"},
		{"1e3", "0x1e"}, {" 7 ", "٣٠"}, {"99999999999999999999", "3651"}, {"7\x00", "30;31"},
	} {
		f.Add(s[0], s[1])
	}
	const day = 24 * time.Hour
	f.Fuzz(func(t *testing.T, passDays, auditDays string) {
		form := url.Values{"colors": {"green"}, "test_age": {"none"}, "min_doses": {"0"},
			"repeat_minutes": {"5"}, "skew_minutes": {"5"},
			"pass_retention_days": {passDays}, "audit_retention_days": {auditDays}}
		r := httptest.NewRequest("POST", "/admin/policy", strings.NewReader(form.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if err := r.ParseForm(); err != nil {
			t.Skip()
		}
		pol, f := parsePolicy(r, i18n.Printer{Lang: i18n.EN})
		check := func(field string, got, lo time.Duration) {
			if _, bad := f.Errors[field]; bad {
				return
			}
			if got != 0 && (got < lo || got > 3650*day || got%day != 0) {
				t.Fatalf("%s %q accepted as %v", field, r.PostForm.Get(field), got)
			}
			if got == 0 && strings.TrimSpace(r.PostForm.Get(field)) != "" {
				t.Fatalf("%s %q ignored without a message", field, r.PostForm.Get(field))
			}
		}
		check("pass_retention_days", pol.PassRetention, day)
		check("audit_retention_days", pol.AuditRetention, 30*day)
	})
}
