package export

import (
	"bufio"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"passgate/store"
)

// The one-million-row measurement. It runs only with
// PASSGATE_EXPORT_BENCH=1:
//
//	PASSGATE_EXPORT_BENCH=1 go test -run TestExportMillion -v -timeout 30m ./export
//
// The parent fills a database with benchRows scans in one transaction,
// then runs each format in a child process (this test binary again), so
// that each child's peak RSS (VmHWM from /proc/self/status, read at its
// end) belongs to that export alone. While a child exports, benchLoggers
// goroutines in it log scans through db.LogScan the way concurrent gates
// do; it reports their rate, and their rate in the two seconds before the
// export started for comparison. PASSGATE_EXPORT_BENCH_DIR keeps the
// filled database between runs.
const (
	benchRows    = 1_000_000
	benchLoggers = 16
)

func TestExportMillion(t *testing.T) {
	if os.Getenv("PASSGATE_EXPORT_BENCH") != "1" {
		t.Skip("set PASSGATE_EXPORT_BENCH=1 to export a million rows")
	}
	dir := os.Getenv("PASSGATE_EXPORT_BENCH_DIR")
	if dir == "" {
		dir = t.TempDir()
	}
	if _, err := os.Stat(filepath.Join(dir, store.FileName)); err != nil {
		start := time.Now()
		fillScans(t, dir, benchRows)
		t.Logf("inserted %d scans in %v", benchRows, time.Since(start).Round(time.Millisecond))
	}
	runMillionChildren(t, dir, KindScans)
}

// runMillionChildren runs the measured export of kind in each format, each
// in a child process, and logs their results.
func runMillionChildren(t *testing.T, dir string, kind Kind) {
	t.Helper()
	for _, f := range Formats {
		cmd := exec.Command(os.Args[0], "-test.run=^TestExportMillionChild$", "-test.v")
		cmd.Env = append(os.Environ(), "PASSGATE_EXPORT_CHILD="+string(f), "PASSGATE_EXPORT_DIR="+dir, "PASSGATE_EXPORT_KIND="+string(kind))
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s child: %v\n%s", f, err, out)
		}
		for _, l := range strings.Split(string(out), "\n") {
			if strings.Contains(l, "RESULT") {
				t.Log(strings.TrimSpace(l))
			}
		}
	}
}

// TestExportMillionChild is one measured export; it runs only as the
// child of TestExportMillion.
func TestExportMillionChild(t *testing.T) {
	format := os.Getenv("PASSGATE_EXPORT_CHILD")
	if format == "" {
		t.Skip("child of TestExportMillion")
	}
	ctx := t.Context()
	db, err := store.Open(ctx, os.Getenv("PASSGATE_EXPORT_DIR"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	out, err := os.Create(filepath.Join(t.TempDir(), "out."+format))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()

	var (
		logged atomic.Int64
		failed atomic.Int64
		stop   = make(chan struct{})
		wg     sync.WaitGroup
	)
	for g := range benchLoggers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				s := &store.Scan{Source: "gate-" + strconv.Itoa(g), Decision: "allow", Reason: "ok"}
				if err := db.LogScan(ctx, s); err != nil {
					failed.Add(1)
					continue
				}
				logged.Add(1)
			}
		}()
	}
	time.Sleep(2 * time.Second)
	before := logged.Load()
	logged.Store(0)
	start := time.Now()
	// The filled range only: scans logged by earlier runs are not counted.
	kind := Kind(os.Getenv("PASSGATE_EXPORT_KIND"))
	if kind == "" {
		kind = KindScans
	}
	r := &Request{Kind: kind, Format: Format(format), From: day0, To: day0.AddDate(0, 0, 20), Location: shanghai}
	n, err := Run(ctx, db, out, r, nil)
	took := time.Since(start)
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	st, _ := out.Stat()
	fmt.Printf("RESULT %s %-5s rows=%d time=%v size=%dMB peakRSS=%s scans_logged_meanwhile=%d (%.0f/s; %.0f/s before the export; %d failed)\n",
		kind, format, n, took.Round(time.Millisecond), st.Size()>>20, vmHWM(), logged.Load(), float64(logged.Load())/took.Seconds(), float64(before)/2, failed.Load())
	if failed.Load() > 0 {
		t.Errorf("%d scans failed during the export", failed.Load())
	}
}

// vmHWM is the process's peak resident set size.
func vmHWM() string {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return "?"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			return strings.Join(strings.Fields(v), " ")
		}
	}
	return "?"
}

// fillScans creates the database in dir and inserts n scans spread over
// the first twenty days of November 2026, in one transaction on a
// connection of its own (LogScan commits in batches of at most 1,024).
func fillScans(t *testing.T, dir string, n int) {
	t.Helper()
	ctx := t.Context()
	db, err := store.Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	path := db.Path()
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	conn, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	st, err := tx.PrepareContext(ctx, `INSERT INTO scans (at_ms, source, decision, reason, repeat, pass_id, subject, kid) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`)
	if err != nil {
		t.Fatal(err)
	}
	sources := []string{"东门闸机", "西门闸机", "南门 1号", "北门", "=HYPERLINK(1)", "小区入口", "gate-7", "食堂"}
	reasons := []string{"ok", "ok", "ok", "expired", "red", "repeat", "bad_signature"}
	rng := rand.New(rand.NewPCG(1, 2))
	span := int64(20 * 24 * time.Hour / time.Millisecond)
	base := day0.UnixMilli()
	pid, subj, kid := make([]byte, 12), make([]byte, 16), make([]byte, 8)
	for i := range n {
		for _, b := range [][]byte{pid, subj, kid} {
			for j := range b {
				b[j] = byte(rng.Uint32())
			}
		}
		dec := "allow"
		reason := reasons[i%len(reasons)]
		if reason != "ok" {
			dec = "deny"
		}
		if _, err := st.ExecContext(ctx, base+int64(i)*span/int64(n), sources[i%len(sources)], dec, reason, i%11 == 0, pid, subj, kid); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	// Logged through the writer these scans would be indexed behind it
	// as they came; left to the exports' processes, the indexer would be
	// catching up on all of them while the export is measured.
	db, err = store.Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.CatchUpScanIndex(ctx); err != nil {
		t.Fatal(err)
	}
}
