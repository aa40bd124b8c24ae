package main

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"

	"passgate/pass"
	"passgate/store"
)

// The CLI and the web form refuse the same out-of-bound values, each
// naming the same field (its flag, its input) with the same English
// message: both ask store.Policy.Validate.
func TestPolicy_CLIAndWebRefuseAlike(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{"PASSGATE_ADMIN_PASSWORD": "a long admin password"}
	if r := runCLI(t, env, "", "policy", "--data", dir); r.code != 0 {
		t.Fatalf("setup: exit %d: %s", r.code, r.stderr)
	}
	cases := []struct {
		flag, flagVal, input, inputVal, msg string
	}{
		{"audit-retention-days", "29", "audit_retention_days", "29", "Enter a number of days from 30 to 3650."},
		{"pass-retention-days", "3651", "pass_retention_days", "3651", "Enter a number of days from 1 to 3650."},
		{"scan-retention-days", "0", "retention_days", "0", "Enter a number of days from 1 to 3650."},
		{"min-doses", "256", "min_doses", "256", "Enter a whole number from 0 to 255."},
		{"repeat-window", "1441m", "repeat_minutes", "1441", "Enter whole minutes from 0 to 1440."},
		{"clock-skew", "-1m", "skew_minutes", "-1", "Enter whole minutes from 0 to 1440."},
		{"max-test-age", "721h", "test_age_hours", "721", "Enter whole hours from 1 to 720."},
		{"backlog-warn", "59s", "backlog_warn_minutes", "10081", "Enter whole minutes from 1 to 10080."},
		{"time-zone", "Mars/Olympus", "time_zone", "Mars/Olympus", "Unknown time zone; enter an IANA zone name such as Asia/Shanghai."},
		{"time-zone", "Local", "time_zone", "Local", "Unknown time zone; enter an IANA zone name such as Asia/Shanghai."},
	}
	for _, c := range cases {
		r := runCLI(t, env, "", "policy", "--data", dir, "--"+c.flag, c.flagVal)
		if want := "--" + c.flag + ": " + c.msg; r.code != 2 || !strings.Contains(r.stderr, want) {
			t.Errorf("CLI --%s %s: exit %d, stderr %q, want 2 and %q", c.flag, c.flagVal, r.code, r.stderr, want)
		}
	}

	base, _ := startServe(t, dir)
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	c := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	post := func(path string, form url.Values) (int, string) {
		t.Helper()
		resp, err := c.PostForm(base+path, form)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := post("/login", url.Values{"username": {"admin"}, "password": {env["PASSGATE_ADMIN_PASSWORD"]}}); code != http.StatusSeeOther {
		t.Fatalf("login: %d %.300s", code, body)
	}
	if code, _ := post("/lang", url.Values{"lang": {"en"}, "next": {"/admin/policy"}}); code != http.StatusSeeOther {
		t.Fatalf("switch to English: %d", code)
	}
	for _, tc := range cases {
		form := url.Values{"colors": {"green"}, "test_age": {"none"}, "min_doses": {"0"}, "repeat_minutes": {"5"}, "skew_minutes": {"5"}}
		if tc.input == "test_age_hours" {
			form.Set("test_age", "custom")
		}
		form.Set(tc.input, tc.inputVal)
		code, body := post("/admin/policy", form)
		if code != http.StatusUnprocessableEntity {
			t.Errorf("web %s %s: status %d, want 422", tc.input, tc.inputVal, code)
			continue
		}
		// The message sits in the input's error element, and no other
		// field has one.
		want := `data-testid="error-` + tc.input + `"`
		i := strings.Index(body, want)
		if i < 0 || !strings.Contains(body[i:], tc.msg) || strings.Count(body, `data-testid="error-`) != 1 {
			t.Errorf("web %s %s: no single message %q on the field", tc.input, tc.inputVal, tc.msg)
		}
	}
	if r := runCLI(t, env, "", "policy", "--data", dir); r.code != 0 || !strings.Contains(r.stdout, `"audit_retention_days": 365`) ||
		!strings.Contains(r.stdout, `"time_zone": "Asia/Shanghai"`) {
		t.Errorf("a refused value was stored: %s", r.stdout)
	}
}

// Every field store.Policy.Validate can name has a flag to name in turn.
func TestPolicy_EveryFieldHasAFlag(t *testing.T) {
	all := store.Policy{Colors: []pass.Color{0}, MaxTestAge: -1, MinDoses: -1, RepeatWindow: -1, ClockSkew: -1,
		ScanRetention: -1, PassRetention: -1, AuditRetention: -1, BacklogWarn: -1, TimeZone: "Mars/Olympus", StaleAfter: -1}
	errs := all.Validate()
	if len(errs) != len(policyFlags) {
		t.Fatalf("%d errors, want one per field: %v", len(errs), errs)
	}
	for _, fe := range errs {
		if policyFlags[fe.Field] == "" {
			t.Errorf("%s has no flag", fe.Field)
		}
	}
}
