package web_test

import (
	"net/url"
	"strings"
	"testing"

	"passgate/store"
)

// TestStatus_AuditWarning: once a check found the trail broken, the
// status page says so at the top, in both languages' first line, and
// /readyz lists it, while the appliance stays ready.
func TestStatus_AuditWarning(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	cl := ts.login(t, "admin", ts.AdminPassword)
	if doc := getDoc(t, ts, cl, "/admin/status"); doc.Find(`[data-testid="audit-warnings"]`).Length() != 0 {
		t.Fatal("warning shown on an intact trail")
	}
	rawExec(t, ts, `DROP TRIGGER audit_no_update`, `UPDATE audit SET actor = 'someone' WHERE seq = 1`)
	if _, err := ts.DB.VerifyAudit(t.Context()); err == nil {
		t.Fatal("tampering not found")
	}
	doc := getDoc(t, ts, cl, "/admin/status")
	w := doc.Find(`[data-testid="audit-warnings"]`)
	if w.Length() != 1 || !strings.Contains(w.Text(), "审计记录告警") ||
		!strings.Contains(doc.Find(`[data-testid="audit-warning"]`).Text(), "record 1: hash does not match") {
		t.Fatalf("status page warning: %q", w.Text())
	}
	code, b := getReady(t, ts)
	if code != 200 || len(b.Warnings) != 1 || !strings.Contains(b.Warnings[0], "AUDIT TRAIL BROKEN") {
		t.Fatalf("readyz: %d %+v", code, b)
	}
}

// TestAudit_PersonLookupAndDevices: opening a person's record by
// pseudonym and adding or revoking a device token are on record, by
// the admin who did it.
func TestAudit_PersonLookupAndDevices(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	cl := ts.login(t, "admin", ts.AdminPassword)
	path := deskRegister(t, ts, cl, "王小明", "mainland", "11010519491231002x", "138 0013 8000")
	if resp, _ := ts.get(t, cl, path); resp.StatusCode != 200 {
		t.Fatalf("person page: %d", resp.StatusCode)
	}
	a := lastAudit(t, ts.DB)
	if a.Action != store.AuditPersonLookup || a.Actor != "admin" || "/desk/people/"+a.Subject != path {
		t.Fatalf("look-up record %+v, want person_lookup of %s by admin", a, path)
	}
	if resp, _ := ts.postForm(t, cl, "/admin/devices", url.Values{"name": {"gate-9"}}); resp.StatusCode != 200 {
		t.Fatalf("add device: %d", resp.StatusCode)
	}
	if a := lastAudit(t, ts.DB); a.Action != store.AuditDeviceAdded || a.Actor != "admin" || a.Subject != "gate-9" {
		t.Fatalf("device record %+v", a)
	}
	if resp, _ := ts.postForm(t, cl, "/admin/devices/revoke", url.Values{"name": {"gate-9"}}); resp.StatusCode >= 400 {
		t.Fatalf("revoke device: %d", resp.StatusCode)
	}
	if a := lastAudit(t, ts.DB); a.Action != store.AuditDeviceRevoked || a.Actor != "admin" || a.Subject != "gate-9" {
		t.Fatalf("device record %+v", a)
	}
}
