package web_test

import (
	"context"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/creack/pty"

	"passgate/scanner"
	"passgate/store"
)

// A scan read from a USB serial scanner (a pty here) appears within a
// second in the panel of a gate screen at the scanner's entrance.
func TestSerialScanOnGateScreen(t *testing.T) {
	t.Parallel()
	ctx := newBrowser(t)
	base, ts := startBrowserServer(t)
	ts.createUser(t, "wang", store.UserStaff, "staff-password-1")
	green := issuePass(t, ts.DB, "张三明", "610113199001011230", 0)
	if err := ts.DB.SetEntrance(t.Context(), "east-gate", "东门", "admin"); err != nil {
		t.Fatal(err)
	}

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
	inputs := scanner.NewInputs()
	rctx, stop := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		defer close(done)
		scanner.NewSerialReader(scanner.SerialConfig{Name: "east-gate", Path: link, Baud: 9600, Suffix: "cr"}, ts.Checker, inputs, nil).Run(rctx)
	}()
	defer func() { stop(); <-done }()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if l := inputs.List(); len(l) == 1 && l[0].Connected {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("serial reader did not connect")
		}
	}

	browserLogin(t, ctx, base, "wang", "staff-password-1", "/gate")
	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/gate?entrance="+url.QueryEscape("东门"))); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "the live feed", `document.querySelector('[data-testid=feed-status]').dataset.state === 'live'`, 5*time.Second)
	start := time.Now()
	if _, err := master.Write([]byte(green + "\r")); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "the serial scan on the screen", `document.getElementById('gate-result').dataset.state === 'allow'`, time.Second)
	t.Logf("serial line to gate screen: %v", time.Since(start).Round(time.Millisecond))
	if got := evalJS[string](t, ctx, `document.querySelector('[data-testid=result-source]').textContent`); got != "east-gate · 东门" {
		t.Errorf("panel source %q", got)
	}
	row := evalJS[string](t, ctx, `document.querySelector('[data-testid=gate-recent-row]').textContent`)
	if !strings.Contains(row, "east-gate") || !strings.Contains(row, "✓") {
		t.Errorf("newest row %q, want the allow from east-gate", row)
	}
}
