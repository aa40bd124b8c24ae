package districtsync

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	fp "path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"passgate/check"
	"passgate/district"
	"passgate/pass"
	"passgate/store"
	"passgate/tlsca"
)

// pushHub is a hub serving the sync API over HTTPS on loopback from its
// local CA, as `passgate serve --tls-addr` does. It can be stopped and
// started again on the same address (a partition), and its push
// handler wrapped (a lost answer).
type pushHub struct {
	dir  string
	db   *store.DB
	api  *Server
	ca   []byte
	pin  []byte
	cfg  *tls.Config
	addr string
	wrap func(http.Handler) http.Handler
	// readTimeout, when set, is the server's ReadTimeout (and twice it
	// its WriteTimeout), as a hub's listener has them.
	readTimeout time.Duration

	mu  sync.Mutex
	srv *http.Server
}

func newPushHub(tb testing.TB) *pushHub {
	tb.Helper()
	ctx := tb.Context()
	h := &pushHub{dir: tb.TempDir()}
	var err error
	if h.db, err = store.Open(ctx, h.dir); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { h.db.Close() })
	if _, err := district.Setup(ctx, h.db, district.SetupOptions{Name: "Push District", Appliance: "hub", AdminPassword: "correct horse battery"}); err != nil {
		tb.Fatal(err)
	}
	auth, err := tlsca.LoadOrCreate(h.dir, []string{"127.0.0.1"}, time.Now())
	if err != nil {
		tb.Fatal(err)
	}
	h.ca = auth.CACertDER()
	if h.pin, err = PinOfDER(h.ca); err != nil {
		tb.Fatal(err)
	}
	h.cfg = auth.TLSConfig()
	get := h.cfg.GetCertificate
	h.cfg.GetCertificate = func(hi *tls.ClientHelloInfo) (*tls.Certificate, error) {
		c, err := get(hi)
		if err != nil {
			return nil, err
		}
		cc := *c
		cc.Certificate = append(append([][]byte(nil), c.Certificate...), h.ca)
		return &cc, nil
	}
	h.api = NewServer(ServerConfig{DB: h.db, HubCA: h.ca})
	h.start(tb)
	tb.Cleanup(h.stop)
	return h
}

// start serves on h.addr (a fresh port the first time).
func (h *pushHub) start(tb testing.TB) {
	tb.Helper()
	addr := h.addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	var ln net.Listener
	var err error
	for range 50 { // the port of a stopped hub may take a moment to free
		if ln, err = net.Listen("tcp", addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		tb.Fatal(err)
	}
	h.addr = ln.Addr().String()
	var handler http.Handler = h.api.Handler()
	if h.wrap != nil {
		handler = h.wrap(handler)
	}
	srv := &http.Server{Handler: handler, TLSConfig: h.cfg.Clone(), ErrorLog: log.New(io.Discard, "", 0),
		ReadHeaderTimeout: h.readTimeout, ReadTimeout: h.readTimeout, WriteTimeout: 2 * h.readTimeout}
	h.mu.Lock()
	h.srv = srv
	h.mu.Unlock()
	go func() { _ = srv.ServeTLS(ln, "", "") }()
}

// stop closes the listener and every connection: the hub is gone.
func (h *pushHub) stop() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.srv != nil {
		h.srv.Close()
		h.srv = nil
	}
}

func (h *pushHub) url() string { return "https://" + h.addr }

// enrol enrols a fresh appliance online and returns its store and a
// client for the hub.
func (h *pushHub) enrol(tb testing.TB, name string, mayIssue bool) (*store.DB, *Client) {
	tb.Helper()
	return h.enrolIn(tb, name, mayIssue, tb.TempDir())
}

