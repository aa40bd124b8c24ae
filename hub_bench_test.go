package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"passgate/appliance"
	"passgate/districtsync"
	"passgate/internal/checktest"
	"passgate/pass"
	"passgate/store"
	"passgate/tlsca"
)

// TestHubBench holds N simulated appliances (PASSGATE_HUB_BENCH_N,
// default 2,000) in long polls against a real hub: the appliance `passgate
// serve` runs (its HTTPS server, connection cap, background loops and
// gate) over a store in a temporary directory, each simulated appliance
// enrolled over the wire with its own token (one shared transport). It reports how long revocations take to
// reach every appliance, the process's CPU while idle (hub and simulated
// appliances together: an upper bound of the hub's), the hub's own check
// latency meanwhile, and the bytes each appliance receives for one
// trust-list change. A benchmark, not a test: run with
//
//	PASSGATE_HUB_BENCH=1 go test -run TestHubBench -v -timeout 20m .
func TestHubBench(t *testing.T) {
	if os.Getenv("PASSGATE_HUB_BENCH") != "1" {
		t.Skip("set PASSGATE_HUB_BENCH=1 to run the hub load test")
	}
	n := 2000
	if v, err := strconv.Atoi(os.Getenv("PASSGATE_HUB_BENCH_N")); err == nil && v > 0 {
		n = v
	}
	b := startBenchHub(t)
	start := time.Now()
	apps := b.enrol(t, n)
	t.Logf("%d appliances enrolled in %v", n, time.Since(start).Round(time.Millisecond))
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()
	for _, a := range apps {
		wg.Go(func() { a.run(ctx, b) })
	}
	// Every appliance past its first answers (a TLS handshake each, and
	// the hub's generation) and in its long poll: the idle window is idle.
	waitAll(t, apps, func(a *simAppliance) (time.Time, bool) { return a.settled() }, time.Now())
	time.Sleep(3 * time.Second)

	// Idle: nothing changes; each appliance's pull ends every PollWait.
	idle := 20 * time.Second
	cpu0 := processCPU()
	time.Sleep(idle)
	idleCores := (processCPU() - cpu0).Seconds() / idle.Seconds()

	// The hub's own gate with appliances idle, for comparison; then
	// revocations while it checks passes.
	checks := b.checkLoop(ctx)
	time.Sleep(30 * time.Second)
	idleCheckLat := checks()
	checks = b.checkLoop(ctx)
	var lat []time.Duration
	for i := range 10 {
		pid := pass.ID{byte(i + 1), 0xbe}
		if err := b.f.DB.CreateRevocation(ctx, &store.Revocation{Kind: store.RevokePass, Target: pid[:], Reason: "bench"}); err != nil {
			t.Fatal(err)
		}
		at := time.Now()
		pos, err := b.f.DB.FeedPositions(ctx)
		if err != nil {
			t.Fatal(err)
		}
		lat = append(lat, waitAll(t, apps, func(a *simAppliance) (time.Time, bool) { return a.seen(pos.RevocationsSeq) }, at)...)
		time.Sleep(2 * time.Second)
	}
	checkLat := checks()

	// One trust-list change: an issuing appliance enrolled.
	bytes0 := b.pullBytes.Load()
	office := b.enrolOne(t, "office-bench", true)
	at := time.Now()
	hub, err := b.f.DB.TrustKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := string(districtsync.TrustHash(hub))
	trustLat := waitAll(t, apps, func(a *simAppliance) (time.Time, bool) { return a.hasTrust(want) }, at)
	time.Sleep(time.Second)
	perApp := float64(b.pullBytes.Load()-bytes0) / float64(n)
	_ = office

	t.Logf("N=%d appliances", n)
	t.Logf("revocation seen by all: p50 %v p99 %v max %v (%d samples)", pct(lat, 50), pct(lat, 99), pct(lat, 100), len(lat))
	t.Logf("trust change seen by all: p99 %v; %.0f bytes on the wire per appliance", pct(trustLat, 99), perApp)
	t.Logf("process CPU while idle: %.3f cores (hub and simulated appliances)", idleCores)
	t.Logf("hub check latency during revocations: p50 %v p99 %v (%d checks); appliances idle: p50 %v p99 %v (%d checks)",
		pct(checkLat, 50), pct(checkLat, 99), len(checkLat), pct(idleCheckLat, 50), pct(idleCheckLat, 99), len(idleCheckLat))
}

