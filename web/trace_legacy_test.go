package web_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"

	"passgate/district"
	"passgate/store"
)

// TestTrace_LegacyCheckDigit: the tracing form refuses a mainland number
// with a wrong check digit and offers to confirm it as a legacy number;
// confirmed, it traces the person registered with that number.
func TestTrace_LegacyCheckDigit(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	ctx := t.Context()
	const bad = "610113199001011234"
	id, err := district.CheckIDNumber(bad, time.Now(), district.AllowBadCheckDigit)
	if err != nil {
		t.Fatal(err)
	}
	person, err := district.SubjectOf(ctx, ts.DB, id)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 11, 3, 9, 0, 0, 0, time.Local)
	if err := ts.DB.LogScan(ctx, &store.Scan{At: at, Source: "南门闸机", Decision: "allow", Reason: "ok", Subject: person}); err != nil {
		t.Fatal(err)
	}
	c := ts.login(t, "admin", ts.AdminPassword)

	form := traceForm(bad, "2026-11-01", "2026-11-15", "15")
	resp, body := ts.postForm(t, c, "/admin/trace", form)
	doc, _ := goquery.NewDocumentFromReader(strings.NewReader(body))
	if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(doc.Find("#id_number-error").Text(), "校验位") {
		t.Fatalf("unconfirmed: %d %q", resp.StatusCode, doc.Find("#id_number-error").Text())
	}
	if doc.Find(`[data-testid="trace-allow-bad-digit"]`).Length() != 1 {
		t.Fatal("no confirm box for a legacy number")
	}
	form.Set("allow_bad_check_digit", "1")
	resp, body = ts.postForm(t, c, "/admin/trace", form)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "南门闸机") {
		t.Fatalf("confirmed: %d, the check not found: %.300s", resp.StatusCode, body)
	}
}
