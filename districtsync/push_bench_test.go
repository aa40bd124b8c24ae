package districtsync

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"passgate/check"
	"passgate/district"
	"passgate/pass"
	"passgate/store"
)

// countingBody counts the bytes of request bodies read by the hub: what
// crossed the wire, compressed, before TLS framing.
type countingBody struct {
	io.ReadCloser
	n *atomic.Int64
}

func (c countingBody) Read(p []byte) (int, error) {
	n, err := c.ReadCloser.Read(p)
	c.n.Add(int64(n))
	return n, err
}

func countBodies(path string, n *atomic.Int64) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == path {
				r.Body = countingBody{r.Body, n}
			}
			next.ServeHTTP(w, r)
		})
	}
}

// benchScanRecords makes n scan records from seq on: each a distinct
// random pass and subject (the worst case for compression), one issuer
// key, times 50 ms apart, one deny in five without identifiers.
func benchScanRecords(seq int64, n int, at time.Time) []ScanRecord {
	recs := make([]ScanRecord, n)
	kid := []byte{0x42, 1, 2, 3, 4, 5, 6, 7}
	for i := range recs {
		r := ScanRecord{Seq: seq + int64(i), At: at.Add(time.Duration(i) * 50 * time.Millisecond).UnixMilli(),
			Source: "gate-1", Decision: "allow", Reason: "ok"}
		if i%5 == 4 {
			r.Decision, r.Reason = "deny", "not_a_pass"
		} else {
			r.PassID, r.Subject, r.KID = make([]byte, 12), make([]byte, 16), kid
			rand.Read(r.PassID)
			rand.Read(r.Subject)
		}
		recs[i] = r
	}
	return recs
}

// BenchmarkPushHTTP measures the hub ingesting pushes of MaxScanBatch
// scans through HTTPS on loopback (the client's gzip JSON, the handler's
// decoding, checks and store), and the compressed bytes per record.
func BenchmarkPushHTTP(b *testing.B) {
	ctx := b.Context()
	h := newPushHub(b)
	var wire atomic.Int64
	h.stop()
	h.wrap = countBodies(PathPush, &wire)
	h.start(b)
	_, c := h.enrol(b, "gate-a", false)
	epoch := make([]byte, 16)
	rand.Read(epoch)
	// Requests are made before the clock starts: the appliance's side is
	// measured by TestPush_DrainBacklog.
	const batches = 8
	reqs := make([]*PushRequest, batches)
	seq := int64(1)
	for i := range reqs {
		reqs[i] = &PushRequest{Now: time.Now().UnixMilli(), Scans: &ScanBatch{Epoch: epoch, From: 1,
			Records: benchScanRecords(seq, MaxScanBatch, time.Now())}}
		seq += MaxScanBatch
	}
	wire.Store(0)
	records := 0
	start, cpu0 := time.Now(), cpuTime()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		req := reqs[i%batches]
		if i >= batches { // later rounds: renumber so the hub stores them
			for j := range req.Scans.Records {
				req.Scans.Records[j].Seq += batches * MaxScanBatch
			}
		}
		var resp PushResponse
		if err := c.Call(ctx, PathPush, req, &resp); err != nil {
			b.Fatal(err)
		}
		if resp.Scans == nil || resp.Scans.Mark != req.Scans.Records[len(req.Scans.Records)-1].Seq {
			b.Fatalf("mark = %+v", resp.Scans)
		}
		records += len(req.Scans.Records)
	}
	b.ReportMetric(float64(records)/time.Since(start).Seconds(), "records/s")
	b.ReportMetric(float64(records)/(cpuTime()-cpu0).Seconds(), "records/cpu-s")
	b.ReportMetric(float64(wire.Load())/float64(records), "wire-B/record")
}