// enrolIn is enrol into the data directory dir.
func (h *pushHub) enrolIn(tb testing.TB, name string, mayIssue bool, dir string) (*store.DB, *Client) {
	tb.Helper()
	ctx := tb.Context()
	code, err := NewCode(h.pin)
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := h.db.AddAppliance(ctx, name, store.RoleOf(mayIssue), code.Hash(), time.Now().Add(time.Hour), "test"); err != nil {
		tb.Fatal(err)
	}
	db, err := store.Open(ctx, dir)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	if _, err := EnrolOnline(ctx, db, h.url(), code, "appliance admin pw"); err != nil {
		tb.Fatalf("enrol %s: %v", name, err)
	}
	return db, newPushClient(tb, db)
}

func newPushClient(tb testing.TB, db *store.DB) *Client {
	tb.Helper()
	info, err := db.SyncHubInfo(tb.Context())
	if err != nil {
		tb.Fatal(err)
	}
	c, err := NewClientCA(info.URL, info.HubCA, info.Token)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(c.CloseIdle)
	return c
}

// drain pushes until the appliance's backlog is empty, as the Syncer
// does (without its waits), and returns the records pushed.
func drain(tb testing.TB, db *store.DB, c *Client) int {
	tb.Helper()
	total := 0
	for range 10000 {
		n, backlog, err := PushOnceLog(tb.Context(), db, c, nil)
		if err != nil {
			tb.Fatal(err)
		}
		total += n
		if backlog == 0 {
			if b, _ := db.SyncBacklog(tb.Context()); b == 0 {
				return total
			}
		}
	}
	tb.Fatal("backlog never drained")
	return 0
}

// logTestScans logs n scans at db, each with its own pass and subject,
// tagged with run in the source, and returns them as logged.
func logTestScans(tb testing.TB, db *store.DB, run string, n int) []*store.Scan {
	tb.Helper()
	out := make([]*store.Scan, n)
	var wg sync.WaitGroup
	var failed atomic.Value
	// Concurrent callers share group commits; ids still follow the
	// order the writer took them in, which is what the hub must keep.
	const workers = 8
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += workers {
				s := &store.Scan{Source: run, Decision: "allow", Reason: "ok"}
				s.PassID[0], s.PassID[1], s.PassID[2] = byte(i), byte(i>>8), byte(i>>16)
				s.Subject[0], s.Subject[1] = byte(i), byte(i>>8)
				s.KID[0] = 0x42
				if i%5 == 0 {
					s.Decision, s.Reason, s.PassID, s.Subject, s.KID = "deny", "not_a_pass", pass.ID{}, pass.Subject{}, pass.KeyID{}
				}
				if err := db.LogScan(tb.Context(), s); err != nil {
					failed.Store(err)
					return
				}
				out[i] = s
			}
		}()
	}
	wg.Wait()
	if err, _ := failed.Load().(error); err != nil {
		tb.Fatal(err)
	}
	return out
}

// appScans is every scan of the appliance's own log, oldest first.
func appScans(tb testing.TB, db *store.DB) []*store.Scan {
	tb.Helper()
	var all []*store.Scan
	after := int64(0)
	for {
		list, err := db.ScansAfter(tb.Context(), after, store.MaxScanLimit)
		if err != nil {
			tb.Fatal(err)
		}
		if len(list) == 0 {
			return all
		}
		all, after = append(all, list...), list[len(list)-1].ID
	}
}

// hubHolds lists the appliance's scans at the hub in stored order.
func hubHolds(tb testing.TB, db *store.DB, appliance string) []*store.Scan {
	tb.Helper()
	var all []*store.Scan
	after := int64(0)
	for {
		list, last, err := db.DistrictScans(tb.Context(), appliance, after, store.MaxScanLimit)
		if err != nil {
			tb.Fatal(err)
		}
		if len(list) == 0 {
			return all
		}
		all, after = append(all, list...), last
	}
}

