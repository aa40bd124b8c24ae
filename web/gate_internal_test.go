package web

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"passgate/check"
	"passgate/district"
	"passgate/store"
)

// newGateServer is a Server over a real store, for driving the feed's
// handler directly.
func newGateServer(t testing.TB) *Server {
	t.Helper()
	ctx := t.Context()
	db, err := store.Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := district.Setup(ctx, db, district.SetupOptions{Name: "雁塔区", AdminPassword: "admin-password"}); err != nil {
		db.Close()
		t.Fatal(err)
	}
	c, err := check.New(ctx, check.Config{DB: db})
	if err != nil {
		db.Close()
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	s := New(Config{DB: db, Checker: c, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	t.Cleanup(func() {
		s.CloseEvents()
		db.Close()
	})
	return s
}

// syncRecorder is a ResponseRecorder safe to read while the handler
// writes.
type syncRecorder struct {
	mu sync.Mutex
	*httptest.ResponseRecorder
}

func (r *syncRecorder) Write(b []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.ResponseRecorder.Write(b)
}

func (r *syncRecorder) WriteString(s string) (int, error) { return r.Write([]byte(s)) }

func (r *syncRecorder) Flush() {}

func (r *syncRecorder) body() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.ResponseRecorder.Body.String()
}

// serveEvents runs the feed handler for the admin's new login session
// until ctx ends and reports on the returned channel when it has
// returned.
func serveEvents(s *Server, ctx context.Context, lastID string) (*syncRecorder, <-chan struct{}) {
	rec := &syncRecorder{ResponseRecorder: httptest.NewRecorder()}
	req := httptest.NewRequestWithContext(ctx, "GET", "/gate/events", nil)
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	u, err := s.db.FindUserByName(ctx, "admin")
	if err != nil {
		panic(err)
	}
	token, err := s.db.CreateSession(ctx, u.ID, time.Hour)
	if err != nil {
		panic(err)
	}
	req.AddCookie(&http.Cookie{Name: SessionCookie, Value: token})
	req = req.WithContext(withUser(req.Context(), u))
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.handleGateEvents(rec, req)
	}()
	return rec, done
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second) // generous: a loaded machine is slow, a failure still ends
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestGateEventsHandlerReturns(t *testing.T) {
	// Not parallel: it counts the goroutines of the whole process, which
	// other tests' goroutines would change.
	t.Run("ClientGoesAway", func(t *testing.T) {
		s := newGateServer(t)
		s.startEvents() // the feed's own goroutine lives as long as the server
		before := runtime.NumGoroutine()
		ctx, cancel := context.WithCancel(t.Context())
		_, done := serveEvents(s, ctx, "")
		waitFor(t, "the screen to subscribe", func() bool { return s.events.clientCount() == 1 })
		cancel()
		select {
		case <-done:
		case <-time.After(time.Second):
			t.Fatal("handler still running after the client went away")
		}
		if n := s.events.clientCount(); n != 0 {
			t.Fatalf("%d clients left registered", n)
		}
		waitFor(t, "goroutines to end", func() bool { return runtime.NumGoroutine() <= before })
	})
	t.Run("ServerShutsDown", func(t *testing.T) {
		s := newGateServer(t)
		_, done := serveEvents(s, t.Context(), "")
		waitFor(t, "the screen to subscribe", func() bool { return s.events.clientCount() == 1 })
		s.CloseEvents()
		select {
		case <-done:
		case <-time.After(time.Second):
			t.Fatal("handler still running after CloseEvents")
		}
		// A screen connecting after shutdown is refused, not parked.
		rec, done2 := serveEvents(s, t.Context(), "")
		select {
		case <-done2:
		case <-time.After(time.Second):
			t.Fatal("handler parked after CloseEvents")
		}
		if rec.Code != http.StatusServiceUnavailable {
			t.Fatalf("status after shutdown %d", rec.Code)
		}
	})
	t.Run("Heartbeat", func(t *testing.T) {
		s := newGateServer(t)
		s.events.heartbeat = 20 * time.Millisecond
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		rec, _ := serveEvents(s, ctx, "")
		waitFor(t, "a heartbeat", func() bool { return strings.Contains(rec.body(), ": heartbeat\n\n") })
		waitFor(t, "a second status", func() bool { return strings.Count(rec.body(), "event: status\ndata: ") >= 2 })
		if !strings.HasPrefix(rec.body(), "retry: ") {
			t.Errorf("stream starts %q", rec.body())
		}
	})
}

func TestEventHubSlowClientDropped(t *testing.T) {
	// Not parallel: it needs its fast reader to keep up,
	// which other tests' load would delay.
	h := newEventHub()
	slow := &eventClient{}
	if _, ok := h.subscribe(0, slow); !ok {
		t.Fatal("subscribe refused")
	}
	fast := &eventClient{}
	h.subscribe(0, fast)
	got := 0
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for range fast.ch {
			got++
		}
	}()
	// Publishing never blocks, however far behind the slow one is.
	finished := make(chan struct{})
	go func() {
		for i := 0; i < eventClientQueue*3; i++ {
			h.publish(event{brief: []byte(`{}`)})
			time.Sleep(100 * time.Microsecond) // let the fast reader keep up
		}
		close(finished)
	}()
	select {
	case <-finished:
	case <-time.After(5 * time.Second):
		t.Fatal("publish blocked on a slow client")
	}
	if n := h.clientCount(); n != 1 {
		t.Fatalf("%d clients, want the slow one dropped", n)
	}
	n := 0
	for range slow.ch { // closed after what it had queued
		n++
	}
	if n != eventClientQueue {
		t.Errorf("slow client had %d queued, want %d", n, eventClientQueue)
	}
	h.close()
	wg.Wait()
	if got != eventClientQueue*3 {
		t.Errorf("fast client got %d of %d", got, eventClientQueue*3)
	}
}

