package web_test

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"
	"github.com/nats-io/nats.go"

	"passgate/citylink"
	"passgate/citystats"
	"passgate/internal/figurestest"
	"passgate/internal/natstest"
	"passgate/store"
	"passgate/web"
)

// serveFigures runs a hub's dashboard answerer on the cluster as the
// district's hub user until stop is called (or the test ends), and
// returns once the hub answers.
func serveFigures(t *testing.T, c *natstest.Cluster, db *store.DB, district string) (stop func()) {
	t.Helper()
	nc := c.Connect(c.SeedFile(district), nats.CustomInboxPrefix(citylink.InboxPrefix(district)))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- citystats.Serve(ctx, nc, db, district, func() (int64, bool) { return 5, true }) }()
	probe := c.Connect(c.ConsoleSeedFile(), nats.CustomInboxPrefix(citylink.ConsoleInboxPrefix))
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if _, err := probe.Request(citystats.Subject(district), []byte("{}"), time.Second); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the hub does not answer")
		}
	}
	probe.Close()
	stopped := false
	stop = func() {
		if !stopped {
			stopped = true
			cancel()
			<-done
		}
	}
	t.Cleanup(stop)
	return stop
}

// The city dashboard on a real three-node cluster: an admin of the
// console sees each district's figures as its hub holds them, the city's
// total, the hub that stopped and the one that answers garbage named
// missing with why; each hub recorded that the officer asked.
func TestCityConsole_Dashboard(t *testing.T) {
	h1, w1 := figurestest.Hub(t, "雁塔区", 1)
	h2, w2 := figurestest.Hub(t, "碑林区", 3)
	h3, w3 := figurestest.Hub(t, "临潼区", 2)
	c := natstest.Start(t, w1.District, w2.District, w3.District, "garbage")
	serveFigures(t, c, h1, w1.District)
	serveFigures(t, c, h2, w2.District)
	serveFigures(t, c, h3, w3.District)() // it answered, then its hub stopped
	g := c.Connect(c.SeedFile("garbage"), nats.CustomInboxPrefix(citylink.InboxPrefix("garbage")))
	if _, err := g.Subscribe(citystats.Subject("garbage"), func(m *nats.Msg) { _ = m.Respond([]byte(`{"v":1,"revocations":-1}`)) }); err != nil {
		t.Fatal(err)
	}
	g.Flush()

	console := c.Connect(c.ConsoleSeedFile(), nats.CustomInboxPrefix(citylink.ConsoleInboxPrefix))
	ts := newTestServer(t, web.Config{City: &web.CityConsole{Conn: console,
		Districts: []string{w1.District, w2.District, w3.District, "garbage"}, Timeout: 3 * time.Second}})
	cl := ts.login(t, "admin", ts.AdminPassword)
	if _, body := ts.get(t, cl, "/admin/city"); !strings.Contains(body, `href="/admin/city/dashboard"`) {
		t.Fatal("the city trace page does not link to the dashboard")
	}
	resp, body := ts.get(t, cl, "/admin/city/dashboard")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	doc := adminDoc(t, body)
	if byTestID(doc, "city-dash-at").Text() == "" || doc.Find(`[data-refresh-url="/admin/city/dashboard"]`).Length() != 1 {
		t.Fatal("no time stamp, or the page does not refresh itself")
	}
	for _, w := range []figurestest.Want{w1, w2} {
		row := doc.Find(`[data-testid="city-dash-row"][data-district="` + w.District + `"]`)
		if row.Length() != 1 {
			t.Fatalf("no row for %s", w.District)
		}
		cell := func(id string) string { return strings.TrimSpace(row.Find(`[data-testid="` + id + `"]`).Text()) }
		n := strconv.FormatInt
		for id, want := range map[string]string{
			"scans-5m": n(w.Scans5m, 10), "scans-hour": n(w.ScansHour, 10), "scans-today": n(w.ScansToday, 10),
			"allows": n(w.Allows, 10), "denies": n(w.Denies, 10), "appliances": n(w.Seen, 10) + " / " + n(w.Appliances, 10),
			"revocations": n(w.Revocations, 10), "city-lag": "5",
		} {
			if got := cell(id); got != want {
				t.Errorf("%s %s: %q, want %q", w.District, id, got, want)
			}
		}
		// Two hours since the oldest list was taken: flagged.
		if row.Find(`[data-testid="stale"]`).Length() != 1 || !strings.Contains(cell("oldest-list"), "2") {
			t.Errorf("%s: oldest list %q not flagged", w.District, cell("oldest-list"))
		}
	}
	total := byTestID(doc, "city-dash-total")
	if got := strings.TrimSpace(total.Find(`[data-testid="scans-today"]`).Text()); got != strconv.FormatInt(w1.ScansToday+w2.ScansToday, 10) {
		t.Errorf("total today %q", got)
	}
	whys := map[string]string{}
	doc.Find(`[data-testid="city-dash-missing-district"]`).Each(func(_ int, s *goquery.Selection) {
		d, _ := s.Attr("data-district")
		whys[d] = s.Text()
	})
	if len(whys) != 2 || !strings.Contains(whys[w3.District], "no hub") || !strings.Contains(whys["garbage"], "malformed answer") {
		t.Fatalf("missing %v", whys)
	}
	if doc.Find(`[data-testid="city-dash-row"]`).Length() != 2 {
		t.Fatal("a district that did not answer has a row")
	}
	for _, h := range []*store.DB{h1, h2} {
		n := 0
		h.FindAudit(context.Background(), store.AuditFilter{}, func(r *store.AuditRecord) error {
			if r.Action == store.AuditCityFiguresAnswered && r.Actor == "city:admin" {
				n++
			}
			return nil
		})
		if n != 1 {
			t.Errorf("%d records of the officer's request at a hub, want 1", n)
		}
	}
}

// Without a link to the city tier the dashboard says so and asks nobody.
func TestCityConsole_DashboardNotJoined(t *testing.T) {
	ts := newTestServer(t)
	c := ts.login(t, "admin", ts.AdminPassword)
	if resp, body := ts.get(t, c, "/admin/city/dashboard"); resp.StatusCode != http.StatusOK || !strings.Contains(body, `data-testid="city-not-joined"`) {
		t.Fatalf("%d", resp.StatusCode)
	}
}