// sameScans fails unless the hub holds exactly want, in order, with the
// same content.
func sameScans(tb testing.TB, got, want []*store.Scan) {
	tb.Helper()
	if len(got) != len(want) {
		tb.Fatalf("hub holds %d scans, want %d", len(got), len(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.ID != w.ID || !g.At.Equal(w.At) || g.Source != w.Source || g.Decision != w.Decision ||
			g.Reason != w.Reason || g.Repeat != w.Repeat || g.PassID != w.PassID || g.Subject != w.Subject || g.KID != w.KID {
			tb.Fatalf("scan %d at the hub = %+v, want %+v", i, g, w)
		}
	}
}

// dropFirst wraps a handler so that the first n requests to path are
// served (the hub commits) but their answers never reach the client:
// the connection is cut instead.
func dropFirst(path string, n int32, dropped *atomic.Int32) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == path && dropped.Load() < n {
				dropped.Add(1)
				next.ServeHTTP(httptest.NewRecorder(), r)
				panic(http.ErrAbortHandler) // closes the connection unanswered
			}
			next.ServeHTTP(w, r)
		})
	}
}

// statusCounter counts the answers of path by status.
type statusCounter struct {
	mu sync.Mutex
	n  map[int]int
}

func (s *statusCounter) wrap(path string) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			rw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
			next.ServeHTTP(rw, r)
			if r.URL.Path == path {
				s.mu.Lock()
				if s.n == nil {
					s.n = map[int]int{}
				}
				s.n[rw.status]++
				s.mu.Unlock()
			}
		})
	}
}

func (s *statusCounter) count(status int) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n[status]
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

// Unwrap lets http.ResponseController reach the connection.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