// BenchmarkIngestHTTP measures the hub alone ingesting pushes of
// MaxScanBatch scans over HTTPS on loopback: the bodies are compressed
// before the clock runs (the appliance's work), so what is timed is the
// hub reading, decompressing, decoding, checking and storing them.
func BenchmarkIngestHTTP(b *testing.B) {
	h := newPushHub(b)
	app, _ := h.enrol(b, "gate-a", false)
	info, err := app.SyncHubInfo(b.Context())
	if err != nil {
		b.Fatal(err)
	}
	hc := &http.Client{Transport: &http.Transport{
		// The test trusts its own loopback hub; pinning is the client's
		// business and measured by BenchmarkPushHTTP.
		TLSClientConfig:    &tls.Config{InsecureSkipVerify: true},
		DisableCompression: true,
	}}
	defer hc.CloseIdleConnections()
	epoch := make([]byte, 16)
	rand.Read(epoch)
	body := func(seq int64) []byte {
		var buf bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
		req := &PushRequest{Now: time.Now().UnixMilli(), Scans: &ScanBatch{Epoch: epoch, From: 1,
			Records: benchScanRecords(seq, MaxScanBatch, time.Now())}}
		if err := json.NewEncoder(zw).Encode(req); err != nil {
			b.Fatal(err)
		}
		zw.Close()
		return buf.Bytes()
	}
	bodies := [][]byte{body(1)}
	records := 0
	var busy time.Duration
	for i := 0; b.Loop(); i++ {
		if i+1 >= len(bodies) {
			b.StopTimer()
			bodies = append(bodies, body(int64(len(bodies))*MaxScanBatch+1))
			b.StartTimer()
		}
		start := time.Now()
		r, _ := http.NewRequest(http.MethodPost, h.url()+PathPush, bytes.NewReader(bodies[i]))
		r.Header.Set("Content-Encoding", "gzip")
		r.Header.Set("Authorization", "Bearer "+encodeToken(info.Token))
		resp, err := hc.Do(r)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("push %d: %s", i, resp.Status)
		}
		busy += time.Since(start)
		records += MaxScanBatch
	}
	b.ReportMetric(float64(records)/busy.Seconds(), "records/s")
}

// cpuTime is the CPU time (user and system) this process has used: on a
// shared machine, records per CPU-second say what the work costs
// whatever else runs.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// TestPush_DrainBacklog measures an appliance draining a backlog of
// 1,000,000 scans to the hub over loopback while it keeps checking at
// 1,000 passes a second. It logs 1,000,000 scans first (a minute or
// more), so it runs only with PASSGATE_SYNC_BENCH=1; PASSGATE_SYNC_N
// sets another size.
func TestPush_DrainBacklog(t *testing.T) {
	if os.Getenv("PASSGATE_SYNC_BENCH") != "1" {
		t.Skip("set PASSGATE_SYNC_BENCH=1 to measure draining a 1,000,000-scan backlog")
	}
	total := 1_000_000
	if s := os.Getenv("PASSGATE_SYNC_N"); s != "" {
		if _, err := fmt.Sscan(s, &total); err != nil {
			t.Fatal(err)
		}
	}
	ctx := t.Context()
	h := newPushHub(t)
	var wire atomic.Int64
	h.stop()
	h.wrap = countBodies(PathPush, &wire)
	h.start(t)
	app, c := h.enrol(t, "gate-a", true)
	drain(t, app, c) // the enrolment's own records
	h.stop()

	start := time.Now()
	fillBacklog(t, app, total)
	t.Logf("logged %d scans in %v", total, time.Since(start).Round(time.Millisecond))

	checker, text := checkerWithPass(t, app)

	load := startCheckLoad(t, ctx, checker, text, 1000)

	h.start(t)
	wire.Store(0)
	drainStart, cpu0 := time.Now(), cpuTime()
	checks0 := load.checks.Load()
	pushed := 0
	for {
		n, backlog, err := PushOnceLog(ctx, app, c, nil)
		if err != nil {
			t.Fatal(err)
		}
		pushed += n
		if backlog == 0 {
			break
		}
	}
	took, cpu := time.Since(drainStart), cpuTime()-cpu0
	rate := float64(load.checks.Load()-checks0) / took.Seconds()
	lat := load.finish()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	p99 := lat[len(lat)*99/100]
	t.Logf("drained %d records in %v (%.0f records/s), %.1f wire bytes per record; checks meanwhile %.0f/s, p99 %v; "+
		"CPU time of hub, appliance and checks together %v",
		pushed, took.Round(time.Millisecond), float64(pushed)/took.Seconds(), float64(wire.Load())/float64(pushed), rate, p99,
		cpu.Round(time.Millisecond))
	if pushed < total {
		t.Fatalf("pushed %d, want at least %d", pushed, total)
	}
	if took > 60*time.Second {
		t.Errorf("drain took %v, want ≤ 60 s", took)
	}
	if rate < 950 { // ticker jitter: 1,000/s asked
		t.Errorf("checks ran at %.0f/s during the drain, want 1,000/s", rate)
	}
	// The checks made during the drain follow; then the hub holds the
	// appliance's whole log, once, in order.
	drain(t, app, c)
	sameScans(t, hubHolds(t, h.db, "gate-a"), appScans(t, app))
}

