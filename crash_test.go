package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"passgate/store"
)

// buildBinary builds passgate once per test run.
var buildBinary = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "passgate-bin-")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "passgate")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		return "", &buildError{string(out)}
	}
	return bin, nil
})

type buildError struct{ out string }

func (e *buildError) Error() string { return "go build: " + e.out }

// server is a real passgate process.
type server struct {
	cmd  *exec.Cmd
	base string
	done chan error
}

func startServer(t *testing.T, bin, dir string) *server {
	t.Helper()
	cmd := exec.Command(bin, "serve", "--data", dir, "--addr", "127.0.0.1:0", "--log-level", "warn")
	cmd.Env = append(os.Environ(), "PASSGATE_ADMIN_PASSWORD=crash test password")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &server{cmd: cmd, done: make(chan error, 1)}
	found := make(chan string, 1)
	go func() {
		re := regexp.MustCompile(`listening on (http://\S+)`)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				found <- m[1]
			}
		}
		io.Copy(io.Discard, stdout)
	}()
	go func() { s.done <- cmd.Wait() }()
	select {
	case s.base = <-found:
	case err := <-s.done:
		t.Fatalf("server exited at start: %v", err)
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		t.Fatal("server did not start")
	}
	return s
}

// load posts scans from workers until stop closes, and returns the scan
// ids the server acknowledged.
func load(base, token, payload string, workers int, stop <-chan struct{}) []int64 {
	var mu sync.Mutex
	var acked []int64
	var wg sync.WaitGroup
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: workers}}
	body := `{"payload":"` + payload + `"}`
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				req, _ := http.NewRequest("POST", base+"/api/v1/scans", strings.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+token)
				resp, err := client.Do(req)
				if err != nil {
					continue // the server is gone; nothing was acknowledged
				}
				var d struct {
					ScanID int64 `json:"scan_id"`
				}
				err = json.NewDecoder(resp.Body).Decode(&d)
				resp.Body.Close()
				if err == nil && resp.StatusCode == 200 && d.ScanID > 0 {
					mu.Lock()
					acked = append(acked, d.ScanID)
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	client.CloseIdleConnections()
	return acked
}

// TestCrash_AcknowledgedScansSurviveKill kills a real server under scan
// load several times: every scan acknowledged to a client must be in the
// log after restart, and the database must be intact.
func TestCrash_AcknowledgedScansSurviveKill(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills real processes")
	}
	bin, err := buildBinary()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	env := map[string]string{"PASSGATE_ADMIN_PASSWORD": "crash test password"}
	token := strings.TrimSpace(runCLI(t, env, "", "device", "add", "--data", dir, "crash-gate").stdout)
	payload := strings.TrimSpace(runCLI(t, env, "", "issue", "--data", dir, "--name", "王五", "--id", "E1234567", "--tested-at", time.Now().Add(-time.Hour).Format(time.RFC3339)).stdout)
	if token == "" || payload == "" {
		t.Fatal("setup failed")
	}

	var all []int64
	const rounds = 4
	for round := range rounds {
		s := startServer(t, bin, dir)
		stop := make(chan struct{})
		got := make(chan []int64, 1)
		go func() { got <- load(s.base, token, payload, 16, stop) }()
		time.Sleep(700 * time.Millisecond)
		graceful := round == rounds-1
		if graceful {
			// The last round stops the server the polite way: a graceful
			// shutdown must also lose nothing and exit cleanly.
			s.cmd.Process.Signal(syscall.SIGTERM)
		} else {
			s.cmd.Process.Kill()
		}
		err := <-s.done
		close(stop)
		acked := <-got
		if graceful && err != nil {
			t.Fatalf("graceful shutdown: %v", err)
		}
		if len(acked) == 0 {
			t.Fatalf("round %d: no scan was acknowledged", round)
		}
		t.Logf("round %d: %d scans acknowledged before %s", round, len(acked), map[bool]string{true: "SIGTERM", false: "SIGKILL"}[graceful])
		all = append(all, acked...)
	}

	db, err := store.Open(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.IntegrityCheck(context.Background()); err != nil {
		t.Fatalf("integrity: %v", err)
	}
	n, err := db.CountScansByID(context.Background(), all)
	if err != nil {
		t.Fatal(err)
	}
	if n != len(all) {
		t.Fatalf("%d of %d acknowledged scans are in the log", n, len(all))
	}
}