func TestPush_LostAcknowledgement(t *testing.T) {
	ctx := t.Context()
	h := newPushHub(t)
	var dropped atomic.Int32
	h.stop()
	h.wrap = dropFirst(PathPush, 2, &dropped)
	h.start(t)
	app, c := h.enrol(t, "gate-a", true)
	sent := logTestScans(t, app, "lost-ack", 3000)

	// Twice the hub stores the push and the answer is lost.
	for i := range 2 {
		if _, _, err := PushOnceLog(ctx, app, c, nil); err == nil {
			t.Fatalf("push %d: no error though its answer was cut", i)
		}
	}
	if dropped.Load() != 2 {
		t.Fatalf("%d answers dropped, want 2", dropped.Load())
	}
	// The first push carries the first push's size; the second the same
	// records again (a quick failure does not shrink the next push).
	if n := len(hubHolds(t, h.db, "gate-a")); n != pushFirstRecords {
		t.Fatalf("after the lost answers the hub holds %d scans, want %d (it committed)", n, pushFirstRecords)
	}
	st, err := app.FeedState(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.LastError == "" {
		t.Fatal("a failed push left no error in sync_state")
	}
	// The records are still the appliance's backlog: sent again, and
	// the hub stores none of them twice.
	if b, _ := app.SyncBacklog(ctx); b < 3000 {
		t.Fatalf("backlog = %d after unacknowledged pushes, want ≥ 3000", b)
	}
	drain(t, app, c)
	sameScans(t, hubHolds(t, h.db, "gate-a"), appScans(t, app))
	if len(sent) != 3000 {
		t.Fatal("test setup")
	}
	// Events (the enrolment's audit records) also arrived once each.
	events, _, err := h.db.DistrictEvents(ctx, "gate-a", 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int64]bool{}
	for _, e := range events {
		if seen[e.Seq] {
			t.Fatalf("event %d stored twice", e.Seq)
		}
		seen[e.Seq] = true
	}
	if len(events) == 0 {
		t.Fatal("no events at the hub")
	}
	st, _ = app.FeedState(ctx)
	if st.LastError != "" {
		t.Fatalf("last error %q not cleared by a successful push", st.LastError)
	}
}

func TestPush_GapRecovered(t *testing.T) {
	h := newPushHub(t)
	var statuses statusCounter
	h.stop()
	h.wrap = statuses.wrap(PathPush)
	h.start(t)
	app, c := h.enrol(t, "gate-a", false)
	logTestScans(t, app, "before backup", 300)
	drain(t, app, c)

	// The hub is backed up, takes more of gate-a's records, and is then
	// restored from the backup: it has lost records the appliance counts
	// as acknowledged.
	backup := t.TempDir()
	h.restart(t, func() { copyDB(t, h.dir, backup) })
	logTestScans(t, app, "lost at the hub", 500)
	drain(t, app, c)
	h.restart(t, func() { copyDB(t, backup, h.dir) })
	if n := len(hubHolds(t, h.db, "gate-a")); n != 300 {
		t.Fatalf("restored hub holds %d scans, want 300", n)
	}

	logTestScans(t, app, "after restore", 200)
	drain(t, app, c)
	if statuses.count(http.StatusConflict) == 0 {
		t.Fatal("the hub never answered 409 gap")
	}
	sameScans(t, hubHolds(t, h.db, "gate-a"), appScans(t, app))
}

// restart stops the hub, closes its store, runs between (a backup or a
// restore of its files), then opens and serves it again.
func (h *pushHub) restart(tb testing.TB, between func()) {
	tb.Helper()
	h.stop()
	if err := h.db.Close(); err != nil {
		tb.Fatal(err)
	}
	between()
	db, err := store.Open(tb.Context(), h.dir)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	h.db = db
	log := h.api.log
	h.api = NewServer(ServerConfig{DB: db, Log: log, HubCA: h.ca})
	h.start(tb)
}

// copyDB copies the database file of a closed store (Close checkpoints
// the WAL into it) from one data directory to another.
func copyDB(tb testing.TB, from, to string) {
	tb.Helper()
	b, err := os.ReadFile(fp.Join(from, store.FileName))
	if err != nil {
		tb.Fatal(err)
	}
	for _, sfx := range []string{"-wal", "-shm"} {
		if err := os.Remove(fp.Join(to, store.FileName+sfx)); err != nil && !errors.Is(err, os.ErrNotExist) {
			tb.Fatal(err)
		}
	}
	if err := os.WriteFile(fp.Join(to, store.FileName), b, 0o600); err != nil {
		tb.Fatal(err)
	}
}

// TestPush_Partition cuts the hub off while 10,000 scans are checked at
// the appliance: checking keeps its speed, and once the hub is back it
// holds exactly those scans, once each, in the appliance's order.
func TestPush_Partition(t *testing.T) {
	if testing.Short() {
		t.Skip("checks 12,000 passes")
	}
	ctx := t.Context()
	h := newPushHub(t)
	app, c := h.enrol(t, "gate-a", true)
	checker, err := check.New(ctx, check.Config{DB: app})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(checker.Close)
	const people = 50
	payloads := make([]string, people)
	for i := range payloads {
		iss, err := district.Issue(ctx, app, district.IssueRequest{Name: "王五", IDNumber: fmt.Sprintf("E%07d", i),
			TestedAt: time.Now().Add(-time.Hour), Actor: "issuer"})
		if err != nil {
			t.Fatal(err)
		}
		payloads[i] = iss.Text
	}
	if err := checker.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	check := func(n int) (perSec float64) { return checkAll(t, ctx, checker, payloads, n) }

	// The sync loop as the Syncer runs it: push while there is a
	// backlog, back off on errors.
	loopErrs, stopLoop := runPushLoop(ctx, app, c)
	defer stopLoop()

	connected := check(2000)
	h.stop()
	partitioned := check(10000)
	t.Logf("checks/s: %.0f connected, %.0f with the hub unreachable", connected, partitioned)
	if partitioned < connected/2 {
		t.Errorf("checking slowed from %.0f/s to %.0f/s while the hub was unreachable", connected, partitioned)
	}
	if loopErrs.Load() == 0 {
		t.Fatal("the push loop never failed: the hub was not cut off")
	}
	before := len(hubHolds(t, h.db, "gate-a"))
	if before > 2000 {
		t.Fatalf("hub holds %d scans while cut off after 2,000", before)
	}
	h.start(t)
	deadline := time.Now().Add(60 * time.Second)
	for {
		if b, _ := app.SyncBacklog(ctx); b == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("backlog not drained within 60 s of the hub's return")
		}
		time.Sleep(50 * time.Millisecond)
	}
	all := appScans(t, app)
	if len(all) != 12000 {
		t.Fatalf("appliance logged %d scans, want 12,000", len(all))
	}
	sameScans(t, hubHolds(t, h.db, "gate-a"), all)
}

