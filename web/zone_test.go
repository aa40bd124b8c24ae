package web_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"

	"passgate/district"
	"passgate/store"
)

// On a server whose zone is UTC, a date typed into the trace form means
// midnight in the district (Asia/Shanghai by default): from 2026-12-04 a
// check at 2026-12-03T16:30Z (00:30 there) is in, one at 15:30Z is out,
// and the page shows the district's clock.
func TestWeb_DatesInDistrictZone(t *testing.T) {
	old := time.Local
	time.Local = time.UTC
	t.Cleanup(func() { time.Local = old })
	ts := newTestServer(t)
	ctx := context.Background()
	const id = "11010519491231002X"
	person, err := district.SubjectOf(ctx, ts.DB, id)
	if err != nil {
		t.Fatal(err)
	}
	for _, at := range []time.Time{time.Date(2026, 12, 3, 16, 30, 0, 0, time.UTC), time.Date(2026, 12, 3, 15, 30, 0, 0, time.UTC)} {
		if err := ts.DB.LogScan(ctx, &store.Scan{At: at, Source: "东门", Decision: "allow", Reason: "ok", Subject: person}); err != nil {
			t.Fatal(err)
		}
	}
	cl := ts.login(t, "admin", ts.AdminPassword)
	resp, body := ts.postForm(t, cl, "/admin/trace", url.Values{"id_number": {id}, "from": {"2026-12-04"}, "to": {"2026-12-05"}, "window": {"15"}})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("trace: %d", resp.StatusCode)
	}
	doc, _ := goquery.NewDocumentFromReader(strings.NewReader(body))
	rows := doc.Find(`[data-testid="trace-check"]`)
	if rows.Length() != 1 || !strings.Contains(rows.Text(), "2026-12-04 00:30:00") {
		t.Fatalf("trace from 2026-12-04 shows %d checks: %q", rows.Length(), rows.Text())
	}
	// An unknown zone is refused on the policy form with its message.
	resp, body = ts.postForm(t, cl, "/admin/policy", url.Values{"colors": {"green"}, "test_age": {"none"}, "min_doses": {"0"},
		"repeat_minutes": {"5"}, "skew_minutes": {"5"}, "time_zone": {"Mars/Olympus"}})
	if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(body, `data-testid="error-time_zone"`) {
		t.Fatalf("unknown zone: %d", resp.StatusCode)
	}
	// A known one is saved, and moves the day.
	resp, _ = ts.postForm(t, cl, "/admin/policy", url.Values{"colors": {"green"}, "test_age": {"none"}, "min_doses": {"0"},
		"repeat_minutes": {"5"}, "skew_minutes": {"5"}, "time_zone": {"UTC"}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("save zone UTC: %d", resp.StatusCode)
	}
	_, body = ts.postForm(t, cl, "/admin/trace", url.Values{"id_number": {id}, "from": {"2026-12-03"}, "to": {"2026-12-04"}, "window": {"15"}})
	doc, _ = goquery.NewDocumentFromReader(strings.NewReader(body))
	if n := doc.Find(`[data-testid="trace-check"]`).Length(); n != 2 {
		t.Fatalf("2026-12-03 in UTC: %d checks, want 2", n)
	}
}
