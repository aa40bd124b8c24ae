package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
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

	"passgate/appliance"
	"passgate/check"
	"passgate/district"
	"passgate/internal/jsonappend"
	"passgate/pass"
	"passgate/store"
)

// benchOptions are bench's flags.
type benchOptions struct {
	overHTTP    bool
	addr        string
	n, conc     int
	data        string
	cpuProfile  string
	withMetrics bool
}

// answer is what one check answered: the logged scan and the decision.
type answer struct {
	ScanID   int64  `json:"scan_id"`
	Decision string `json:"decision"`
	Reason   string `json:"reason"`
}

// checkFunc makes one check of text on behalf of worker.
type checkFunc func(ctx context.Context, worker int, text string) (answer, error)

// cmdBench is the load tool. It signs unique passes up front, then checks
// them with many concurrent workers, in process or through the scan API,
// and reports throughput, latency and whether every acknowledged scan is
// in the log. Every pass it signs should be allowed: a check decided
// otherwise makes the run fail, since its throughput would measure
// refusals.
func cmdBench(ctx context.Context, e *env, args []string) int {
	o, code, ok := e.benchFlags(args)
	if !ok {
		return code
	}
	if o.data == "" {
		tmp, err := os.MkdirTemp("", "passgate-bench-")
		if err != nil {
			return e.fail(err)
		}
		defer os.RemoveAll(tmp)
		o.data = tmp
	}
	var db *store.DB
	var checkOne checkFunc
	mode := "in process"
	if o.addr != "" {
		// Another process serves this data directory: open the store
		// only, to sign passes and count the logged scans.
		d, err := e.openDB(ctx, o.data, io.Discard)
		if err != nil {
			return e.fail(err)
		}
		defer d.Close()
		db, mode = d, "HTTP to the server at "+o.addr
	} else {
		app, stop, err := e.benchAppliance(ctx, o)
		if err != nil {
			return e.fail(err)
		}
		defer stop()
		db = app.DB()
		checkOne = checkInProcess(app.Checker())
		if o.overHTTP {
			mode, o.addr = "HTTP (loopback, server in this process)", app.Addr().String()
		}
	}
	return e.bench(ctx, o, db, checkOne, mode)
}

// benchFlags reads bench's flags; ok is false (with the exit code) on a
// usage error.
func (e *env) benchFlags(args []string) (o benchOptions, code int, ok bool) {
	fs := e.flagSet("bench", "[--http] [--n N] [--concurrency C] [--data DIR]")
	fs.BoolVar(&o.overHTTP, "http", false, "post scans to the scan API of an in-process server on loopback")
	fs.StringVar(&o.addr, "addr", "", "post scans to the scan API of a running `passgate serve` at HOST:PORT instead (give it the same --data)")
	fs.IntVar(&o.n, "n", 100000, "number of scans (each of a different pass)")
	fs.IntVar(&o.conc, "concurrency", 64, "scans in flight")
	fs.StringVar(&o.data, "data", "", "data directory (default: a new temporary one, removed afterwards)")
	fs.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of the load phase to this file")
	fs.BoolVar(&o.withMetrics, "metrics", true, "count checks and commits in Prometheus metrics, as serve does (--metrics=false measures without)")
	if ok, code := parse(fs, args); !ok {
		return o, code, false
	}
	if o.n < 1 || o.n > 10_000_000 {
		return o, e.usageError("bench", "--n must be between 1 and 10000000"), false
	}
	if o.conc < 1 || o.conc > 4096 {
		return o, e.usageError("bench", "--concurrency must be between 1 and 4096"), false
	}
	if o.addr != "" && o.data == "" {
		return o, e.usageError("bench", "--addr needs the server's --data directory"), false
	}
	return o, exitOK, true
}

// benchAppliance runs the appliance serve runs over o.data, listening on
// loopback for --http; stop ends it.
func (e *env) benchAppliance(ctx context.Context, o benchOptions) (*appliance.Appliance, func(), error) {
	cfg := appliance.Config{
		DataDir:   o.data,
		Open:      func(ctx context.Context) (*store.DB, error) { return e.openDB(ctx, o.data, io.Discard) },
		KeyFile:   e.sealKeyFile(),
		Version:   version,
		NoMetrics: !o.withMetrics,
	}
	if o.overHTTP {
		cfg.Addr = "127.0.0.1:0"
	}
	app, err := appliance.New(ctx, cfg)
	if err != nil {
		return nil, nil, err
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- app.Run(runCtx) }()
	return app, func() {
		cancel()
		<-done
		app.Close()
	}, nil
}

