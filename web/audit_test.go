package web_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"passgate/store"
)

// auditTrail returns the trail as "actor action subject detail" lines.
func auditTrail(t *testing.T, db *store.DB) []string {
	t.Helper()
	var lines []string
	err := db.FindAudit(t.Context(), store.AuditFilter{}, func(r *store.AuditRecord) error {
		lines = append(lines, fmt.Sprintf("%s %s %s %s", r.Actor, r.Action, r.Subject, r.Detail))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return lines
}

// TestAudit_WebActions drives logins, account and policy changes through
// HTTP and checks the records they leave, and that no password does.
func TestAudit_WebActions(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	// A failed login of a known account and of an unknown name (kept
	// out of the trail: it may be a password typed in the wrong field).
	for _, name := range []string{"admin", "wrong-field-password-456"} {
		resp, _ := ts.postForm(t, ts.client(t), "/login", url.Values{"username": {name}, "password": {"wrong-password-123"}})
		if resp.StatusCode != http.StatusUnprocessableEntity {
			t.Fatalf("bad login %s: status %d", name, resp.StatusCode)
		}
	}
	admin := ts.login(t, "admin", ts.AdminPassword)

	resp, _ := ts.postForm(t, admin, "/admin/users", url.Values{
		"username": {"desk1"}, "role": {string(store.UserStaff)}, "password": {"desk1-secret-password"}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("create user: status %d", resp.StatusCode)
	}
	u, err := ts.DB.FindUserByName(t.Context(), "desk1")
	if err != nil {
		t.Fatal(err)
	}
	for _, step := range []struct {
		path string
		form url.Values
	}{
		{"role", url.Values{"role": {string(store.UserIssuer)}}},
		{"password", url.Values{"password": {"another-secret-password"}}},
		{"disable", nil},
		{"enable", nil},
	} {
		resp, _ := ts.postForm(t, admin, fmt.Sprintf("/admin/users/%d/%s", u.ID, step.path), step.form)
		if resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("%s: status %d", step.path, resp.StatusCode)
		}
	}
	resp, _ = ts.postForm(t, admin, "/admin/policy", url.Values{
		"colors": {"green"}, "test_age": {"none"}, "min_doses": {"3"}, "repeat_minutes": {"5"}, "skew_minutes": {"5"}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("save policy: status %d", resp.StatusCode)
	}

	got := auditTrail(t, ts.DB)
	want := []string{
		`setup first_admin admin {"role":"admin"}`,
		`admin login_failed admin {"addr":"127.0.0.1","outcome":"bad_password"}`,
		`anonymous login_failed  {"addr":"127.0.0.1","outcome":"unknown_user"}`,
		`admin login admin {"addr":"127.0.0.1","outcome":"ok","role":"admin"}`,
		`admin user_created desk1 {"role":"staff"}`,
		`admin user_role desk1 {"new":"issuer","old":"staff"}`,
		`admin user_password desk1 {"generated":false}`,
		`admin user_disabled desk1 `,
		`admin user_enabled desk1 `,
	}
	if len(got) != len(want)+1 {
		t.Fatalf("audit trail:\n%s", strings.Join(got, "\n"))
	}
	for i, w := range want {
		if got[i] != w {
			t.Errorf("record %d = %s, want %s", i+1, got[i], w)
		}
	}
	last := got[len(got)-1]
	if !strings.HasPrefix(last, "admin policy_changed policy ") {
		t.Fatalf("last record %s, want the policy change", last)
	}
	var d struct{ Old, New map[string]any }
	if err := json.Unmarshal([]byte(strings.TrimPrefix(last, "admin policy_changed policy ")), &d); err != nil ||
		d.New["min_doses"] != float64(3) || d.New["colors"] != "green" || d.Old["min_doses"] == float64(3) {
		t.Errorf("policy detail %s: %v", last, err)
	}
	all := strings.Join(got, "\n")
	for _, secret := range []string{"wrong-password-123", "wrong-field-password-456", ts.AdminPassword, "desk1-secret-password", "another-secret-password", "$argon2"} {
		if strings.Contains(all, secret) {
			t.Errorf("the audit trail contains %q", secret)
		}
	}
	if n, err := ts.DB.VerifyAudit(t.Context()); err != nil || n != int64(len(got)) {
		t.Fatalf("VerifyAudit = %d, %v", n, err)
	}
}
