package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"passgate/check"
	"passgate/district"
	"passgate/metrics"
	"passgate/pass"
	"passgate/store"
	"passgate/web"
)

// cmdBench is the load tool. It signs unique passes up front, then checks
// them with many concurrent workers, in process or through the scan API,
// and reports throughput, latency and whether every acknowledged scan is
// in the log.
func cmdBench(ctx context.Context, e *env, args []string) int {
	fs := e.flagSet("bench", "[--http] [--n N] [--concurrency C] [--data DIR]")
	overHTTP := fs.Bool("http", false, "post scans to the scan API of an in-process server on loopback")
	addr := fs.String("addr", "", "post scans to the scan API of a running `passgate serve` at HOST:PORT instead (give it the same --data)")
	n := fs.Int("n", 100000, "number of scans (each of a different pass)")
	conc := fs.Int("concurrency", 64, "scans in flight")
	data := fs.String("data", "", "data directory (default: a new temporary one, removed afterwards)")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the load phase to this file")
	withMetrics := fs.Bool("metrics", true, "count checks and commits in Prometheus metrics, as serve does (--metrics=false measures without)")
	if ok, code := parse(fs, args); !ok {
		return code
	}
	if *n < 1 || *n > 10_000_000 {
		return e.usageError("bench", "--n must be between 1 and 10000000")
	}
	if *conc < 1 || *conc > 4096 {
		return e.usageError("bench", "--concurrency must be between 1 and 4096")
	}
	dir := *data
	if dir == "" {
		tmp, err := os.MkdirTemp("", "passgate-bench-")
		if err != nil {
			return e.fail(err)
		}
		defer os.RemoveAll(tmp)
		dir = tmp
	}
	db, err := e.openDB(ctx, dir, io.Discard)
	if err != nil {
		return e.fail(err)
	}
	defer db.Close()
	// Generated passes are green, tested an hour ago, with two doses: the
	// default policy allows them.
	pol, err := db.Policy(ctx)
	if err != nil {
		return e.fail(err)
	}
	var m *metrics.Metrics
	var checkerOpts []check.Option
	if *withMetrics {
		m = metrics.New(metrics.Config{DB: db, Version: version})
		db.ObserveScanCommits(m.ScanCommitted)
		checkerOpts = append(checkerOpts, check.WithObserver(m))
	}
	checker, err := check.New(ctx, db, checkerOpts...)
	if err != nil {
		return e.fail(err)
	}

	fmt.Fprintf(e.stderr, "bench: signing %d passes...\n", *n)
	texts, err := benchPasses(ctx, db, *n)
	if err != nil {
		return e.fail(err)
	}
	runtime.GC()

	var do func(ctx context.Context, worker int, text string) (int64, error)
	mode := "in process"
	if *overHTTP || *addr != "" {
		mode = "HTTP (loopback, server in this process)"
		target := *addr
		if target == "" {
			a, stop, err := benchServer(db, checker, m)
			if err != nil {
				return e.fail(err)
			}
			defer stop()
			target = a
		} else {
			if *data == "" {
				return e.usageError("bench", "--addr needs the server's --data directory")
			}
			mode = "HTTP to the server at " + target
		}
		post, closeAll, err := benchClient(ctx, db, target)
		if err != nil {
			return e.fail(err)
		}
		defer closeAll()
		do = post
	} else {
		do = func(ctx context.Context, _ int, text string) (int64, error) {
			d, err := checker.Check(ctx, "bench", text)
			if err != nil {
				return 0, err
			}
			return d.ScanID, nil
		}
	}

	fmt.Fprintf(e.stderr, "bench: %d scans, %d in flight, %s, policy %s...\n", *n, *conc, mode, describePolicy(pol))
	var (
		next   atomic.Int64
		failed atomic.Int64
		wg     sync.WaitGroup
		mu     sync.Mutex
		lats   = make([]time.Duration, 0, *n)
		ids    = make([]int64, 0, *n)
	)
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return e.fail(err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return e.fail(err)
		}
		defer pprof.StopCPUProfile()
	}
	start := time.Now()
	for w := 0; w < *conc; w++ {
		wg.Add(1)
		go func(worker int) {
			defer wg.Done()
			myLats := make([]time.Duration, 0, *n / *conc + 1)
			myIDs := make([]int64, 0, *n / *conc + 1)
			for {
				i := next.Add(1) - 1
				if i >= int64(len(texts)) || ctx.Err() != nil {
					break
				}
				t0 := time.Now()
				id, err := do(ctx, worker, texts[i])
				if err != nil {
					failed.Add(1)
					continue
				}
				myLats = append(myLats, time.Since(t0))
				myIDs = append(myIDs, id)
			}
			mu.Lock()
			lats = append(lats, myLats...)
			ids = append(ids, myIDs...)
			mu.Unlock()
		}(w)
	}
	wg.Wait()
	elapsed := time.Since(start)

	logged, err := db.CountScansByID(context.Background(), ids)
	if err != nil {
		return e.fail(err)
	}
	slices.Sort(lats)
	pct := func(p float64) time.Duration {
		if len(lats) == 0 {
			return 0
		}
		return lats[min(len(lats)-1, int(p*float64(len(lats))))]
	}
	fmt.Fprintf(e.stdout, "mode:         %s\n", mode)
	fmt.Fprintf(e.stdout, "metrics:      %t\n", *withMetrics)
	fmt.Fprintf(e.stdout, "scans:        %d acknowledged, %d failed, in %s\n", len(ids), failed.Load(), elapsed.Round(time.Millisecond))
	fmt.Fprintf(e.stdout, "throughput:   %.0f scans/s\n", float64(len(ids))/elapsed.Seconds())
	fmt.Fprintf(e.stdout, "latency:      p50 %s  p99 %s  max %s\n", pct(0.50).Round(time.Microsecond), pct(0.99).Round(time.Microsecond), pct(1).Round(time.Microsecond))
	fmt.Fprintf(e.stdout, "logged:       %d of %d acknowledged scan ids are in the log\n", logged, len(ids))
	fmt.Fprintf(e.stdout, "peak RSS:     %s\n", peakRSS())
	fmt.Fprintf(e.stdout, "GOMAXPROCS:   %d\n", runtime.GOMAXPROCS(0))
	if logged != len(ids) || failed.Load() > 0 {
		fmt.Fprintln(e.stderr, "bench: some scans failed or are missing from the log")
		return exitError
	}
	return exitOK
}