// checkAll checks n of the payloads from 8 workers, each allowed, and
// returns the checks per second.
func checkAll(t *testing.T, ctx context.Context, checker *check.Checker, payloads []string, n int) (perSec float64) {
	people := len(payloads)
	var wg sync.WaitGroup
	var failed atomic.Value
	start := time.Now()
	const workers = 8
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += workers {
				d, err := checker.Check(ctx, "gate-1", payloads[i%people])
				if err != nil {
					failed.Store(err)
					return
				}
				if !d.Allowed() {
					failed.Store(fmt.Errorf("check %d: %s", i, d.Reason))
					return
				}
			}
		}()
	}
	wg.Wait()
	if err, _ := failed.Load().(error); err != nil {
		t.Fatal(err)
	}
	return float64(n) / time.Since(start).Seconds()
}

// runPushLoop pushes as the Syncer does, while there is a backlog, and
// backs off on errors, counting them, until stop.
func runPushLoop(ctx context.Context, app *store.DB, c *Client) (loopErrs *atomic.Int64, stop func()) {
	loopCtx, stopLoop := context.WithCancel(ctx)
	loopErrs = new(atomic.Int64)
	loopDone := make(chan struct{})
	go func() {
		defer close(loopDone)
		wait := 10 * time.Millisecond
		for loopCtx.Err() == nil {
			_, backlog, err := PushOnceLog(loopCtx, app, c, nil)
			switch {
			case err != nil:
				loopErrs.Add(1)
				wait = min(2*wait, 500*time.Millisecond)
			case backlog > 0:
				wait = 0
			default:
				wait = 50 * time.Millisecond
			}
			select {
			case <-loopCtx.Done():
			case <-time.After(wait):
			}
		}
	}()
	return loopErrs, func() { stopLoop(); <-loopDone }
}

// TestPush_CrashMidPush closes the appliance's store while pushes are in
// flight and reopens it (a new epoch), repeatedly, while the hub's
// ingest is also interrupted: no record is lost or stored twice.
func TestPush_CrashMidPush(t *testing.T) {
	ctx := t.Context()
	h := newPushHub(t)
	// Every third push is cut after the hub stored it, every fifth is
	// cancelled while the hub ingests (its transaction rolls back).
	var n atomic.Int32
	h.stop()
	h.wrap = func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != PathPush {
				next.ServeHTTP(w, r)
				return
			}
			switch k := n.Add(1); {
			case k%5 == 0:
				cctx, cancel := context.WithCancel(r.Context())
				defer cancel()
				time.AfterFunc(time.Duration(k%4)*time.Millisecond, cancel)
				next.ServeHTTP(httptest.NewRecorder(), r.WithContext(cctx))
				panic(http.ErrAbortHandler)
			case k%3 == 0:
				next.ServeHTTP(httptest.NewRecorder(), r)
				panic(http.ErrAbortHandler)
			}
			next.ServeHTTP(w, r)
		})
	}
	h.start(t)
	app, c := h.enrol(t, "gate-a", false)
	dir := dataDir(app)
	for round := range 6 {
		logTestScans(t, app, fmt.Sprintf("round %d", round), 1500)
		// Push with a deadline that cuts some requests mid-way, then
		// close the store under it.
		pctx, cancel := context.WithTimeout(ctx, time.Duration(5+round*7)*time.Millisecond)
		for pctx.Err() == nil {
			_, _, _ = PushOnceLog(pctx, app, c, nil)
		}
		cancel()
		if err := app.Close(); err != nil {
			t.Fatal(err)
		}
		var err error
		if app, err = store.Open(ctx, dir); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { app.Close() })
	}
	for tries := 0; ; tries++ {
		_, backlog, err := PushOnceLog(ctx, app, c, nil)
		if err == nil && backlog == 0 {
			if b, _ := app.SyncBacklog(ctx); b == 0 {
				break
			}
		}
		if tries > 200 {
			t.Fatalf("not drained: %v", err)
		}
	}
	epochs, _ := app.SyncEpochs(ctx)
	if len(epochs) < 7 {
		t.Fatalf("%d epochs after 6 reopenings", len(epochs))
	}
	sameScans(t, hubHolds(t, h.db, "gate-a"), appScans(t, app))
}