// checkerWithPass is a checker of app and a pass app issued that it
// allows.
func checkerWithPass(t *testing.T, app *store.DB) (*check.Checker, string) {
	ctx := t.Context()
	checker, err := check.New(ctx, check.Config{DB: app})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(checker.Close)
	iss, err := district.Issue(ctx, app, district.IssueRequest{Name: "王五", IDNumber: "E1234567",
		TestedAt: time.Now().Add(-time.Hour), Actor: "issuer"})
	if err != nil {
		t.Fatal(err)
	}
	if err := checker.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	return checker, iss.Text
}

// checkLoad runs checks of one pass from 64 gates at a steady rate until
// finish.
type checkLoad struct {
	stop   chan struct{}
	wg     sync.WaitGroup
	checks atomic.Int64
	latMu  sync.Mutex
	lat    []time.Duration
}

func startCheckLoad(t *testing.T, ctx context.Context, checker *check.Checker, text string, perSecond int) *checkLoad {
	// Checks at a steady perSecond, open loop: a pacer hands out what is
	// due every millisecond to 64 gates, so the rate does not depend on
	// how long one check waits for its commit.
	l := &checkLoad{stop: make(chan struct{})}
	due := make(chan struct{}, 100_000)
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		defer close(due)
		start, issued := time.Now(), int64(0)
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-l.stop:
				return
			case <-tick.C:
			}
			for want := int64(time.Since(start)) * int64(perSecond) / int64(time.Second); issued < want; issued++ {
				due <- struct{}{}
			}
		}
	}()
	const gates = 64
	for g := range gates {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for range due {
				t0 := time.Now()
				if _, err := checker.Check(ctx, fmt.Sprintf("gate-%d", g), text); err != nil {
					t.Error(err)
					return
				}
				d := time.Since(t0)
				l.checks.Add(1)
				l.latMu.Lock()
				l.lat = append(l.lat, d)
				l.latMu.Unlock()
			}
		}()
	}
	return l
}

// finish stops the checks and returns their latencies.
func (l *checkLoad) finish() []time.Duration {
	close(l.stop)
	l.wg.Wait()
	return l.lat
}

// fillBacklog logs n scans from 512 goroutines, so that group commits
// hold hundreds of scans each and a million take a minute, not ten.
func fillBacklog(tb testing.TB, db *store.DB, n int) {
	tb.Helper()
	var next atomic.Int64
	var failed atomic.Value
	var wg sync.WaitGroup
	for range 512 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(n) {
					return
				}
				s := &store.Scan{Source: "backlog", Decision: "allow", Reason: "ok"}
				rand.Read(s.PassID[:])
				rand.Read(s.Subject[:])
				s.KID[0] = 0x42
				if i%5 == 4 {
					s.Decision, s.Reason, s.PassID, s.Subject, s.KID = "deny", "not_a_pass", pass.ID{}, pass.Subject{}, pass.KeyID{}
				}
				if err := db.LogScan(tb.Context(), s); err != nil {
					failed.Store(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if err, _ := failed.Load().(error); err != nil {
		tb.Fatal(err)
	}
}
