package citytrace

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"passgate/district"
	"passgate/pass"
	"passgate/store"
)

const person = "11010519491231002X"

// startEngine runs an in-process nats-server with the city's
// permissions: the city user alone publishes trace requests; each
// district hub user subscribes to its own trace subject and may answer
// only the requests it received.
func startEngine(t testing.TB, districts ...string) *server.Server {
	t.Helper()
	users := []*server.User{{Username: "city", Password: "city-pw", Permissions: &server.Permissions{
		Publish:   &server.SubjectPermission{Allow: []string{SubjectPrefix + ">"}},
		Subscribe: &server.SubjectPermission{Allow: []string{"_INBOX.>"}},
	}}}
	for _, d := range districts {
		users = append(users, &server.User{Username: d, Password: d + "-pw", Permissions: &server.Permissions{
			Publish:   &server.SubjectPermission{Allow: []string{"city." + d + ".>"}},
			Subscribe: &server.SubjectPermission{Allow: []string{Subject(d), "_INBOX.>"}},
			Response:  &server.ResponsePermission{MaxMsgs: 1, Expires: time.Minute},
		}})
	}
	s, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true, Users: users})
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server did not start")
	}
	t.Cleanup(s.Shutdown)
	return s
}

// connect connects as user; violations collects the engine's refusals.
func connect(t testing.TB, s *server.Server, user string, violations *atomic.Int32) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(s.ClientURL(), nats.UserInfo(user, user+"-pw"),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			if violations != nil && errors.Is(err, nats.ErrPermissionViolation) {
				violations.Add(1)
			}
		}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// hub is a district hub's data directory with the city key.
func hub(t testing.TB, name string) *store.DB {
	t.Helper()
	ctx := context.Background()
	db, err := store.Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := district.Setup(ctx, db, district.SetupOptions{Name: name}); err != nil {
		t.Fatal(err)
	}
	return db
}

func importKey(t testing.TB, db *store.DB, key []byte) {
	t.Helper()
	file, _ := pass.MarshalCityKey(key)
	if _, err := db.ImportCityPseudonymKey(context.Background(), file, pass.FormatCityKeyCheck(pass.CityKeyCheck(key)), "cli:admin"); err != nil {
		t.Fatal(err)
	}
}