func dataDir(db *store.DB) string {
	p := db.Path()
	return p[:len(p)-len(store.FileName)-1]
}

// TestPush_RestoreFromBackup restores an appliance from an online copy
// of its database: the hub keeps the records of both timelines.
func TestPush_RestoreFromBackup(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	h := newPushHub(t)
	app, c := h.enrol(t, "gate-a", false)
	dir := dataDir(app)
	first := logTestScans(t, app, "first", 300)
	drain(t, app, c)
	unpushed := logTestScans(t, app, "unpushed", 100)
	backup := t.TempDir()
	app.Close()
	copyDB(t, dir, backup)
	app, err := store.Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	second := logTestScans(t, app, "second", 250)
	drain(t, app, c)
	app.Close()

	// The copy goes back in place of the file.
	copyDB(t, backup, dir)
	app, err = store.Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { app.Close() })
	third := logTestScans(t, app, "third", 200)
	reused := 0
	secondIDs := map[int64]bool{}
	for _, s := range second {
		secondIDs[s.ID] = true
	}
	for _, s := range third {
		if secondIDs[s.ID] {
			reused++
		}
	}
	if reused != len(third) {
		t.Fatalf("test assumption: the restored copy reuses ids (%d of %d do)", reused, len(third))
	}
	drain(t, app, c)

	got := hubHolds(t, h.db, "gate-a")
	want := len(first) + len(unpushed) + len(second) + len(third)
	if len(got) != want {
		t.Fatalf("hub holds %d scans, want %d (both timelines)", len(got), want)
	}
	keys := map[string]bool{}
	for _, s := range got {
		k := fmt.Sprintf("%d %s", s.ID, s.Source)
		if keys[k] {
			t.Fatalf("%s stored twice", k)
		}
		keys[k] = true
	}
	for _, list := range [][]*store.Scan{first, unpushed, second, third} {
		for _, s := range list {
			if !keys[fmt.Sprintf("%d %s", s.ID, s.Source)] {
				t.Fatalf("scan %d of %q missing at the hub", s.ID, s.Source)
			}
		}
	}
}

// TestPush_ClockSkew pushes from an appliance whose clock is 5 hours
// behind: the hub records and flags the skew, and the records keep the
// appliance's order though their times are off.
func TestPush_ClockSkew(t *testing.T) {
	ctx := t.Context()
	h := newPushHub(t)
	var logs bytes.Buffer
	var logMu sync.Mutex
	h.stop()
	h.api.log = slog.New(slog.NewTextHandler(&lockedWriter{w: &logs, mu: &logMu}, nil))
	h.start(t)
	app, c := h.enrol(t, "gate-late", false)
	app.Now = func() time.Time { return time.Now().Add(-5 * time.Hour) }
	logTestScans(t, app, "late", 400)
	drain(t, app, c)
	a, err := h.db.ApplianceByName(ctx, "gate-late")
	if err != nil {
		t.Fatal(err)
	}
	if d := a.ClockSkew + 5*time.Hour; d < -time.Minute || d > time.Minute {
		t.Fatalf("recorded skew %v, want about -5h", a.ClockSkew)
	}
	logMu.Lock()
	flagged := bytes.Contains(logs.Bytes(), []byte("appliance clock is off"))
	logMu.Unlock()
	if !flagged {
		t.Fatalf("skew not flagged in the hub's log:\n%s", logs.String())
	}
	got := hubHolds(t, h.db, "gate-late")
	sameScans(t, got, appScans(t, app))
	for i := 1; i < len(got); i++ {
		if got[i].ID <= got[i-1].ID {
			t.Fatalf("order lost at %d", i)
		}
	}
}

