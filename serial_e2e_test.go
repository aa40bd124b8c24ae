package main

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"

	"passgate/store"
)

// A serial scanner given on the command line is read by `passgate serve`:
// its scans are checked, logged with its name and its state is in /readyz.
func TestServe_SerialScanner(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{"PASSGATE_ADMIN_PASSWORD": "a long admin password"}
	text := strings.TrimSpace(runCLI(t, env, "", "issue", "--data", dir, "--name", "周八", "--id", "E2468135", "--tested-at", time.Now().Add(-time.Hour).Format(time.RFC3339)).stdout)

	master, slave, err := pty.Open()
	if err != nil {
		t.Skipf("no pty here: %v", err)
	}
	defer master.Close()
	defer slave.Close()
	link := filepath.Join(t.TempDir(), "usb-scanner-if00")
	if err := os.Symlink(slave.Name(), link); err != nil {
		t.Fatal(err)
	}

	srv := start(t, procOpts{inProcess: true, env: env, args: []string{"serve", "--data", dir, "--addr", "127.0.0.1:0", "--serial", "east-gate=" + link + ",suffix=cr"}})
	base := srv.http
	connected := func() bool {
		resp, err := http.Get(base + "/readyz")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		var body struct {
			Inputs []struct {
				Name      string `json:"name"`
				Connected bool   `json:"connected"`
			} `json:"inputs"`
		}
		json.NewDecoder(resp.Body).Decode(&body)
		return len(body.Inputs) == 1 && body.Inputs[0].Name == "east-gate" && body.Inputs[0].Connected
	}
	for deadline := time.Now().Add(10 * time.Second); !connected(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the serial input never showed connected in /readyz")
		}
	}
	if _, err := master.Write([]byte(text + "\r")); err != nil {
		t.Fatal(err)
	}
	db, err := store.Open(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		scans, err := db.FindScans(context.Background(), store.ScanFilter{Limit: 1})
		if err != nil {
			t.Fatal(err)
		}
		if len(scans) == 1 {
			if scans[0].Source != "east-gate" || scans[0].Decision != "allow" {
				t.Fatalf("logged %+v, want an allow from east-gate", scans[0])
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the serial scan was not logged")
		}
	}
	if err := srv.stop(); err != nil {
		t.Fatalf("serve exited %v: %s", err, srv.logs)
	}
}