func TestEventHubReplayBounds(t *testing.T) {
	t.Parallel()
	h := newEventHub()
	mine := &eventClient{owner: "s1/screen-a"}
	for i := 0; i < eventRing+10; i++ {
		h.publish(event{owner: mine.owner, brief: []byte(`{}`)})
	}
	replay, _ := h.subscribe(1, mine)
	if len(replay) != eventRing || replay[0].id != 11 || replay[len(replay)-1].id != eventRing+10 {
		t.Fatalf("replay of %d from %d to %d", len(replay), replay[0].id, replay[len(replay)-1].id)
	}
	if r, _ := h.subscribe(eventRing+10, &eventClient{owner: mine.owner}); len(r) != 0 {
		t.Errorf("up-to-date screen replayed %d", len(r))
	}
	if r, _ := h.subscribe(10_000, &eventClient{owner: mine.owner}); len(r) != 0 {
		t.Errorf("id from before a restart replayed %d", len(r))
	}
	if r, _ := h.subscribe(eventRing+8, &eventClient{owner: mine.owner}); len(r) != 2 || r[0].id != eventRing+9 {
		t.Errorf("replay after %d: %d events", eventRing+8, len(r))
	}
}

// TestEventHubReplaysOnlyOwnResults: a screen reconnecting with a small
// Last-Event-ID gets its own checks and its entrance's inputs' back,
// never anybody else's.
func TestEventHubReplaysOnlyOwnResults(t *testing.T) {
	t.Parallel()
	h := newEventHub()
	evs := []event{
		{owner: "s1/a", brief: []byte(`"own"`)},
		{owner: "s1/b", brief: []byte(`"same session, other screen"`)},
		{owner: "s2/a", brief: []byte(`"other session, same screen id"`)},
		{entrance: "北门", assigned: true, full: []byte(`"north input"`), brief: []byte(`"north brief"`)},
		{entrance: "南门", assigned: true, full: []byte(`"south input"`), brief: []byte(`"south brief"`)},
		{entrance: "北门", owner: "s3/c", brief: []byte(`"another north screen"`)},
		{brief: []byte(`"unassigned input"`)},
	}
	for _, ev := range evs {
		h.publish(ev)
	}
	cl := &eventClient{owner: "s1/a", entrance: "北门"}
	replay, _ := h.subscribe(0, cl)
	if len(replay) != 0 {
		t.Fatalf("a fresh screen replayed %d", len(replay))
	}
	cl = &eventClient{owner: "s1/a", entrance: "北门"}
	replay, _ = h.subscribe(1, cl)
	// id 1 was seen; of the rest only the north input is this screen's.
	if len(replay) != 1 || string(replay[0].data(cl)) != `"north input"` {
		var got []string
		for _, ev := range replay {
			got = append(got, string(ev.data(cl)))
		}
		t.Fatalf("replayed %q", got)
	}
	stranger := &eventClient{owner: "s9/z"}
	if r, _ := h.subscribe(1, stranger); len(r) != 0 {
		t.Fatalf("a stranger replayed %d", len(r))
	}
	for _, ev := range evs[1:] {
		if string(ev.data(stranger)) == string(ev.full) && ev.full != nil {
			t.Errorf("stranger sent the full form %s", ev.full)
		}
	}
}