// lockedWriter serialises writes to w under mu.
type lockedWriter struct {
	w  io.Writer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// TestPush_Refused: a retired appliance is answered 403 "retired" and
// nothing is stored; a malformed push 400.
func TestPush_Refused(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	h := newPushHub(t)
	app, c := h.enrol(t, "gate-a", false)
	logTestScans(t, app, "x", 10)
	if _, err := h.db.RetireAppliance(ctx, "gate-a", "stolen", "admin"); err != nil {
		t.Fatal(err)
	}
	_, _, err := PushOnceLog(ctx, app, c, nil)
	var ce *CallError
	if !errors.As(err, &ce) || (ce.Status != http.StatusForbidden && ce.Status != http.StatusUnauthorized) {
		t.Fatalf("err = %v, want 403 or 401", err)
	}
	if n := len(hubHolds(t, h.db, "gate-a")); n != 0 {
		t.Fatalf("hub stored %d scans of a retired appliance", n)
	}
}

// TestIngestOf_Hostile feeds the push decoder malformed bodies: each is
// refused before anything reaches the store.
func TestIngestOf_Hostile(t *testing.T) {
	t.Parallel()
	epoch := make([]byte, 16)
	good := func() *PushRequest {
		return &PushRequest{Scans: &ScanBatch{Epoch: epoch, From: 1, Records: []ScanRecord{{Seq: 1, At: 1, Source: "g", Decision: "allow", Reason: "ok"}}}}
	}
	if _, err := ingestOf(good()); err != nil {
		t.Fatalf("good push refused: %v", err)
	}
	for name, mod := range map[string]func(*PushRequest){
		"short epoch":   func(p *PushRequest) { p.Scans.Epoch = epoch[:4] },
		"no epoch":      func(p *PushRequest) { p.Scans.Epoch = nil },
		"zero from":     func(p *PushRequest) { p.Scans.From = 0 },
		"before from":   func(p *PushRequest) { p.Scans.From = 2 },
		"no records":    func(p *PushRequest) { p.Scans.Records = nil },
		"pass id short": func(p *PushRequest) { p.Scans.Records[0].PassID = []byte{1, 2} },
		"subject long":  func(p *PushRequest) { p.Scans.Records[0].Subject = make([]byte, 17) },
		"kid long":      func(p *PushRequest) { p.Scans.Records[0].KID = make([]byte, 9) },
		"decision":      func(p *PushRequest) { p.Scans.Records[0].Decision = "ALLOW" },
		"empty reason":  func(p *PushRequest) { p.Scans.Records[0].Reason = "" },
		"long source":   func(p *PushRequest) { p.Scans.Records[0].Source = string(make([]byte, 200)) },
		"hole": func(p *PushRequest) {
			p.Scans.Records = append(p.Scans.Records, ScanRecord{Seq: 3, Source: "g", Decision: "deny", Reason: "x"})
		},
		"too many": func(p *PushRequest) {
			p.Scans.Records = make([]ScanRecord, MaxScanBatch+1)
			for i := range p.Scans.Records {
				p.Scans.Records[i] = ScanRecord{Seq: int64(i + 1), Source: "g", Decision: "deny", Reason: "x"}
			}
		},
		"event kind": func(p *PushRequest) {
			p.Events = &EventBatch{Epoch: epoch, From: 1, Records: []EventRecord{{Seq: 1, Kind: "x", Body: []byte(`{}`)}}}
		},
		"event body": func(p *PushRequest) {
			p.Events = &EventBatch{Epoch: epoch, From: 1, Records: []EventRecord{{Seq: 1, Kind: "audit", Body: []byte(`[]`)}}}
		},
		"event no body": func(p *PushRequest) {
			p.Events = &EventBatch{Epoch: epoch, From: 1, Records: []EventRecord{{Seq: 1, Kind: "audit"}}}
		},
		"event negative": func(p *PushRequest) {
			p.Events = &EventBatch{Epoch: epoch, From: -1, Records: []EventRecord{{Seq: -1, Kind: "audit", Body: []byte(`{}`)}}}
		},
	} {
		p := good()
		mod(p)
		if _, err := ingestOf(p); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	// Through the handler: malformed JSON and a bad push are 400, never
	// 500, and a wrong token 401.
	h := newPushHub(t)
	app, _ := h.enrol(t, "gate-a", false)
	info, _ := app.SyncHubInfo(t.Context())
	tok := encodeToken(info.Token)
	for _, body := range []any{json.RawMessage(`{"scans":{"epoch":"AAAA","from":1,"records":[{"q":1}]}}`), good(), map[string]any{"scans": "x"}} {
		w := doPlain(t, h.api.Handler(), PathPush, body, tok)
		if body, ok := body.(*PushRequest); ok && body != nil {
			if w.Code != http.StatusOK {
				t.Errorf("good push: %d %s", w.Code, w.Body)
			}
			continue
		}
		if w.Code != http.StatusBadRequest {
			t.Errorf("body %v: status %d, want 400", body, w.Code)
		}
	}
	if w := doPlain(t, h.api.Handler(), PathPush, good(), encodeToken(make([]byte, 32))); w.Code != http.StatusUnauthorized {
		t.Errorf("unknown token: %d", w.Code)
	}
}

// FuzzIngestOf: whatever the body, decoding and checking a push never
// panics, and what it accepts the store accepts too.
func FuzzIngestOf(f *testing.F) {
	f.Add([]byte(`{"now_ms":1,"scans":{"epoch":"AAAAAAAAAAAAAAAAAAAAAA==","from":1,"records":[{"q":1,"t":5,"s":"g","d":"allow","r":"ok"}]}}`))
	f.Add([]byte(`{"events":{"epoch":"AAAAAAAAAAAAAAAAAAAAAA==","from":3,"records":[{"q":3,"kind":"audit","t":1,"body":{"a":1}}]}}`))
	f.Add([]byte(`{"scans":{"epoch":"AAAAAAAAAAAAAAAAAAAAAA==","from":1,"records":[{"q":1,"d":"deny","r":"x","p":"AAAAAAAAAAAAAAAA"}]}}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var req PushRequest
		if err := readBody(bytes.NewReader(b), "", &req); err != nil {
			return
		}
		in, err := ingestOf(&req)
		if err != nil {
			return
		}
		if err := store.CheckScanRun(in.Scans); err != nil {
			t.Fatalf("accepted scans the store refuses: %v", err)
		}
		if err := store.CheckEventRun(in.Events); err != nil {
			t.Fatalf("accepted events the store refuses: %v", err)
		}
	})
}

// TestPush_Draining: an office put in draining learns it from its next
// online pull and issues no new passes, while its pushes are still
// taken.
func TestPush_Draining(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	h := newPushHub(t)
	app, c := h.enrol(t, "office-a", true)
	if _, err := h.db.DrainAppliance(ctx, "office-a", "admin"); err != nil {
		t.Fatal(err)
	}
	if _, err := PullOnce(ctx, app, c); err != nil {
		t.Fatal(err)
	}
	if _, err := district.Issue(ctx, app, district.IssueRequest{Name: "赵六", IDNumber: "P7654322", Actor: "desk"}); !errors.Is(err, store.ErrDraining) {
		t.Fatalf("issuing while draining: %v", err)
	}
	scans := logTestScans(t, app, "draining", 20)
	drain(t, app, c)
	if got := hubHolds(t, h.db, "office-a"); len(got) != len(scans) {
		t.Fatalf("hub holds %d scans of %d pushed while draining", len(got), len(scans))
	}
}
