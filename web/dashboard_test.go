package web_test

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"

	"passgate/store"
	"passgate/web/i18n"
)

// synthScan is one check of a synthetic day. app 0 is the appliance
// itself; otherwise the registry id of an appliance at its hub.
type synthScan struct {
	at               time.Time
	app              int64
	source, decision string
	reason           string
}

// Appliances of the synthetic hub, by registry id, and their sources.
var (
	synthApps    = map[int64]string{0: "", 2: "north-gate"}
	synthSources = map[int64][]string{0: {"gate-east", "gate-west", "gate-south", "clinic-door"}, 2: {"lane-1", "lane-2"}}
	// Deny reasons, each as often as it is listed.
	synthReasons = []string{"expired", "expired", "expired", "status_red", "status_yellow", "status_yellow", "test_too_old", "bad_signature", "revoked"}
)

// synthDay makes n checks between day's midnight and now: a morning and
// a lunch rush over a quiet background, one in twelve denied.
func synthDay(day, now time.Time, n int, seed uint64) []synthScan {
	rng := rand.New(rand.NewPCG(seed, 1))
	span := now.Sub(day)
	out := make([]synthScan, 0, n)
	for len(out) < n {
		var at time.Time
		switch p := rng.Float64(); {
		case p < 0.4:
			at = day.Add(7*time.Hour + time.Duration(rng.Int64N(int64(2*time.Hour))))
		case p < 0.7:
			at = day.Add(11*time.Hour + 30*time.Minute + time.Duration(rng.Int64N(int64(90*time.Minute))))
		default:
			at = day.Add(time.Duration(rng.Int64N(int64(span))))
		}
		if !at.Before(now) {
			continue
		}
		app := int64(0)
		if rng.IntN(3) == 0 {
			app = 2
		}
		s := synthScan{at: at.Truncate(time.Millisecond), app: app, decision: "allow", reason: "ok"}
		s.source = synthSources[app][rng.IntN(len(synthSources[app]))]
		if rng.IntN(12) == 0 {
			s.decision, s.reason = "deny", synthReasons[rng.IntN(len(synthReasons))]
		}
		out = append(out, s)
	}
	return out
}

