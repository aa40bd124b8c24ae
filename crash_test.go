package main

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"passgate/store"
)

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
	dir := t.TempDir()
	env := map[string]string{"PASSGATE_ADMIN_PASSWORD": "crash test password"}
	token := strings.TrimSpace(runCLI(t, env, "", "device", "add", "--data", dir, "crash-gate").stdout)
	payload := strings.TrimSpace(runCLI(t, env, "", "issue", "--data", dir, "--name", "王五", "--id", "E1234567", "--tested-at", time.Now().Add(-time.Hour).Format(time.RFC3339)).stdout)
	if token == "" || payload == "" {
		t.Fatal("setup failed")
	}

	var all []int64
	const rounds = 4
	s := start(t, procOpts{args: []string{"serve", "--data", dir, "--addr", "127.0.0.1:0", "--log-level", "warn"}, env: env})
	for round := range rounds {
		if round > 0 {
			s.restart()
		}
		stop := make(chan struct{})
		got := make(chan []int64, 1)
		go func() { got <- load(s.http, token, payload, 16, stop) }()
		time.Sleep(700 * time.Millisecond)
		graceful := round == rounds-1
		var err error
		if graceful {
			// The last round stops the server the polite way: a graceful
			// shutdown must also lose nothing and exit cleanly.
			err = s.stop()
		} else {
			s.kill9()
		}
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