// benchPasses signs n passes of distinct people with the appliance's issuer
// key: green, tested an hour ago, two doses.
func benchPasses(ctx context.Context, db *store.DB, n int) ([]string, error) {
	d, err := db.District(ctx)
	if err != nil {
		return nil, err
	}
	signer, err := district.LoadSigner(ctx, db)
	if err != nil {
		return nil, err
	}
	now := time.Now().Truncate(time.Second)
	texts := make([]string, n)
	var mu sync.Mutex
	var firstErr error
	var wg sync.WaitGroup
	workers := runtime.GOMAXPROCS(0)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += workers {
				c := pass.Claims{
					District: d.ID, Name: "张*明", IDTail: fmt.Sprintf("%04d", i%10000),
					Color: pass.Green, TestedAt: now.Add(-time.Hour), Doses: 2,
					IssuedAt: now.Add(-time.Minute), ExpiresAt: now.Add(pass.PhoneValidity), Kind: pass.Phone,
				}
				_, _ = rand.Read(c.ID[:])
				_, _ = rand.Read(c.Subject[:])
				t, err := signer.Sign(&c)
				if err != nil {
					mu.Lock()
					firstErr = err
					mu.Unlock()
					return
				}
				texts[i] = t
			}
		}()
	}
	wg.Wait()
	return texts, firstErr
}

// benchServer serves the scan API on a loopback port in this process.
func benchServer(db *store.DB, checker *check.Checker, m *metrics.Metrics) (addr string, stop func(), err error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv := &http.Server{Handler: web.New(db, checker, log, web.WithMetrics(m, web.MetricsAccess{})).Handler(), ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	return ln.Addr().String(), func() {
		sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}, nil
}

// benchClient registers a bench device and returns a function posting one
// scan to the scan API at addr. It is a lean HTTP/1.1 client (one
// keep-alive connection per worker, the standard response parser) so that
// the two cores measure the server more than the load generator.
func benchClient(ctx context.Context, db *store.DB, addr string) (func(context.Context, int, string) (int64, error), func(), error) {
	_, token, err := db.CreateDevice(ctx, "bench-"+strconv.FormatInt(time.Now().UnixNano(), 36), "bench")
	if err != nil {
		return nil, nil, err
	}
	head := "POST /api/v1/scans HTTP/1.1\r\nHost: " + addr + "\r\nAuthorization: Bearer " + token +
		"\r\nContent-Type: application/json\r\nContent-Length: "

	type conn struct {
		c   net.Conn
		r   *bufio.Reader
		buf []byte
	}
	var mu sync.Mutex
	conns := map[int]*conn{}
	post := func(ctx context.Context, worker int, text string) (int64, error) {
		mu.Lock()
		cn := conns[worker]
		mu.Unlock()
		if cn == nil {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				return 0, err
			}
			cn = &conn{c: c, r: bufio.NewReader(c)}
			mu.Lock()
			conns[worker] = cn
			mu.Unlock()
		}
		body, _ := json.Marshal(struct {
			Payload string `json:"payload"`
		}{text})
		cn.buf = append(cn.buf[:0], head...)
		cn.buf = strconv.AppendInt(cn.buf, int64(len(body)), 10)
		cn.buf = append(cn.buf, "\r\n\r\n"...)
		cn.buf = append(cn.buf, body...)
		if _, err := cn.c.Write(cn.buf); err != nil {
			return 0, err
		}
		resp, err := http.ReadResponse(cn.r, nil)
		if err != nil {
			return 0, err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return 0, fmt.Errorf("scan API answered %s", resp.Status)
		}
		var out struct {
			ScanID int64 `json:"scan_id"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
			return 0, err
		}
		if _, err := io.Copy(io.Discard, resp.Body); err != nil {
			return 0, err
		}
		if out.ScanID <= 0 {
			return 0, errors.New("scan API answered without a scan id")
		}
		return out.ScanID, nil
	}
	closeAll := func() {
		mu.Lock()
		defer mu.Unlock()
		for _, cn := range conns {
			cn.c.Close()
		}
	}
	return post, closeAll, nil
}

func describePolicy(p *store.Policy) string {
	return fmt.Sprintf("(colours %v, test ≤ %s, repeat window %s)", p.Colors, p.MaxTestAge, p.RepeatWindow)
}

// peakRSS reads the process's peak resident set size from /proc.
func peakRSS() string {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return "unknown"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}