// checkInProcess checks through the pipeline directly.
func checkInProcess(c *check.Checker) checkFunc {
	return func(ctx context.Context, _ int, text string) (answer, error) {
		d, err := c.Check(ctx, "bench", text)
		if err != nil {
			return answer{}, err
		}
		return answer{ScanID: d.ScanID, Decision: string(d.Decision), Reason: string(d.Reason)}, nil
	}
}

// bench signs the passes, runs the load through check (or the scan API at
// o.addr when check is nil) and reports.
func (e *env) bench(ctx context.Context, o benchOptions, db *store.DB, checkOne checkFunc, mode string) int {
	// Generated passes are green, tested an hour ago, with two doses: the
	// default policy allows them.
	pol, err := db.Policy(ctx)
	if err != nil {
		return e.fail(err)
	}
	fmt.Fprintf(e.stderr, "bench: signing %d passes...\n", o.n)
	texts, err := benchPasses(ctx, db, o.n)
	if err != nil {
		return e.fail(err)
	}
	runtime.GC()
	if o.addr != "" {
		post, closeAll, err := benchClient(ctx, db, o.addr, o.conc)
		if err != nil {
			return e.fail(err)
		}
		defer closeAll()
		checkOne = post
	}
	fmt.Fprintf(e.stderr, "bench: %d scans, %d in flight, %s, policy %s...\n", o.n, o.conc, mode, describePolicy(pol))
	if o.cpuProfile != "" {
		f, err := os.Create(o.cpuProfile)
		if err != nil {
			return e.fail(err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return e.fail(err)
		}
		defer pprof.StopCPUProfile()
	}
	r := runLoad(ctx, texts, o.conc, checkOne)
	// The (subject, time) index is built behind the log: the scans the
	// indexer has not reached yet are part of the run's cost.
	start := time.Now()
	behind, err := db.CatchUpScanIndex(ctx)
	if err != nil {
		return e.fail(err)
	}
	catchUp := time.Since(start)
	logged, err := db.CountScansByID(context.Background(), r.ids)
	if err != nil {
		return e.fail(err)
	}
	fmt.Fprintf(e.stdout, "scan index:   %d scans indexed after the run in %s; with them %.0f scans/s\n",
		behind, catchUp.Round(time.Millisecond), float64(len(r.ids))/(r.elapsed+catchUp).Seconds())
	return e.benchReport(o, mode, r, logged)
}

// loadResult is what a load run measured.
type loadResult struct {
	lats    []time.Duration
	ids     []int64
	failed  int64
	refused int64  // checks decided other than allow
	first   answer // the first of them
	elapsed time.Duration
}

// runLoad checks every text once with conc workers.
func runLoad(ctx context.Context, texts []string, conc int, checkOne checkFunc) *loadResult {
	var (
		next atomic.Int64
		wg   sync.WaitGroup
		mu   sync.Mutex
		r    = &loadResult{lats: make([]time.Duration, 0, len(texts)), ids: make([]int64, 0, len(texts))}
	)
	start := time.Now()
	for w := 0; w < conc; w++ {
		wg.Go(func() {
			var mine loadResult
			for {
				i := next.Add(1) - 1
				if i >= int64(len(texts)) || ctx.Err() != nil {
					break
				}
				t0 := time.Now()
				a, err := checkOne(ctx, w, texts[i])
				if err != nil {
					mine.failed++
					continue
				}
				mine.lats = append(mine.lats, time.Since(t0))
				mine.ids = append(mine.ids, a.ScanID)
				if a.Decision != string(check.Allow) {
					if mine.refused == 0 {
						mine.first = a
					}
					mine.refused++
				}
			}
			mu.Lock()
			r.lats, r.ids = append(r.lats, mine.lats...), append(r.ids, mine.ids...)
			r.failed += mine.failed
			if r.refused == 0 && mine.refused > 0 {
				r.first = mine.first
			}
			r.refused += mine.refused
			mu.Unlock()
		})
	}
	wg.Wait()
	r.elapsed = time.Since(start)
	return r
}

// benchReport prints the measurement and fails the run when a scan
// failed, is missing from the log, or was not allowed.
func (e *env) benchReport(o benchOptions, mode string, r *loadResult, logged int) int {
	slices.Sort(r.lats)
	pct := func(p float64) time.Duration {
		if len(r.lats) == 0 {
			return 0
		}
		return r.lats[min(len(r.lats)-1, int(p*float64(len(r.lats))))]
	}
	fmt.Fprintf(e.stdout, "mode:         %s\n", mode)
	fmt.Fprintf(e.stdout, "metrics:      %t\n", o.withMetrics)
	fmt.Fprintf(e.stdout, "scans:        %d acknowledged, %d failed, in %s\n", len(r.ids), r.failed, r.elapsed.Round(time.Millisecond))
	fmt.Fprintf(e.stdout, "throughput:   %.0f scans/s\n", float64(len(r.ids))/r.elapsed.Seconds())
	fmt.Fprintf(e.stdout, "latency:      p50 %s  p99 %s  max %s\n", pct(0.50).Round(time.Microsecond), pct(0.99).Round(time.Microsecond), pct(1).Round(time.Microsecond))
	fmt.Fprintf(e.stdout, "logged:       %d of %d acknowledged scan ids are in the log\n", logged, len(r.ids))
	fmt.Fprintf(e.stdout, "not allowed:  %d\n", r.refused)
	fmt.Fprintf(e.stdout, "peak RSS:     %s\n", peakRSS())
	fmt.Fprintf(e.stdout, "GOMAXPROCS:   %d\n", runtime.GOMAXPROCS(0))
	code := exitOK
	if logged != len(r.ids) || r.failed > 0 {
		fmt.Fprintln(e.stderr, "bench: some scans failed or are missing from the log")
		code = exitError
	}
	if r.refused > 0 {
		fmt.Fprintf(e.stderr, "bench: FAILED: %d of %d checks were not allowed (first: %s, %s): the throughput above is of refusals, not of passes let through; check the policy and the trust anchors of %s\n",
			r.refused, len(r.ids), r.first.Decision, r.first.Reason, o.data)
		code = exitError
	}
	return code
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

// benchClient registers a bench device and returns a function posting one
// scan to the scan API at addr on behalf of one of conc workers. It is a
// lean HTTP/1.1 client, so that the two cores measure the server more than
// the load generator: one keep-alive connection per worker, the request
// head built once, the body and the answer in buffers the worker reuses,
// and a response reader that takes only what the scan API sends (a status
// line, headers, a body of announced length) and fails on anything else.
func benchClient(ctx context.Context, db *store.DB, addr string, conc int) (checkFunc, func(), error) {
	_, token, err := db.CreateDevice(ctx, "bench-"+strconv.FormatInt(time.Now().UnixNano(), 36), "bench")
	if err != nil {
		return nil, nil, err
	}
	post, closeAll := benchPoster(addr, token, conc)
	return post, closeAll, nil
}

// benchPoster posts scans to the scan API at addr with the device token,
// for conc workers.
func benchPoster(addr, token string, conc int) (checkFunc, func()) {
	head := "POST /api/v1/scans HTTP/1.1\r\nHost: " + addr + "\r\nAuthorization: Bearer " + token +
		"\r\nContent-Type: application/json\r\nContent-Length: "
	conns := make([]*benchConn, conc)
	post := func(ctx context.Context, worker int, text string) (answer, error) {
		cn := conns[worker]
		if cn == nil {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				return answer{}, err
			}
			cn = &benchConn{c: c, r: bufio.NewReaderSize(c, 4096)}
			conns[worker] = cn
		}
		a, err := cn.post(head, text)
		if err != nil || cn.closing {
			// The server ends the connection, or it is in an unknown
			// state: the worker's next scan dials a new one.
			cn.c.Close()
			conns[worker] = nil
		}
		return a, err
	}
	closeAll := func() {
		for _, cn := range conns {
			if cn != nil {
				cn.c.Close()
			}
		}
	}
	return post, closeAll
}

// benchConn is one worker's connection to the scan API.
type benchConn struct {
	c       net.Conn
	r       *bufio.Reader
	req     []byte // the request being sent
	body    []byte // the request's body, then the answer's
	closing bool   // the server said it closes the connection
}

// maxBenchAnswer bounds an answer's body and each header line.
const maxBenchAnswer = 64 << 10

// post sends one scan of text and reads its answer.
func (cn *benchConn) post(head, text string) (answer, error) {
	cn.body = append(cn.body[:0], `{"payload":`...)
	cn.body = jsonappend.String(cn.body, text)
	cn.body = append(cn.body, '}')
	cn.req = append(cn.req[:0], head...)
	cn.req = strconv.AppendInt(cn.req, int64(len(cn.body)), 10)
	cn.req = append(cn.req, "\r\n\r\n"...)
	cn.req = append(cn.req, cn.body...)
	if _, err := cn.c.Write(cn.req); err != nil {
		return answer{}, err
	}
	return cn.readAnswer()
}

// readAnswer reads one answer of the scan API from the connection.
func (cn *benchConn) readAnswer() (answer, error) {
	status, length, err := cn.readHead()
	if err != nil {
		return answer{}, err
	}
	if length < 0 || length > maxBenchAnswer {
		return answer{}, fmt.Errorf("scan API answered %d with a body of length %d", status, length)
	}
	cn.body = slices.Grow(cn.body[:0], length)[:length]
	if _, err := io.ReadFull(cn.r, cn.body); err != nil {
		return answer{}, fmt.Errorf("read answer: %w", err)
	}
	if status != http.StatusOK {
		return answer{}, fmt.Errorf("scan API answered %d: %s", status, bytes.TrimSpace(cn.body))
	}
	out, ok := plainAnswer(cn.body)
	if !ok {
		if err := json.Unmarshal(cn.body, &out); err != nil {
			return answer{}, fmt.Errorf("read answer: %w", err)
		}
	}
	if out.ScanID <= 0 {
		return answer{}, errors.New("scan API answered without a scan id")
	}
	return out, nil
}

// plainAnswer reads the three fields bench needs from an answer as the
// scan API writes it: {"decision":"…","reason":"…",…,"scan_id":N…}, the
// decision and reason plain words. It spares the shared cores
// encoding/json's reflection on every answer; ok is false for anything
// else, which then goes to encoding/json. Inside the answer's strings a
// quote is escaped, so the key "scan_id" found last is the field's.
func plainAnswer(b []byte) (a answer, ok bool) {
	b = bytes.TrimSuffix(b, []byte("\n"))
	rest, ok := bytes.CutPrefix(b, []byte(`{"decision":"`))
	if !ok || len(b) == 0 || b[len(b)-1] != '}' {
		return answer{}, false
	}
	word := func(b []byte) (string, []byte, bool) {
		i := 0
		for i < len(b) && (b[i] >= 'a' && b[i] <= 'z' || b[i] == '_') {
			i++
		}
		if i == 0 || i >= len(b) || b[i] != '"' {
			return "", nil, false
		}
		return string(b[:i]), b[i+1:], true
	}
	if a.Decision, rest, ok = word(rest); !ok {
		return answer{}, false
	}
	if rest, ok = bytes.CutPrefix(rest, []byte(`,"reason":"`)); !ok {
		return answer{}, false
	}
	if a.Reason, _, ok = word(rest); !ok {
		return answer{}, false
	}
	const key = `,"scan_id":`
	i := bytes.LastIndex(b, []byte(key))
	if i < 0 {
		return answer{}, false
	}
	digits := b[i+len(key):]
	n := 0
	for n < len(digits) && n < 19 && digits[n] >= '0' && digits[n] <= '9' {
		n++
	}
	if n == 0 || n >= len(digits) || digits[n] != ',' && digits[n] != '}' {
		return answer{}, false
	}
	id, err := strconv.ParseInt(string(digits[:n]), 10, 64)
	if err != nil {
		return answer{}, false
	}
	a.ScanID = id
	return a, true
}

// readHead reads an answer's status line and headers: its status and
// body length (-1 when it is not announced).
func (cn *benchConn) readHead() (status, length int, err error) {
	line, err := cn.r.ReadSlice('\n')
	if err != nil {
		return 0, 0, fmt.Errorf("read answer: %w", err)
	}
	// "HTTP/1.1 200 OK\r\n"
	if len(line) < 13 || !bytes.HasPrefix(line, []byte("HTTP/1.1 ")) || line[12] != ' ' && line[12] != '\r' {
		return 0, 0, fmt.Errorf("read answer: status line %q", line)
	}
	if status, err = strconv.Atoi(string(line[9:12])); err != nil {
		return 0, 0, fmt.Errorf("read answer: status line %q", line)
	}
	length = -1
	cn.closing = false
	for {
		line, err := cn.r.ReadSlice('\n')
		if err != nil {
			return 0, 0, fmt.Errorf("read answer: %w", err)
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 {
			return status, length, nil
		}
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			return 0, 0, fmt.Errorf("read answer: header line %q", line)
		}
		value = bytes.TrimSpace(value)
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			if length, err = strconv.Atoi(string(value)); err != nil || length < 0 {
				return 0, 0, fmt.Errorf("read answer: Content-Length %q", value)
			}
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			return 0, 0, fmt.Errorf("read answer: Transfer-Encoding %q is not read by bench", value)
		case bytes.EqualFold(name, []byte("Connection")) && bytes.EqualFold(value, []byte("close")):
			cn.closing = true
		}
	}
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