// TestGateEventsEndOnShutdown: a real http.Server's Shutdown ends the
// open streams at once instead of waiting out its grace period.
func TestGateEventsEndOnShutdown(t *testing.T) {
	// Not parallel: it bounds how long a shutdown waits,
	// which other tests' load would delay.
	s := newGateServer(t)
	u, err := s.db.FindUserByName(t.Context(), "admin")
	if err != nil {
		t.Fatal(err)
	}
	token, err := s.db.CreateSession(t.Context(), u.ID, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.handleGateEvents(w, r.WithContext(withUser(r.Context(), u)))
	}))
	t.Cleanup(srv.Close)
	req, _ := http.NewRequest("GET", srv.URL, nil)
	req.AddCookie(&http.Cookie{Name: SessionCookie, Value: token})
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	waitFor(t, "the screen to subscribe", func() bool { return s.events.clientCount() == 1 })
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	start := time.Now()
	if err := srv.Config.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("shutdown waited %v for the stream", d)
	}
	if _, err := io.ReadAll(resp.Body); err != nil {
		t.Logf("stream ended with %v", err)
	}
}

// FuzzRequestScreen: whatever a page sends as its screen and entrance,
// an accepted screen is bound to the request's session, and its origin
// reads back as it was made (no entrance can forge the separator).
func FuzzRequestScreen(f *testing.F) {
	for _, c := range [][2]string{
		{"AAAAAAAAAAAAAAAAAAAAAA", "北门"}, {"", ""}, {"abc", ""}, {"AAAAAAAAAAAAAAAAAAAAAA", "北\n门"},
		{"AAAAAAAAAAAAAAAAAAAAA\n", "x"}, {"AAAAAAAAAAAAAAAAAAAAAA/", ""}, {"AAAAAAAAAAAAAAAAAAAAAA", " x"},
	} {
		f.Add(c[0], c[1])
	}
	s := newGateServer(f)
	f.Fuzz(func(t *testing.T, screen, entrance string) {
		req := httptest.NewRequest("POST", "/gate/check", nil)
		req.AddCookie(&http.Cookie{Name: SessionCookie, Value: "token"})
		rec := httptest.NewRecorder()
		g, ok := s.requestScreen(rec, req, screen, entrance)
		if !ok {
			if rec.Code != http.StatusBadRequest {
				t.Fatalf("refused with %d", rec.Code)
			}
			return
		}
		if screen != "" && g.owner != sessionKey("token")+"/"+screen {
			t.Fatalf("owner %q for screen %q", g.owner, screen)
		}
		if screen == "" && g.owner != "" {
			t.Fatalf("owner %q without a screen", g.owner)
		}
		if g.owner != "" {
			o, e := parseOrigin(g.origin())
			if o != g.owner || e != entrance {
				t.Fatalf("origin of %q %q reads back as %q %q", g.owner, entrance, o, e)
			}
		}
	})
}
