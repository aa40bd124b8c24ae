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
	"passgate/internal/utctest"
	"passgate/store"
)

// On a server whose zone is UTC, a date typed into the trace form means
// midnight in the district (Asia/Shanghai by default): from 2026-12-04 a
// check at 2026-12-03T16:30Z (00:30 there) is in, one at 15:30Z is out,
// and the page shows the district's clock.
func TestWeb_DatesInDistrictZone(t *testing.T) {
	utctest.Require(t)
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

// serverInUTC says the test relies on the server's own zone being UTC
// (TestMain sets it for the package), so that any date read or shown in
// the server's zone instead of the district's is eight hours off.
func serverInUTC(t *testing.T) {
	t.Helper()
	utctest.Require(t)
}

// setZone makes name the district's time zone.
func setZone(t *testing.T, ts *testServer, name string) *time.Location {
	t.Helper()
	pol, err := ts.DB.Policy(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	pol.TimeZone = name
	if err := ts.DB.ChangePolicy(t.Context(), pol, "admin"); err != nil {
		t.Fatal(err)
	}
	if ts.Checker != nil {
		if err := ts.Checker.Refresh(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

// A sample time typed at the desk, and one in an imported file, means
// the district's clock on a server in UTC: yesterday 00:00 is stored as
// midnight in Beijing (16:00 UTC the day before), and the resident's page
// shows it as 00:00 again. A district in Asia/Urumqi gets its own.
func TestDesk_SampleTimeInDistrictZone(t *testing.T) {
	serverInUTC(t)
	for _, zone := range []string{"", "Asia/Urumqi"} {
		t.Run("zone="+zone, func(t *testing.T) {
			ts, c := deskIssuer(t)
			loc, _ := time.LoadLocation(store.DefaultTimeZone)
			if zone != "" {
				loc = setZone(t, ts, zone)
			}
			day := time.Now().In(loc).AddDate(0, 0, -1)
			want := time.Date(day.Year(), day.Month(), day.Day(), 0, 0, 0, 0, loc)
			typed := want.Format("2006-01-02")

			// At the desk.
			path := deskRegister(t, ts, c, "李四", "passport", "E12345678", "")
			resp, _ := ts.postForm(t, c, path+"/test", url.Values{"sample_time": {typed + "T00:00"}, "result": {"negative"}})
			if resp.StatusCode != http.StatusSeeOther {
				t.Fatalf("desk test: %d", resp.StatusCode)
			}
			if p := findByID(t, ts, "E12345678"); !p.TestedAt.Equal(want) {
				t.Fatalf("desk: %s 00:00 stored as %s, want %s", typed, p.TestedAt.UTC(), want.UTC())
			}
			_, body := ts.get(t, c, path)
			if got := strings.TrimSpace(testid(deskDoc(t, body), "person-tested").Text()); got != typed+" 00:00" {
				t.Errorf("desk page shows the test at %q, want %q", got, typed+" 00:00")
			}

			// In a file, with a time and with a date alone.
			if resp, body := upload(t, ts, c, "residents", []byte("name,id_type,id_number\n张三明,,11010519491231002X\n王五,passport,E7654321\n")); resp.StatusCode != 200 {
				t.Fatalf("residents: %d %.300s", resp.StatusCode, body)
			}
			file := "id_number,sample_time,result\n11010519491231002X," + typed + " 00:00,negative\nE7654321," + typed + ",negative\n"
			if resp, body := upload(t, ts, c, "tests", []byte(file)); resp.StatusCode != 200 {
				t.Fatalf("tests: %d %.500s", resp.StatusCode, body)
			}
			for _, id := range []string{"11010519491231002X", "E7654321"} {
				if p := findByID(t, ts, id); !p.TestedAt.Equal(want) {
					t.Errorf("import %s: stored %s, want %s", id, p.TestedAt.UTC(), want.UTC())
				}
			}
		})
	}
}