func districtID(t testing.TB, db *store.DB) string {
	t.Helper()
	d, err := db.District(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return d.ID
}

func scan(t testing.TB, db *store.DB, at time.Time, source string, s pass.Subject) {
	t.Helper()
	if err := db.LogScan(context.Background(), &store.Scan{At: at, Source: source, Decision: "allow", Reason: "ok", Subject: s}); err != nil {
		t.Fatal(err)
	}
}

func auditCount(t testing.TB, db *store.DB, action string, actor store.Actor) int {
	t.Helper()
	n := 0
	if err := db.FindAudit(context.Background(), store.AuditFilter{}, func(r *store.AuditRecord) error {
		if r.Action == action && (actor == "" || r.Actor == actor) {
			n++
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return n
}

// serve runs Serve for district d until the test ends, and returns once
// the engine holds its subscription.
func serve(t testing.TB, srv *server.Server, nc *nats.Conn, db *store.DB, d string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	before := srv.NumSubscriptions()
	go func() { done <- Serve(ctx, nc, db, d) }()
	for deadline := time.Now().Add(5 * time.Second); srv.NumSubscriptions() == before; {
		if time.Now().After(deadline) {
			t.Fatal("the hub did not subscribe")
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
}

// A city trace asks every district at once: it finds the person's checks
// in both districts that answer, under the city subject in one and under
// the district subject of a pass issued before the other joined the
// city, merges their contacts, and names the district with no hub and
// the one that does not answer in time. Each hub audits what it answered.
func TestCityTrace_AcrossDistricts(t *testing.T) {
	ctx := context.Background()
	key := make([]byte, pass.CityKeyLen)
	rand.Read(key)
	h1, h2 := hub(t, "雁塔区"), hub(t, "碑林区")
	d1, d2 := districtID(t, h1), districtID(t, h2)

	// District 2 issued before joining the city; the person then came to
	// its desk, which carried them over and linked both subjects.
	old, err := district.Issue(ctx, h2, district.IssueRequest{Name: "张三明", IDNumber: person, TestedAt: time.Now().Add(-time.Hour), Actor: "desk"})
	if err != nil {
		t.Fatal(err)
	}
	importKey(t, h1, key)
	importKey(t, h2, key)
	if _, _, err := district.Register(ctx, h2, district.RegisterRequest{Name: "张三明", IDType: store.IDMainland, IDNumber: person, Actor: "desk"}); err != nil {
		t.Fatal(err)
	}
	city := pass.Pseudonym(key, person)
	var a, b pass.Subject
	a[0], b[0] = 1, 2
	t0 := time.Now().Add(-3 * time.Hour).Truncate(time.Millisecond)
	scan(t, h1, t0, "gate-east", city)
	scan(t, h1, t0.Add(time.Minute), "gate-east", a)
	scan(t, h2, t0.Add(time.Hour), "gate-north", old.Claims.Subject)
	scan(t, h2, t0.Add(time.Hour+2*time.Minute), "gate-north", a)
	scan(t, h2, t0.Add(time.Hour+3*time.Minute), "gate-north", b)

	srv := startEngine(t, d1, d2, "slow", "gone")
	serve(t, srv, connect(t, srv, d1, nil), h1, d1)
	serve(t, srv, connect(t, srv, d2, nil), h2, d2)
	// A hub that takes requests but never answers.
	slow := connect(t, srv, "slow", nil)
	if _, err := slow.Subscribe(Subject("slow"), func(*nats.Msg) {}); err != nil {
		t.Fatal(err)
	}
	slow.Flush()

	nc := connect(t, srv, "city", nil)
	start := time.Now()
	res, err := AskDistricts(ctx, nc, []string{d1, d2, "slow", "gone"}, Ask{Asker: "officer-1", Subjects: []pass.Subject{city},
		From: t0.Add(-time.Hour), To: t0.Add(5 * time.Hour), Window: 15 * time.Minute}, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 4*time.Second {
		t.Errorf("took %v: the districts were not asked at once under one deadline", took)
	}
	if len(res.Checks) != 2 || res.Checks[0].District != d1 || res.Checks[1].District != d2 {
		t.Fatalf("checks %+v", res.Checks)
	}
	if len(res.Answered) != 2 || res.Complete() || len(res.Missing) != 2 {
		t.Fatalf("answered %v missing %+v", res.Answered, res.Missing)
	}
	whys := map[string]string{}
	for _, m := range res.Missing {
		whys[m.District] = m.Why
	}
	if !strings.Contains(whys["gone"], "no hub") || !strings.Contains(whys["slow"], "in time") {
		t.Fatalf("missing %+v", res.Missing)
	}
	ah := hex.EncodeToString(a[:])
	if len(res.Contacts) != 2 || res.Contacts[0].Subject != ah || res.Contacts[0].Overlaps != 2 || len(res.Contacts[0].Districts) != 2 {
		t.Fatalf("contacts %+v", res.Contacts)
	}
	for _, h := range []*store.DB{h1, h2} {
		if n := auditCount(t, h, store.AuditTrace, "city:officer-1"); n != 1 {
			t.Errorf("%d trace records at a hub, want 1", n)
		}
	}
}

// A district hub's credentials cannot ask another district's hub: the
// engine refuses the publish, the other hub never sees it.
func TestCityTrace_HubCannotAskAnotherHub(t *testing.T) {
	key := make([]byte, pass.CityKeyLen)
	rand.Read(key)
	h2 := hub(t, "碑林区")
	d2 := districtID(t, h2)
	srv := startEngine(t, "d1", d2)
	serve(t, srv, connect(t, srv, d2, nil), h2, d2)
	var violations atomic.Int32
	rogue := connect(t, srv, "d1", &violations)
	res, err := AskDistricts(context.Background(), rogue, []string{d2}, Ask{Asker: "d1", Subjects: []pass.Subject{pass.Pseudonym(key, person)},
		From: time.Now().Add(-time.Hour), To: time.Now(), Window: 15 * time.Minute}, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Missing) != 1 || len(res.Answered) != 0 {
		t.Fatalf("a hub's request was answered: %+v", res)
	}
	deadline := time.Now().Add(2 * time.Second)
	for violations.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if violations.Load() == 0 {
		t.Fatal("the engine reported no permission violation")
	}
	if n := auditCount(t, h2, store.AuditTrace, ""); n != 0 {
		t.Fatalf("the other hub traced %d times", n)
	}
}

func validRequest() Request {
	s := make([]byte, 16)
	s[0] = 7
	now := time.Now().UnixMilli()
	return Request{V: 1, ID: strings.Repeat("ab", 16), Asker: "officer-1", Subjects: []string{hex.EncodeToString(s)},
		FromMS: now - 3600_000, ToMS: now, WindowMS: 15 * 60_000}
}

// Hostile requests: each is refused, answered with a safe error naming
// nothing of it, and audited at the hub.
func TestCityTrace_HostileRequests(t *testing.T) {
	h := hub(t, "雁塔区")
	d := districtID(t, h)
	mk := func(f func(*Request)) []byte {
		r := validRequest()
		f(&r)
		b, _ := json.Marshal(r)
		return b
	}
	zero := strings.Repeat("00", 16)
	cases := map[string][]byte{
		"empty":           nil,
		"not json":        []byte("110105194912310020"),
		"array":           []byte("[]"),
		"version":         mk(func(r *Request) { r.V = 2 }),
		"no id":           mk(func(r *Request) { r.ID = "" }),
		"upper id":        mk(func(r *Request) { r.ID = strings.Repeat("AB", 16) }),
		"asker injection": mk(func(r *Request) { r.Asker = "x\n{\"action\":\"x\"}" }),
		"no subject":      mk(func(r *Request) { r.Subjects = nil }),
		"zero subject":    mk(func(r *Request) { r.Subjects = []string{zero} }),
		"id number":       mk(func(r *Request) { r.Subjects = []string{person} }),
		"short subject":   mk(func(r *Request) { r.Subjects = []string{"abcd"} }),
		"twice":           mk(func(r *Request) { r.Subjects = append(r.Subjects, r.Subjects[0]) }),
		"many subjects": mk(func(r *Request) {
			for i := range 5 {
				r.Subjects = append(r.Subjects, strings.Repeat("1", 31)+string(rune('a'+i)))
			}
		}),
		"reversed range":  mk(func(r *Request) { r.FromMS, r.ToMS = r.ToMS, r.FromMS }),
		"year range":      mk(func(r *Request) { r.FromMS = r.ToMS - 400*24*3600_000 }),
		"negative":        mk(func(r *Request) { r.FromMS = -5 }),
		"huge":            mk(func(r *Request) { r.ToMS = 1 << 62 }),
		"zero window":     mk(func(r *Request) { r.WindowMS = 0 }),
		"week window":     mk(func(r *Request) { r.WindowMS = 7 * 24 * 3600_000 }),
		"unknown field":   append(mk(func(*Request) {})[:len(mk(func(*Request) {}))-1], []byte(`,"id_number":"1"}`)...),
		"trailing":        append(mk(func(*Request) {}), []byte(`{}`)...),
		"oversized":       append(mk(func(*Request) {}), []byte(strings.Repeat(" ", MaxRequest))...),
		"duplicate field": []byte(`{"v":1,"v":1}`),
	}
	for name, b := range cases {
		a := answer(context.Background(), h, d, b)
		if a.Error != "malformed request" || a.Checks != nil || strings.Contains(a.Error, person) {
			t.Errorf("%s: answered %+v", name, a)
		}
	}
	if n := auditCount(t, h, store.AuditCityTraceRefused, ""); n != len(cases) {
		t.Fatalf("%d refusals audited, want %d", n, len(cases))
	}
	if n := auditCount(t, h, store.AuditTrace, ""); n != 0 {
		t.Fatalf("a hostile request was traced (%d)", n)
	}
	if a := answer(context.Background(), h, d, mk(func(*Request) {})); a.Error != "" || a.ID != strings.Repeat("ab", 16) {
		t.Fatalf("the valid request: %+v", a)
	}
}

// FuzzParseRequest: whatever the bytes, an accepted request has 1 to
// MaxTraceSubjects distinct non-zero subjects and a valid range, and
// written again is accepted again.
func FuzzParseRequest(f *testing.F) {
	b, _ := json.Marshal(validRequest())
	f.Add(b)
	f.Add([]byte(`{"v":1}`))
	f.Add([]byte(`{"v":1,"subjects":["` + strings.Repeat("0", 32) + `"]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		q, err := ParseRequest(b)
		if err != nil {
			return
		}
		if len(q.Subjects) == 0 || len(q.Subjects) > store.MaxTraceSubjects || q.Subjects[0].IsZero() || !q.Trace.From.Before(q.Trace.To) {
			t.Fatalf("accepted %q as %+v", b, q)
		}
		if len(b) > MaxRequest {
			t.Fatalf("accepted %d bytes", len(b))
		}
	})
}

// A hub wired with another district's name answers nothing.
func TestCityTrace_ServeOwnDistrictOnly(t *testing.T) {
	h := hub(t, "雁塔区")
	srv := startEngine(t, "other")
	if err := Serve(context.Background(), connect(t, srv, "other", nil), h, "other"); err == nil || !strings.Contains(err.Error(), "not other") {
		t.Fatalf("served another district: %v", err)
	}
}

// A request with no reply subject is not traced, and is audited.
func TestCityTrace_NoReplySubject(t *testing.T) {
	h := hub(t, "雁塔区")
	d := districtID(t, h)
	srv := startEngine(t, d)
	serve(t, srv, connect(t, srv, d, nil), h, d)
	nc := connect(t, srv, "city", nil)
	b, _ := json.Marshal(validRequest())
	if err := nc.Publish(Subject(d), b); err != nil {
		t.Fatal(err)
	}
	nc.Flush()
	deadline := time.Now().Add(3 * time.Second)
	for auditCount(t, h, store.AuditCityTraceRefused, "") == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if auditCount(t, h, store.AuditCityTraceRefused, "") != 1 || auditCount(t, h, store.AuditTrace, "") != 0 {
		t.Fatal("a request without a reply subject was traced, or not audited")
	}
}
