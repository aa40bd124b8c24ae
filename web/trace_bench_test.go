package web_test

import (
	"context"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"syscall"
	"testing"
	"time"

	"passgate/district"
	"passgate/pass"
	"passgate/store"
	"passgate/web"
)

// traceFixture logs checks of one resident (ID traceFixtureID) at one
// gate, every two hours from start, and perCheck others near each (a
// scan every 5 s around it, within a ±15 minute window), so that a trace
// of the resident finds checks×perCheck contact rows, each a different
// person.
func traceFixture(tb testing.TB, db *store.DB, start time.Time, checks, perCheck int) {
	tb.Helper()
	ctx := context.Background()
	me, err := district.SubjectOf(ctx, db, traceFixtureID)
	if err != nil {
		tb.Fatal(err)
	}
	raw := rawDB(tb, db)
	tx, err := raw.Begin()
	if err != nil {
		tb.Fatal(err)
	}
	defer tx.Rollback()
	ins, err := tx.Prepare(`INSERT INTO scans (at_ms, source, decision, reason, repeat, pass_id, subject) VALUES (?, '东门', 'allow', 'ok', 0, ?, ?)`)
	if err != nil {
		tb.Fatal(err)
	}
	scan := func(at time.Time, n int, s pass.Subject) {
		id := pass.ID{0x9b, byte(n >> 16), byte(n >> 8), byte(n)}
		if _, err := ins.Exec(at.UnixMilli(), id[:], s[:]); err != nil {
			tb.Fatal(err)
		}
	}
	for i := range checks {
		at := start.Add(time.Duration(i) * 2 * time.Hour)
		scan(at, 1<<23+i, me)
		for j := range perCheck {
			n := i*perCheck + j
			scan(at.Add(time.Duration(j-perCheck/2)*5*time.Second), n, pass.Subject{0x7c, byte(n >> 16), byte(n >> 8), byte(n)})
		}
	}
	if err := tx.Commit(); err != nil {
		tb.Fatal(err)
	}
}

// processCPU is the CPU time (user and system) the test process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

const traceFixtureID = "11010519491231002X"

// traceFixtureForm is the trace form for the fixture's resident over a range
// around start.
func traceFixtureForm(start time.Time) url.Values {
	return url.Values{"id_number": {traceFixtureID}, "from": {start.Add(-time.Hour).Format(time.RFC3339)},
		"to": {start.AddDate(0, 0, 30).Format(time.RFC3339)}, "window": {"15"}}
}

// BenchmarkTrace times a trace of a resident with 20,000 contact rows
// (100 checks, 200 people near each) as the server answers it: the first
// page of the results (query, audit record and page) and the full
// download in each format.
//
//	go test ./web -run XXX -bench BenchmarkTrace -benchtime 10x -count 5
func BenchmarkTrace(b *testing.B) {
	ts := newTestServer(b)
	start := time.Now().AddDate(0, 0, -20).Truncate(time.Hour)
	traceFixture(b, ts.DB, start, 100, 200)
	u, err := ts.DB.FindUserByName(b.Context(), "admin")
	if err != nil {
		b.Fatal(err)
	}
	token, err := ts.DB.CreateSession(b.Context(), u.ID, time.Hour)
	if err != nil {
		b.Fatal(err)
	}
	h := ts.Web.Handler()
	post := func(b *testing.B, path string, form url.Values) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.AddCookie(&http.Cookie{Name: web.SessionCookie, Value: token})
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatalf("%s: status %d: %.300s", path, rec.Code, rec.Body.String())
		}
		return rec
	}
	form := traceFixtureForm(start)
	b.Run("FirstPage", func(b *testing.B) {
		var n int
		cpu := processCPU()
		for b.Loop() {
			n = post(b, "/admin/trace", form).Body.Len()
		}
		// On a shared machine the wall time counts others' load too; the
		// process's CPU time per page is the server's own cost.
		b.ReportMetric(float64((processCPU()-cpu).Microseconds())/1000/float64(b.N), "cpu-ms/op")
		b.ReportMetric(float64(n), "page-bytes")
	})
	for _, f := range []string{"csv", "xlsx", "jsonl"} {
		b.Run("Download/"+f, func(b *testing.B) {
			dl := url.Values{"format": {f}, "window": {"15"}, "from": form["from"], "to": form["to"]}
			me, _ := district.SubjectOf(b.Context(), ts.DB, traceFixtureID)
			dl.Set("subject", hex.EncodeToString(me[:]))
			var n int
			for b.Loop() {
				n = post(b, "/admin/trace/download", dl).Body.Len()
			}
			b.ReportMetric(float64(n), "file-bytes")
		})
	}
}

