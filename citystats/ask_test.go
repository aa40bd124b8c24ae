package citystats

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"passgate/citylink"
	"passgate/internal/figurestest"
	"passgate/internal/natstest"
	"passgate/store"
)

// serve runs Serve for the hub db of district d on the cluster, as the
// district's hub user, until stop is called or the test ends; it returns
// once the hub answers.
func serve(t *testing.T, c *natstest.Cluster, db *store.DB, d string, lag LagFunc) (stop func()) {
	t.Helper()
	nc := c.Connect(c.SeedFile(d), nats.CustomInboxPrefix(citylink.InboxPrefix(d)))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, nc, db, d, lag) }()
	console := c.Connect(c.ConsoleSeedFile(), nats.CustomInboxPrefix(citylink.ConsoleInboxPrefix))
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if _, err := console.Request(Subject(d), []byte("{}"), time.Second); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the hub does not answer")
		}
	}
	var stopped bool
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
	t.Cleanup(stop)
	return stop
}

// The console asks every district at once on a real three-node cluster:
// both hubs answer their own figures; a hub that stopped, one that never
// joined, and one that answers garbage are named missing with why.
func TestCityStats_AskDistricts(t *testing.T) {
	h1, w1 := figurestest.Hub(t, "雁塔区", 1)
	h2, w2 := figurestest.Hub(t, "碑林区", 3)
	h3, w3 := figurestest.Hub(t, "临潼区", 1)
	c := natstest.Start(t, w1.District, w2.District, w3.District, "garbage", "absent")
	serve(t, c, h1, w1.District, func() (int64, bool) { return 7, true })
	serve(t, c, h2, w2.District, nil)
	serve(t, c, h3, w3.District, nil)() // answered, then stopped
	g := c.Connect(c.SeedFile("garbage"), nats.CustomInboxPrefix(citylink.InboxPrefix("garbage")))
	if _, err := g.Subscribe(Subject("garbage"), func(m *nats.Msg) { _ = m.Respond([]byte(`{"v":1,"scans_5m":-1}`)) }); err != nil {
		t.Fatal(err)
	}
	g.Flush()
	console := c.Connect(c.ConsoleSeedFile(), nats.CustomInboxPrefix(citylink.ConsoleInboxPrefix))
	c.WaitNoResponders(console, Subject(w3.District)) // the stopped hub, everywhere
	res, err := AskDistricts(context.Background(), console, []string{w1.District, w2.District, w3.District, "garbage", "absent"}, "officer-1", 3*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Answers) != 2 {
		t.Fatalf("answers %+v missing %+v", res.Answers, res.Missing)
	}
	byD := map[string]*Answer{}
	for _, a := range res.Answers {
		byD[a.District] = a
	}
	for _, w := range []figurestest.Want{w1, w2} {
		a := byD[w.District]
		if a == nil || a.ScansToday != w.ScansToday || a.Scans5m != w.Scans5m || a.ScansHour != w.ScansHour || a.Denies != w.Denies ||
			a.Appliances != w.Appliances || *a.MedianListS != w.MedianListS || a.Revocations != w.Revocations {
			t.Fatalf("%s: got %+v want %+v", w.District, a, w)
		}
	}
	if l := byD[w1.District].CityLag; l == nil || *l != 7 || byD[w2.District].CityLag != nil {
		t.Fatal("city lag")
	}
	whys := map[string]string{}
	for _, m := range res.Missing {
		whys[m.District] = m.Why
	}
	if len(whys) != 3 || !strings.Contains(whys[w3.District], "no hub") || !strings.Contains(whys["absent"], "no hub") ||
		whys["garbage"] != "malformed answer" {
		t.Fatalf("missing %+v", res.Missing)
	}
	for _, h := range []*store.DB{h1, h2} {
		if n := auditCount(t, h, store.AuditCityFiguresAnswered, "city:officer-1"); n != 1 {
			t.Errorf("%d answer records at a hub, want 1", n)
		}
	}

	// A request with nobody to answer is not answered, and is audited.
	before := auditCount(t, h1, store.AuditCityFiguresRefused, "")
	if err := console.Publish(Subject(w1.District), requestBytes(func(*Request) {})); err != nil {
		t.Fatal(err)
	}
	console.Flush()
	for deadline := time.Now().Add(5 * time.Second); auditCount(t, h1, store.AuditCityFiguresRefused, "") == before; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("a request without a reply subject was not audited")
		}
	}
	if n := auditCount(t, h1, store.AuditCityFiguresAnswered, ""); n != 1 {
		t.Fatalf("%d answer records", n)
	}
}

// A hub wired with another district's name answers nothing.
func TestCityStats_ServeOwnDistrictOnly(t *testing.T) {
	db, _ := figurestest.Hub(t, "雁塔区", 1)
	if err := Serve(context.Background(), nil, db, "other", nil); err == nil || !strings.Contains(err.Error(), "not other") {
		t.Fatalf("served another district: %v", err)
	}
}
