package citystats

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"passgate/internal/figurestest"
	"passgate/store"
)

const testID = "0123456789abcdef0123456789abcdef"

func i64(n int64) *int64 { return &n }

func validAnswer() Answer {
	return Answer{V: 1, ID: testID, District: "d1", AtMS: 1_700_000_000_000, CountedToMS: 1_700_000_000_000 - 150_000,
		Scans5m: 3, ScansHour: 6, ScansToday: 8, Allows: 5, Denies: 3, Appliances: 3, AppliancesSeen: 2,
		OldestListS: i64(7200), MedianListS: i64(31), Revocations: 1, CityLag: i64(0)}
}

func answerBytes(f func(*Answer)) []byte {
	a := validAnswer()
	f(&a)
	b, _ := json.Marshal(a)
	return b
}

// Hostile answers: from another district, about another request, too
// big, malformed, or figures that cannot be: each is refused, so the
// district is named missing rather than its figures shown.
func TestParseAnswer(t *testing.T) {
	if _, err := ParseAnswer(answerBytes(func(*Answer) {}), "d1", testID); err != nil {
		t.Fatal(err)
	}
	if a, err := ParseAnswer([]byte(`{"v":1,"id":"`+testID+`","district":"d1","error":"the district could not answer"}`), "d1", testID); err != nil || a.Refusal() == "" {
		t.Fatalf("a refusal: %v %+v", err, a)
	}
	for name, b := range map[string][]byte{
		"empty":           nil,
		"not json":        []byte("<html>"),
		"array":           []byte("[]"),
		"other district":  answerBytes(func(a *Answer) { a.District = "d2" }),
		"other request":   answerBytes(func(a *Answer) { a.ID = strings.Repeat("0", 32) }),
		"version":         answerBytes(func(a *Answer) { a.V = 2 }),
		"negative":        answerBytes(func(a *Answer) { a.Revocations = -1 }),
		"absurd count":    answerBytes(func(a *Answer) { a.Revocations = maxCount + 1 }),
		"5m over hour":    answerBytes(func(a *Answer) { a.Scans5m = 7 }),
		"day adds up not": answerBytes(func(a *Answer) { a.ScansToday = 9 }),
		"seen over total": answerBytes(func(a *Answer) { a.AppliancesSeen = 4 }),
		"no ages":         answerBytes(func(a *Answer) { a.OldestListS, a.MedianListS = nil, nil }),
		"ages, no appliances": answerBytes(func(a *Answer) {
			a.Appliances, a.AppliancesSeen = 0, 0
		}),
		"median only":      answerBytes(func(a *Answer) { a.OldestListS = nil }),
		"median over":      answerBytes(func(a *Answer) { a.MedianListS = i64(7201) }),
		"negative median":  answerBytes(func(a *Answer) { a.MedianListS = i64(-1) }),
		"age of centuries": answerBytes(func(a *Answer) { a.OldestListS = i64(400 * 365 * 24 * 3600) }),
		"negative lag":     answerBytes(func(a *Answer) { a.CityLag = i64(-3) }),
		"no time":          answerBytes(func(a *Answer) { a.AtMS = 0 }),
		"counted after":    answerBytes(func(a *Answer) { a.CountedToMS = a.AtMS + 1 }),
		"far future":       answerBytes(func(a *Answer) { a.AtMS = 1 << 60 }),
		"long refusal":     answerBytes(func(a *Answer) { a.Error = strings.Repeat("x", 500) }),
		"unknown field":    []byte(`{"v":1,"id":"` + testID + `","district":"d1","name":"张三"}`),
		"trailing":         append(answerBytes(func(*Answer) {}), '1'),
		"oversized":        append(answerBytes(func(*Answer) {}), []byte(strings.Repeat(" ", MaxAnswer))...),
		"string count":     []byte(strings.Replace(string(answerBytes(func(*Answer) {})), `"scans_5m":3`, `"scans_5m":"3"`, 1)),
		"float count":      []byte(strings.Replace(string(answerBytes(func(*Answer) {})), `"scans_5m":3`, `"scans_5m":3.5`, 1)),
	} {
		if _, err := ParseAnswer(b, "d1", testID); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// FuzzParseAnswer: an accepted answer is from the district asked, about
// the request, and its figures consistent.
func FuzzParseAnswer(f *testing.F) {
	f.Add(answerBytes(func(*Answer) {}))
	f.Add([]byte(`{"v":1,"id":"` + testID + `","district":"d1","error":"x"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := ParseAnswer(b, "d1", testID)
		if err != nil {
			return
		}
		if a.District != "d1" || a.ID != testID || len(b) > MaxAnswer {
			t.Fatalf("accepted %+v", a)
		}
		if a.Error == "" && (a.Scans5m > a.ScansHour || a.Allows+a.Denies != a.ScansToday || a.AppliancesSeen > a.Appliances ||
			a.Scans5m < 0 || a.Revocations < 0 || (a.Appliances > 0) != (a.OldestListS != nil)) {
			t.Fatalf("accepted figures that cannot be: %+v", a)
		}
	})
}

func requestBytes(f func(*Request)) []byte {
	r := Request{V: 1, ID: testID, Asker: "officer-1"}
	f(&r)
	b, _ := json.Marshal(r)
	return b
}

// hostileRequests are requests no console makes.
func hostileRequests() map[string][]byte {
	return map[string][]byte{
		"empty":           nil,
		"not json":        []byte("110105194912310020"),
		"array":           []byte("[]"),
		"version":         requestBytes(func(r *Request) { r.V = 2 }),
		"no id":           requestBytes(func(r *Request) { r.ID = "" }),
		"upper id":        requestBytes(func(r *Request) { r.ID = strings.ToUpper(testID) }),
		"no asker":        requestBytes(func(r *Request) { r.Asker = "" }),
		"asker injection": requestBytes(func(r *Request) { r.Asker = "x\n{\"action\":\"x\"}" }),
		"long asker":      requestBytes(func(r *Request) { r.Asker = strings.Repeat("a", 65) }),
		"unknown field":   []byte(`{"v":1,"id":"` + testID + `","asker":"a","district":"d2"}`),
		"trailing":        append(requestBytes(func(*Request) {}), []byte(`{}`)...),
		"oversized":       append(requestBytes(func(*Request) {}), []byte(strings.Repeat(" ", MaxRequest))...),
	}
}

// Hostile requests: each is refused with a safe message naming nothing
// of it, audited at the hub, and answers no figure.
func TestAnswer_HostileRequests(t *testing.T) {
	db, want := figurestest.Hub(t, "雁塔区", 1)
	h := newHub(db, want.District, nil)
	cases := hostileRequests()
	for name, b := range cases {
		a := h.answer(context.Background(), b)
		if a.Error != "malformed request" || a.ScansToday != 0 || a.Revocations != 0 || a.Appliances != 0 {
			t.Errorf("%s: answered %+v", name, a)
		}
	}
	if n := auditCount(t, db, store.AuditCityFiguresRefused, ""); n != len(cases) {
		t.Fatalf("%d refusals audited, want %d", n, len(cases))
	}
	if n := auditCount(t, db, store.AuditCityFiguresAnswered, ""); n != 0 {
		t.Fatalf("a hostile request was answered (%d)", n)
	}
}

// FuzzParseRequest: an accepted request is within bounds and names an
// id and an asker fit for an audit record.
func FuzzParseRequest(f *testing.F) {
	f.Add(requestBytes(func(*Request) {}))
	for _, b := range hostileRequests() {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ParseRequest(b)
		if err != nil {
			return
		}
		if len(b) > MaxRequest || r.V != Version || len(r.ID) != 32 || strings.ContainsAny(r.Asker, " \n\"{}") || r.Asker == "" {
			t.Fatalf("accepted %q as %+v", b, r)
		}
	})
}

// The hub's figures are what it holds: the scans of the last whole 5
// minutes, of the hour and of the day, the appliances enrolled and those
// seen lately, how old their lists are, the revocations, and the city
// link's lag when known.
func TestAnswer_Figures(t *testing.T) {
	db, want := figurestest.Hub(t, "雁塔区", 2)
	lag, known := int64(0), false
	h := newHub(db, want.District, func() (int64, bool) { return lag, known })
	a := h.answer(context.Background(), requestBytes(func(*Request) {}))
	if a.Error != "" {
		t.Fatal(a.Error)
	}
	got := figurestest.Want{District: a.District, Scans5m: a.Scans5m, ScansHour: a.ScansHour, ScansToday: a.ScansToday,
		Allows: a.Allows, Denies: a.Denies, Appliances: a.Appliances, Seen: a.AppliancesSeen, OldestListS: *a.OldestListS,
		MedianListS: *a.MedianListS, Revocations: a.Revocations}
	if got != want {
		t.Fatalf("figures\n got %+v\nwant %+v", got, want)
	}
	if a.CityLag != nil {
		t.Fatal("a lag while the link is down")
	}
	if a.AtMS != figurestest.Now.UnixMilli() || a.CountedToMS != figurestest.Now.Truncate(5*time.Minute).UnixMilli() {
		t.Fatalf("times %d %d", a.AtMS, a.CountedToMS)
	}
	// What the hub sends, the console takes.
	b, _ := json.Marshal(a)
	if _, err := ParseAnswer(b, want.District, testID); err != nil {
		t.Fatal(err)
	}
	lag, known = 42, true
	if a := h.answer(context.Background(), requestBytes(func(*Request) {})); a.CityLag == nil || *a.CityLag != 42 {
		t.Fatalf("lag %v", a.CityLag)
	}
}

// A dashboard open all day asks every 30 s: the hub records the first
// answer to an officer at once, then at most one per AuditEvery, each
// counting the answers since the last, and on stopping the ones left.
func TestAnswer_AuditOncePerWindow(t *testing.T) {
	db, want := figurestest.Hub(t, "雁塔区", 1)
	h := newHub(db, want.District, nil)
	now := figurestest.Now
	db.Now = func() time.Time { return now }
	ask := func(asker string) {
		if a := h.answer(context.Background(), requestBytes(func(r *Request) { r.Asker = asker })); a.Error != "" {
			t.Fatal(a.Error)
		}
	}
	for range 20 { // 10 minutes of a page refreshing every 30 s
		ask("officer-1")
		now = now.Add(30 * time.Second)
	}
	ask("officer-2")
	ask("officer-1") // AuditEvery after the first: recorded, with the 19 between
	ask("officer-1")
	answered := func() (recs []map[string]any) {
		db.FindAudit(context.Background(), store.AuditFilter{}, func(r *store.AuditRecord) error {
			if r.Action == store.AuditCityFiguresAnswered {
				var d map[string]any
				json.Unmarshal([]byte(r.Detail), &d)
				d["actor"] = string(r.Actor)
				recs = append(recs, d)
			}
			return nil
		})
		return recs
	}
	recs := answered()
	if len(recs) != 3 || recs[0]["actor"] != "city:officer-1" || recs[0]["answers"] != 1.0 ||
		recs[1]["actor"] != "city:officer-2" || recs[2]["answers"] != 20.0 {
		t.Fatalf("records %v", recs)
	}
	h.flush(context.Background())
	recs = answered()
	if len(recs) != 4 || recs[3]["actor"] != "city:officer-1" || recs[3]["answers"] != 1.0 {
		t.Fatalf("after stopping: %v", recs)
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