// A trace with more rows than a page shows them a page at a time: the
// counts are of the whole result, next and previous links keep the
// session's trace token, and a download still holds every row.
func TestTrace_PagedPageWholeDownload(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	start := time.Now().AddDate(0, 0, -3).Truncate(time.Hour)
	traceFixture(t, ts.DB, start, 6, 200) // 1,200 contact rows: three pages
	c := ts.login(t, "admin", ts.AdminPassword)
	form := traceFixtureForm(start)
	resp, body := ts.postForm(t, c, "/admin/trace", form)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("trace: %d", resp.StatusCode)
	}
	type pageWant struct {
		contacts, summary int
		prev, next        bool
	}
	check := func(n int, body string, want pageWant) string {
		t.Helper()
		doc := deskDoc(t, body)
		if got := testid(doc, "trace-counts").Text(); !strings.Contains(got, "1200") || !strings.Contains(got, "6") {
			t.Errorf("page %d counts %q, want the whole result's", n, got)
		}
		if got := testid(doc, "trace-contact").Length(); got != want.contacts {
			t.Errorf("page %d: %d contact rows, want %d", n, got, want.contacts)
		}
		if got := testid(doc, "trace-summary-row").Length(); got != want.summary {
			t.Errorf("page %d: %d contacts, want %d", n, got, want.summary)
		}
		if got := testid(doc, "trace-check").Length(); n == 1 && got != 6 || n > 1 && got != 0 {
			t.Errorf("page %d: %d checks", n, got)
		}
		prev, hasPrev := testid(doc, "trace-prev").First().Attr("href")
		next, hasNext := testid(doc, "trace-next").First().Attr("href")
		if hasPrev != want.prev || hasNext != want.next {
			t.Fatalf("page %d: prev %q next %q", n, prev, next)
		}
		if hasNext {
			return next
		}
		return prev
	}
	next := check(1, body, pageWant{500, 500, false, true})
	if !strings.HasPrefix(next, "/admin/trace/") || !strings.HasSuffix(next, "?page=2") {
		t.Fatalf("next link %q", next)
	}
	_, body = ts.get(t, c, next)
	next = check(2, body, pageWant{500, 500, true, true})
	_, body = ts.get(t, c, next)
	prev := check(3, body, pageWant{200, 200, true, false})
	if !strings.HasSuffix(prev, "?page=2") {
		t.Errorf("previous link %q", prev)
	}
	// The token is the session's: another admin session cannot page it.
	other := ts.login(t, "admin", ts.AdminPassword)
	if resp, _ := ts.get(t, other, next); resp.StatusCode == http.StatusOK {
		t.Errorf("another session pages the trace: %d", resp.StatusCode)
	}

	me, err := district.SubjectOf(t.Context(), ts.DB, traceFixtureID)
	if err != nil {
		t.Fatal(err)
	}
	dl := url.Values{"format": {"jsonl"}, "window": {"15"}, "from": form["from"], "to": form["to"], "subject": {hex.EncodeToString(me[:])}}
	resp, body = ts.postForm(t, c, "/admin/trace/download", dl)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("download: %d", resp.StatusCode)
	}
	if n := strings.Count(body, `"type":"contact"`); n != 1200 {
		t.Errorf("download holds %d contact rows, want 1200", n)
	}
}
