package web_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"passgate/pass"
	"passgate/store"
	"passgate/web"
)

// traceShot saves a full-page screenshot under $ARTIFACTS (else the
// test's temporary folder).
func traceShot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	png, err := fullScreenshot(t, ctx)
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	dir := os.Getenv("ARTIFACTS")
	if dir == "" {
		dir = t.TempDir()
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, name+".png")
	if err := os.WriteFile(p, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", p)
}

// submitTraceForm traces traceID over the first half of November.
func submitTraceForm(t *testing.T, ctx context.Context) {
	t.Helper()
	err := chromedp.Do(ctx,
		chromedp.SetValue(chromedp.CSS(`#id_number`), traceID),
		chromedp.SetValue(chromedp.CSS(`#from`), "2026-11-01"),
		chromedp.SetValue(chromedp.CSS(`#to`), "2026-11-15"),
		chromedp.SetValue(chromedp.CSS(`#window`), "15"),
		chromedp.Click(chromedp.CSS(`[data-testid="trace-submit"]`)),
	)
	if err != nil {
		t.Fatal(err)
	}
}

// TestTraceBrowser_PersonPhoneAndYellow: an officer traces a person,
// opens a contact's page from the result, shows the phone number giving
// a reason, goes back and marks two contacts yellow; the trail holds
// each step with the trace that led to it.
func TestTraceBrowser_PersonPhoneAndYellow(t *testing.T) {
	ctx := newBrowser(t)
	base, ts := startBrowserServer(t)
	f := seedTraceContacts(t, ts)
	browserLogin(t, ctx, base, "admin", ts.AdminPassword, "/admin/trace")
	console := watchConsole(ctx)

	submitTraceForm(t, ctx)
	waitJS(t, ctx, "the trace result", `document.querySelector('[data-testid="trace-act"]') !== null`, 10*time.Second)
	traceShot(t, ctx, "trace-result")
	trace := lastTraceAudit(t, ts, store.AuditTrace)

	link := `[data-testid="trace-summary-person"][href$="` + f.a.String() + `"]`
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(link))); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "the contact's page", `document.querySelector('[data-testid="trace-phone-form"]') !== null`, 10*time.Second)
	if got := evalJS[string](t, ctx, `document.querySelector('[data-testid="trace-person-name"]').textContent`); got != "李*" {
		t.Errorf("person page name %q", got)
	}
	if got := evalJS[string](t, ctx, `document.body.textContent`); strings.Contains(got, "13800138000") {
		t.Error("the phone is shown before it was asked for")
	}
	traceShot(t, ctx, "trace-person")

	err := chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.CSS(`[data-testid="trace-phone-reason"]`), "电话通知居家隔离"),
		chromedp.Click(chromedp.CSS(`[data-testid="trace-phone-show"]`)),
	)
	if err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "the phone number", `(document.querySelector('[data-testid="trace-person-phone"]')?.textContent ?? "").includes("13800138000")`, 10*time.Second)
	traceShot(t, ctx, "trace-person-phone")
	shown := lastTraceAudit(t, ts, store.AuditPhoneShown)
	var d map[string]any
	if err := json.Unmarshal(shown.Detail, &d); err != nil {
		t.Fatal(err)
	}
	if shown.Actor != "admin" || shown.Subject != f.a.String() || d["reason"] != "电话通知居家隔离" || d["trace"] != float64(trace.Seq) {
		t.Errorf("phone record %+v %s", shown, shown.Detail)
	}

	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`[data-testid="trace-person-back"]`))); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "back at the result", `document.querySelector('[data-testid="trace-act"]') !== null`, 10*time.Second)
	err = chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`[data-testid="trace-select"][value="`+f.a.String()+`"]`)),
		chromedp.Click(chromedp.CSS(`[data-testid="trace-select"][value="`+f.b.String()+`"]`)),
		chromedp.SendKeys(chromedp.CSS(`[data-testid="trace-act-reason"]`), "与确诊者同时进门"),
	)
	if err != nil {
		t.Fatal(err)
	}
	if got := evalJS[string](t, ctx, `document.querySelector('[data-testid="trace-act-color"]').value`); got != "yellow" {
		t.Errorf("the colour offered first is %q, want yellow", got)
	}
	traceShot(t, ctx, "trace-selected")
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`[data-testid="trace-act-status"]`))); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "the notice", `document.readyState === "complete" && document.querySelector('[data-testid="trace-act"]') !== null && !document.querySelector('[data-testid="trace-select"]:checked') && document.querySelector('[data-testid="notice"]') !== null`, 10*time.Second)
	traceShot(t, ctx, "trace-marked-yellow")
	for _, s := range []pass.Subject{f.a, f.b} {
		p, err := ts.DB.FindPerson(t.Context(), s)
		if err != nil || p.Color != pass.Yellow {
			t.Errorf("%s: %v %v, want yellow", s, p, err)
		}
	}
	n := 0
	err = ts.DB.FindAudit(t.Context(), store.AuditFilter{}, func(r *store.AuditRecord) error {
		var d map[string]any
		if r.Action == store.AuditStatusChanged && json.Unmarshal(r.Detail, &d) == nil &&
			d["to"] == "yellow" && d["trace"] == float64(trace.Seq) && (r.Subject == f.a.String() || r.Subject == f.b.String()) {
			n++
		}
		return nil
	})
	if err != nil || n != 2 {
		t.Errorf("%d status records name the trace, want 2 (%v)", n, err)
	}
	console.check(t)
}

// TestTraceBrowser_Truncated: a trace cut at its row limit says so on the
// page, above the result and at the check whose contacts were cut off,
// never as if nobody was near (the download's marks are tested over
// HTTP in TestTracePageTruncatedAndNamed).
func TestTraceBrowser_Truncated(t *testing.T) {
	ctx := newBrowser(t)
	base, ts := startBrowserServer(t, web.Config{TraceLimit: 3})
	seedTruncatedTrace(t, ts)
	browserLogin(t, ctx, base, "admin", ts.AdminPassword, "/admin/trace")
	submitTraceForm(t, ctx)
	waitJS(t, ctx, "the truncation banner", `document.querySelector('[data-testid="trace-truncated"]') !== null`, 10*time.Second)
	traceShot(t, ctx, "trace-truncated")
	banner := evalJS[string](t, ctx, `document.querySelector('[data-testid="trace-truncated"]').textContent`)
	cut := evalJS[[]string](t, ctx, `[...document.querySelectorAll('[data-testid="trace-check-cut"]')].map(e => e.textContent.trim()).filter(s => s)`)
	if !strings.Contains(banner, "3") || len(cut) != 1 || !strings.HasPrefix(cut[0], "⚠") || !strings.Contains(cut[0], "2") {
		t.Fatalf("banner %q, marks at cut checks %q", banner, cut)
	}
	// The result can be acted on as it first shows: yellow offered first.
	if got := evalJS[string](t, ctx, `document.querySelector('[data-testid="trace-act-color"]').value`); got != "yellow" {
		t.Errorf("the first result page offers the colour %q, want yellow", got)
	}
}
