package web_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"passgate/store"
	"passgate/web"
)

// In a real browser: the admin filters the trail by actor and action,
// reads the records found, verifies the trail against its signed
// checkpoint, and sees the break once the file is tampered with.
func TestAuditPageBrowser(t *testing.T) {
	cpFile := filepath.Join(t.TempDir(), "audit-checkpoints")
	ts := newTestServer(t, web.Config{AuditCheckpoints: cpFile})
	t.Cleanup(ts.Srv.CloseClientConnections)
	auditFixture(t, ts)
	if err := ts.DB.Audit(context.Background(), &store.AuditRecord{Actor: "wang", Action: store.AuditTrace, Subject: "ab12",
		Detail: []byte(`{"reason":"<script>alert(1)</script>","window":"15m"}`)}); err != nil {
		t.Fatal(err)
	}
	signed, _, err := ts.DB.SignCheckpoint(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cpFile, signed, 0o600); err != nil {
		t.Fatal(err)
	}
	ctx := newBrowser(t)
	console := watchConsole(ctx)
	browserLogin(t, ctx, ts.Srv.URL, "admin", ts.AdminPassword, "/admin/audit")
	err = chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.CSS(`#actor`), "wang"),
		chromedp.SetValue(chromedp.CSS(`#action`), store.AuditTrace),
		chromedp.Click(chromedp.CSS(`[data-testid="audit-filter-submit"]`)),
	)
	if err != nil {
		t.Fatal(err)
	}
	// The address changes when the filtered page starts to load; its
	// records are there once it has loaded.
	waitJS(t, ctx, "the filtered records", `location.search.includes("actor=wang") && document.readyState === "complete"`, 10*time.Second)
	// Every record shown is wang's trace, and the hostile detail is text.
	if bad := evalJS[int](t, ctx, `[...document.querySelectorAll('[data-testid="audit-record"]')].filter(r => r.cells[2].textContent !== "wang" || r.cells[3].textContent !== "trace").length`); bad != 0 {
		t.Fatalf("%d records of another actor or action", bad)
	}
	if n := evalJS[int](t, ctx, `document.querySelectorAll('[data-testid="audit-record"]').length`); n < 2 {
		t.Fatalf("%d records shown, want wang's traces", n)
	}
	if got := evalJS[string](t, ctx, `document.querySelector('[data-testid="audit-detail"] dd').textContent`); got != "<script>alert(1)</script>" {
		t.Fatalf("hostile detail shown as %q", got)
	}
	if n := evalJS[int](t, ctx, `document.querySelectorAll('[data-testid="audit-detail"] script').length`); n != 0 {
		t.Fatal("the detail's script became an element")
	}
	shot(t, ctx, "audit-filtered")

	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`[data-testid="audit-verify"]`))); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "the verification", `document.querySelector('[data-testid="audit-verify-result"]')`, 10*time.Second)
	if ok := evalJS[string](t, ctx, `document.querySelector('[data-testid="audit-verify-result"]').dataset.ok`); ok != "true" {
		t.Fatalf("intact trail shown as ok=%s", ok)
	}
	shot(t, ctx, "audit-verified")

	rawExec(t, ts, `DROP TRIGGER audit_no_update`, `UPDATE audit SET subject = 'forged' WHERE seq = 7`)
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`[data-testid="audit-verify"]`))); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "the break", `document.querySelector('[data-testid="audit-verify-result"][data-ok="false"]')`, 10*time.Second)
	if got := evalJS[string](t, ctx, `document.querySelector('[data-testid="audit-verify-reason"]').textContent`); got == "" {
		t.Fatal("no reason shown for the break")
	}
	shot(t, ctx, "audit-broken")
	console.check(t)
}

// shot saves a full-page screenshot under $ARTIFACTS, else in the
// test's temporary directory, so that every run leaves one to look at.
func shot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	dir := os.Getenv("ARTIFACTS")
	if dir == "" {
		dir = t.TempDir()
	}
	png, err := fullScreenshot(t, ctx)
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, name+".png")
	if err := os.WriteFile(p, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot %s", p)
}