// benchHub is a hub as `passgate serve` runs it, for TestHubBench.
type benchHub struct {
	f         *checktest.District
	app       *appliance.Appliance
	url       string
	pin       []byte
	enroler   *districtsync.Client // shared transport of every appliance
	pullBytes atomic.Int64         // bytes the hub sent (TLS, as on the wire)
}

// startBenchHub runs the appliance `passgate serve` runs, over a test
// district, listening for HTTPS on loopback; the simulated appliances
// reach it through a proxy that counts the bytes it sends them.
func startBenchHub(t *testing.T) *benchHub {
	t.Helper()
	f := checktest.New(t)
	f.DB.Now = time.Now // the hub runs on the wall clock like any
	f.Now = time.Now()  // and passes are signed valid now
	dir := t.TempDir()
	auth, err := tlsca.LoadOrCreate(dir, []string{"127.0.0.1"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	b := &benchHub{f: f}
	b.pin, _ = districtsync.PinOfDER(auth.CACertDER())
	app, err := appliance.New(context.Background(), appliance.Config{
		DataDir: dir, Open: func(context.Context) (*store.DB, error) { return f.DB, nil },
		TLSAddr: "127.0.0.1:0", TLSHosts: []string{"127.0.0.1"}, Version: "bench",
	})
	if err != nil {
		t.Fatal(err)
	}
	b.app = app
	ctx, cancel := context.WithCancel(context.Background())
	runDone := make(chan error, 1)
	go func() { runDone <- app.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-runDone
		app.Close()
	})
	b.url = "https://" + b.countingProxy(t, app.TLSAddr().String())
	if b.enroler, err = districtsync.NewClient(b.url, b.pin, nil); err != nil {
		t.Fatal(err)
	}
	b.enroler.KeepConns(4096)
	return b
}

// countingWriter counts what is written through it.
type countingWriter struct {
	w io.Writer
	n *atomic.Int64
}

func (c countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n.Add(int64(n))
	return n, err
}

// countingProxy forwards TCP connections to addr and counts the bytes
// sent back in b.pullBytes; its address.
func (b *benchHub) countingProxy(t *testing.T, addr string) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				up, err := net.Dial("tcp", addr)
				if err != nil {
					return
				}
				defer up.Close()
				go func() { _, _ = io.Copy(up, c); up.Close() }()
				_, _ = io.Copy(countingWriter{c, &b.pullBytes}, up)
			}()
		}
	}()
	return ln.Addr().String()
}

// enrol enrols n gates over the wire, 16 at a time.
func (b *benchHub) enrol(t *testing.T, n int) []*simAppliance {
	apps := make([]*simAppliance, n)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for i := int(next.Add(1)) - 1; i < n; i = int(next.Add(1)) - 1 {
				apps[i] = b.enrolOne(t, fmt.Sprintf("gate-%04d", i), false)
			}
		})
	}
	wg.Wait()
	return apps
}

// enrolOne registers an appliance and enrols it over the wire.
func (b *benchHub) enrolOne(t *testing.T, name string, mayIssue bool) *simAppliance {
	ctx := context.Background()
	code, err := districtsync.NewCode(b.pin)
	if err != nil {
		t.Error(err)
		return nil
	}
	if _, err := b.f.DB.AddAppliance(ctx, name, store.RoleOf(mayIssue), code.Hash(), time.Now().Add(time.Hour), "bench"); err != nil {
		t.Error(err)
		return nil
	}
	p, err := districtsync.NewPending(code, time.Now())
	if err != nil {
		t.Error(err)
		return nil
	}
	var resp districtsync.EnrolResponse
	if err := b.enroler.Call(ctx, districtsync.PathEnrol, &p.Request, &resp); err != nil {
		t.Errorf("enrol %s: %v", name, err)
		return nil
	}
	keys, err := districtsync.TrustKeysFromWire(resp.Trust.Keys)
	if err != nil {
		t.Error(err)
		return nil
	}
	return &simAppliance{c: b.enroler.ForToken(resp.Token), keys: keys, hash: resp.Trust.Hash,
		policy: resp.Policy.Version, seenAt: make(map[int64]time.Time)}
}