// rawDB opens the appliance's database file beside the store, for the
// test's bulk writes (the store logs scans one check at a time).
func rawDB(t testing.TB, db *store.DB) *sql.DB {
	t.Helper()
	raw, err := sql.Open("sqlite", "file:"+db.Path()+"?_pragma=busy_timeout(10000)&_pragma=foreign_keys(1)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { raw.Close() })
	return raw
}

// loadSynthHub registers the hub's appliances (north-gate called in half
// a minute before now, river-office two hours before: stale) and writes
// scans, with gate-east standing at the entrance 东门.
func loadSynthHub(t testing.TB, db *store.DB, now time.Time, scans []synthScan) {
	t.Helper()
	ctx := context.Background()
	raw := rawDB(t, db)
	tx, err := raw.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	for _, q := range []string{
		fmt.Sprintf(`INSERT INTO appliances (id, name, may_issue, created_ms, enrolled_ms, last_contact_ms, backlog)
			VALUES (2, 'north-gate', 0, 0, 1, %d, 3), (3, 'river-office', 1, 0, 1, %d, 420)`,
			now.Add(-30*time.Second).UnixMilli(), now.Add(-2*time.Hour).UnixMilli()),
	} {
		if _, err := tx.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	local, err := tx.Prepare(`INSERT INTO scans (at_ms, source, decision, reason, repeat) VALUES (?, ?, ?, ?, 0)`)
	if err != nil {
		t.Fatal(err)
	}
	remote, err := tx.Prepare(`INSERT INTO district_scans (appliance_id, seq, at_ms, source, decision, reason, repeat, received_ms)
		VALUES (?, ?, ?, ?, ?, ?, 0, ?)`)
	if err != nil {
		t.Fatal(err)
	}
	for i, s := range scans {
		if s.app == 0 {
			_, err = local.Exec(s.at.UnixMilli(), s.source, s.decision, s.reason)
		} else {
			_, err = remote.Exec(s.app, i+1, s.at.UnixMilli(), s.source, s.decision, s.reason, s.at.UnixMilli())
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	countRawScans(t, tx)
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := db.SetEntrance(ctx, "gate-east", "东门", "admin"); err != nil {
		t.Fatal(err)
	}
}

// countRawScans adds scans written straight into the local log (as
// tests do, to fill it fast) to the dashboard's counts, which the scan
// writer keeps for the scans it logs itself.
func countRawScans(tb testing.TB, db interface {
	Exec(string, ...any) (sql.Result, error)
}) {
	tb.Helper()
	for _, q := range []string{`
		INSERT INTO scan_counts_time
		SELECT at_ms - at_ms % 300000 AS b, decision, reason, count(*) FROM scans WHERE true GROUP BY 1, 2, 3
		ON CONFLICT DO UPDATE SET n = n + excluded.n`, `
		INSERT INTO scan_counts_source
		SELECT at_ms - at_ms % 900000, 0, source, sum(decision = 'allow'), sum(decision = 'deny') FROM scans WHERE true GROUP BY 1, 2, 3
		ON CONFLICT DO UPDATE SET allow = allow + excluded.allow, deny = deny + excluded.deny`,
	} {
		if _, err := db.Exec(q); err != nil {
			tb.Fatal(err)
		}
	}
}

// synthNow is the fixed clock of the dashboard tests: a weekday
// afternoon in the district's zone (the default a new district has).
func synthNow() (day, now time.Time) {
	day = time.Date(2026, 12, 4, 0, 0, 0, 0, (*store.Policy)(nil).Location())
	return day, day.Add(15*time.Hour + 37*time.Minute + 12*time.Second)
}

// TestDashboard renders the admin's landing page on a known day and
// checks every chart's numbers against counts made here from the scans.
func TestDashboard(t *testing.T) {
	ts := newTestServer(t)
	day, now := synthNow()
	ts.DB.Now = func() time.Time { return now }
	scans := synthDay(day, now, 3000, 7)
	// Checks of the day before and of the next day are not today's.
	scans = append(scans, synthScan{day.Add(-time.Minute), 0, "gate-west", "deny", "expired"},
		synthScan{day.Add(24 * time.Hour), 2, "lane-1", "deny", "revoked"})
	loadSynthHub(t, ts.DB, now, scans)
	admin := ts.login(t, "admin", ts.AdminPassword)

	want := expectDashboard(scans, day, now)

	for _, path := range []string{"/admin", "/admin/dashboard"} {
		t.Run(path, func(t *testing.T) {
			resp, body := ts.get(t, admin, path)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d", resp.StatusCode)
			}
			doc := adminDoc(t, body)
			for id, n := range map[string]int{"dash-total": want.allow + want.deny, "dash-allow": want.allow, "dash-deny": want.deny} {
				if got := strings.ReplaceAll(byTestID(doc, id).Text(), ",", ""); got != strconv.Itoa(n) {
					t.Errorf("%s = %s, want %d", id, got, n)
				}
			}
			gotBuckets := map[dashCell]int{}
			doc.Find(`#chart-timeline rect[data-bucket]`).Each(func(_ int, r *goquery.Selection) {
				b, _ := strconv.Atoi(r.AttrOr("data-bucket", ""))
				v, _ := strconv.Atoi(r.AttrOr("data-value", ""))
				gotBuckets[dashCell{b, r.AttrOr("data-series", "")}] += v
			})
			if fmt.Sprint(gotBuckets) != fmt.Sprint(want.buckets) {
				t.Errorf("timeline = %v\nwant %v", gotBuckets, want.buckets)
			}
			if n := doc.Find(`#chart-timeline [data-testid="chart-now"]`).Length(); n != 1 {
				t.Errorf("%d marks of now", n)
			}

			gotReasons := map[string]int{}
			doc.Find(`#chart-reasons [data-testid="chart-row"]`).Each(func(_ int, g *goquery.Selection) {
				n, _ := strconv.Atoi(g.AttrOr("data-total", ""))
				gotReasons[g.AttrOr("data-label", "")] = n
				if g.Find(".chart-sub").Text() == "" {
					t.Errorf("reason %s has no English label", g.AttrOr("data-label", ""))
				}
			})
			wantReasons := map[string]int{}
			for code, n := range want.reasons {
				msg, ok := i18n.Lookup("reason." + code)
				if !ok {
					t.Fatalf("no message for reason %s", code)
				}
				wantReasons[msg.ZH] = n
			}
			if fmt.Sprint(gotReasons) != fmt.Sprint(wantReasons) {
				t.Errorf("reasons = %v, want %v", gotReasons, wantReasons)
			}

			if got := chartRows(doc, "chart-sources"); fmt.Sprint(got) != fmt.Sprint(want.sources) {
				t.Errorf("sources = %v, want %v", got, want.sources)
			}
			gotPlaces := chartRows(doc, "chart-places")
			if len(gotPlaces) != min(8, len(want.places)) || len(gotPlaces) == 0 {
				t.Errorf("%d places shown, want %d", len(gotPlaces), min(8, len(want.places)))
			}
			for k, n := range gotPlaces {
				if want.places[k] != n {
					t.Errorf("place %s: %d, want %d", k, n, want.places[k])
				}
			}

			stale := map[string]bool{}
			doc.Find(`[data-testid="dash-appliance"]`).Each(func(_ int, tr *goquery.Selection) {
				_, st := tr.Attr("data-stale")
				stale[tr.AttrOr("data-name", "")] = st
			})
			if wantStale := map[string]bool{"north-gate": false, "river-office": true}; fmt.Sprint(stale) != fmt.Sprint(wantStale) {
				t.Errorf("appliances stale = %v, want %v", stale, wantStale)
			}
		})
	}
	// The landing page keeps every admin page reachable.
	_, body := ts.get(t, admin, "/admin")
	doc := adminDoc(t, body)
	for _, link := range []string{"users", "devices", "inputs", "appliances", "policy", "status", "export"} {
		if byTestID(doc, "admin-link-"+link).Length() != 1 {
			t.Errorf("no link to %s on the landing page", link)
		}
	}
}

// dashCell is a column segment of the time chart: a 10-minute bucket of
// the day and a decision.
type dashCell struct {
	bucket   int
	decision string
}

// dashWant is the dashboard of a synthetic day, counted from its scans.
type dashWant struct {
	buckets     map[dashCell]int
	reasons     map[string]int // by reason code
	sources     map[string]int // "appliance/source"
	places      map[string]int // "appliance/place", since the quarter hour an hour before now began
	allow, deny int
}

func expectDashboard(scans []synthScan, day, now time.Time) dashWant {
	w := dashWant{buckets: map[dashCell]int{}, reasons: map[string]int{}, sources: map[string]int{}, places: map[string]int{}}
	for _, s := range scans {
		if s.at.Before(day) || !s.at.Before(day.Add(24*time.Hour)) {
			continue
		}
		w.buckets[dashCell{int(s.at.Sub(day) / (10 * time.Minute)), s.decision}]++
		if s.decision == "deny" {
			w.deny++
			w.reasons[s.reason]++
		} else {
			w.allow++
		}
		w.sources[synthApps[s.app]+"/"+s.source]++
		if !s.at.Before(now.Add(-time.Hour).Truncate(15 * time.Minute)) {
			place := s.source
			if s.app == 0 && s.source == "gate-east" {
				place = "东门"
			}
			w.places[synthApps[s.app]+"/"+place]++
		}
	}
	return w
}

// chartRows reads a bar chart's rows as "appliance/label" → total; the
// appliance comes from the row's second line ("设备：NAME").
func chartRows(doc *goquery.Document, id string) map[string]int {
	out := map[string]int{}
	doc.Find(`#` + id + ` [data-testid="chart-row"]`).Each(func(_ int, g *goquery.Selection) {
		n, _ := strconv.Atoi(g.AttrOr("data-total", ""))
		app := ""
		if sub := g.Find(".chart-sub").Text(); sub != "" {
			_, app, _ = cutAny(sub, "：", ": ")
		}
		out[app+"/"+g.AttrOr("data-label", "")] = n
	})
	return out
}

func cutAny(s string, seps ...string) (before, after string, found bool) {
	for _, sep := range seps {
		for i := 0; i+len(sep) <= len(s); i++ {
			if s[i:i+len(sep)] == sep {
				return s[:i], s[i+len(sep):], true
			}
		}
	}
	return s, "", false
}

// TestDashboard_Forbidden: the dashboard is the admin's; staff and
// issuers are refused, anonymous visitors sent to log in.
func TestDashboard_Forbidden(t *testing.T) {
	ts := newTestServer(t)
	ts.createUser(t, "gate1", store.UserStaff, "gate1-password")
	ts.createUser(t, "desk1", store.UserIssuer, "desk1-password")
	for _, path := range []string{"/admin", "/admin/dashboard"} {
		for _, who := range []struct{ name, pw string }{{"gate1", "gate1-password"}, {"desk1", "desk1-password"}} {
			resp, body := ts.get(t, ts.login(t, who.name, who.pw), path)
			if resp.StatusCode != http.StatusForbidden {
				t.Errorf("%s as %s: status %d, want 403", path, who.name, resp.StatusCode)
			}
			if byTestID(adminDoc(t, body), "dashboard").Length() != 0 {
				t.Errorf("%s as %s: the refusal shows the dashboard", path, who.name)
			}
		}
		resp, _ := ts.get(t, ts.client(t), path)
		if resp.StatusCode != http.StatusSeeOther {
			t.Errorf("%s anonymous: status %d, want 303 to the login", path, resp.StatusCode)
		}
	}
}