// simAppliance is an enrolled gate reduced to its feed state, held in
// memory: it pulls with long polls and applies what comes.
type simAppliance struct {
	c      *districtsync.Client
	mu     sync.Mutex
	keys   []*store.Key
	hash   []byte
	revSeq int64
	policy int64
	gen    []byte              // the hub's feed generation its positions are in
	seenAt map[int64]time.Time // revocation seq → when it arrived
	hashAt time.Time           // when the current trust list arrived
}

func (a *simAppliance) run(ctx context.Context, b *benchHub) {
	for ctx.Err() == nil {
		a.mu.Lock()
		req := districtsync.PullRequest{Now: time.Now().UnixMilli(), RevocationsAfter: a.revSeq, TrustHash: a.hash,
			PolicyVersion: a.policy, Generation: a.gen, Deltas: true, Wait: true}
		a.mu.Unlock()
		var resp districtsync.PullResponse
		if err := a.c.Call(ctx, districtsync.PathPull, &req, &resp); err != nil {
			if ctx.Err() == nil {
				time.Sleep(time.Second)
			}
			continue
		}
		a.apply(&resp, req.TrustHash)
	}
}

func (a *simAppliance) apply(resp *districtsync.PullResponse, applied []byte) {
	now := time.Now()
	a.mu.Lock()
	defer a.mu.Unlock()
	if resp.Generation != nil && !bytes.Equal(resp.Generation, a.gen) {
		// A new generation: read the whole feed from the start, as an
		// appliance does (the first answer after enrolment included).
		if a.gen != nil {
			a.revSeq, a.hash, a.policy = 0, nil, 0
		}
		a.gen = resp.Generation
		return
	}
	for _, r := range resp.Revocations {
		a.seenAt[r.Seq], a.revSeq = now, r.Seq
	}
	if resp.Policy != nil {
		a.policy = resp.Policy.Version
	}
	list := resp.Trust
	if resp.TrustDelta != nil {
		var err error
		if list, err = districtsync.ApplyTrustDelta(a.keys, applied, resp.TrustDelta); err != nil {
			a.hash = nil // the whole list next time
			return
		}
	}
	if list != nil {
		keys, err := districtsync.TrustKeysFromWire(list.Keys)
		if err == nil {
			a.keys, a.hash, a.hashAt = keys, list.Hash, now
		}
	}
}

// settled tells whether a has taken the hub's generation.
func (a *simAppliance) settled() (time.Time, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return time.Now(), a.gen != nil
}

func (a *simAppliance) seen(seq int64) (time.Time, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	at, ok := a.seenAt[seq]
	return at, ok
}

func (a *simAppliance) hasTrust(hash string) (time.Time, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.hashAt, string(a.hash) == hash
}

// waitAll waits until every appliance has seen something (at most 60 s)
// and returns how long after at each saw it.
func waitAll(t *testing.T, apps []*simAppliance, seen func(*simAppliance) (time.Time, bool), at time.Time) []time.Duration {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		var lat []time.Duration
		for _, a := range apps {
			if when, ok := seen(a); ok {
				lat = append(lat, max(when.Sub(at), 0))
			}
		}
		if len(lat) == len(apps) {
			return lat
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d appliances saw the change within 60 s", len(lat), len(apps))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// checkLoop checks a pass at the hub's own gate every 50 ms until the
// returned function is called, which returns the latencies.
func (b *benchHub) checkLoop(ctx context.Context) func() []time.Duration {
	texts := make([]string, 256)
	for i := range texts {
		texts[i] = b.f.Sign(b.f.Claims())
	}
	var lat []time.Duration
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
			start := time.Now()
			if _, err := b.app.Checker().Check(ctx, "bench", texts[i%len(texts)]); err == nil {
				lat = append(lat, time.Since(start))
			}
		}
	}()
	return func() []time.Duration { close(stop); <-done; return lat }
}

// processCPU is the user and system CPU time this process used so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// pct is the p-th percentile of d (100: the maximum).
func pct(d []time.Duration, p int) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	i := min(len(s)-1, len(s)*p/100)
	return s[i].Round(time.Millisecond)
}
