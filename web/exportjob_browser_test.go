package web_test

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"

	"passgate/export"
	"passgate/store"
)

// steppedRun is an export.Run whose first progress report is held: the
// test then reports one more row by hand (step), which the page must
// show without a reload, and finally lets the export go on (release) or
// cancels it.
type steppedRun struct {
	started, step chan struct{}
	release       chan struct{}
	once          sync.Once
}

func (s *steppedRun) run(ctx context.Context, db *store.DB, w io.Writer, r *export.Request, p export.Progress) (int64, error) {
	first := true
	return export.Run(ctx, db, w, r, func(done, total int64) {
		p(done, total)
		if !first {
			return
		}
		first = false
		s.started <- struct{}{}
		select {
		case <-s.step:
			p(1, total)
		case <-s.release:
		case <-ctx.Done():
			return
		}
		select {
		case <-s.release:
		case <-ctx.Done():
		}
	})
}

// TestExportJobBrowser: an admin starts an export from the form, watches
// its progress bar move, cancels it; starts another, and downloads the
// file when it is done, under its Chinese name, in headless Chromium.
func TestExportJobBrowser(t *testing.T) {
	t.Parallel()
	base, ts := startBrowserServer(t)
	sr := &steppedRun{started: make(chan struct{}, 4), step: make(chan struct{}), release: make(chan struct{})}
	defer sr.once.Do(func() { close(sr.release) })
	ts.Web.SetExportRun(sr.run)
	now := time.Now()
	for i, src := range []string{"南门闸机", "东门", "西门"} {
		if err := ts.DB.LogScan(t.Context(), &store.Scan{At: now.Add(-time.Duration(i+1) * time.Minute), Source: src, Decision: "allow", Reason: "ok"}); err != nil {
			t.Fatal(err)
		}
	}
	ctx := newBrowser(t)
	browserLogin(t, ctx, base, "admin", ts.AdminPassword, "/admin/export")
	console := watchConsole(ctx)

	// The form's default range is the current month; widen it to cover
	// today whatever day this runs.
	from, to := now.AddDate(0, 0, -2).Format(time.DateOnly), now.AddDate(0, 0, 2).Format(time.DateOnly)
	submit := func() {
		t.Helper()
		evalJS[bool](t, ctx, `(document.getElementById("from").value = "`+from+`", document.getElementById("to").value = "`+to+`", true)`)
		if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`[data-testid="export-submit"]`))); err != nil {
			t.Fatal(err)
		}
	}
	submit()
	waitJS(t, ctx, "the job page with its progress bar", `location.pathname.startsWith("/admin/export/jobs/") && document.querySelector('progress[data-testid="export-progress"]')`, 10*time.Second)
	<-sr.started
	// The page learns the row count from its next poll of the status.
	waitJS(t, ctx, "the bar sized to the 3 rows", `document.querySelector('[data-testid="export-progress"]').max === 3`, 10*time.Second)
	firstJob := evalJS[string](t, ctx, `location.pathname`)
	// The bar moves while the page stays: the script polls the status.
	evalJS[bool](t, ctx, `(window.samePage = true)`)
	sr.step <- struct{}{}
	waitJS(t, ctx, "the bar at one row", `document.querySelector('[data-testid="export-progress"]').value === 1 && document.getElementById("export-rows").textContent.includes("1") && window.samePage`, 10*time.Second)
	screenshot(t, ctx, "export-running")

	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`[data-testid="export-cancel"]`))); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "the cancelled job", `document.querySelector('[data-testid="export-job"][data-state="cancelled"]')`, 10*time.Second)

	// Another export, let run to the end, downloaded for real.
	dir := t.TempDir()
	events := true
	if _, err := chromedp.CallBrowser(ctx, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
		Behavior: browser.SetDownloadBehaviorBehaviorAllow, DownloadPath: dir, EventsEnabled: &events,
		BrowserContextID: chromedp.FromContext(ctx).BrowserContextID, // this test's tabs only
	}); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var suggested, state string
	if err := chromedp.ListenBrowser(ctx, func(ev any) {
		mu.Lock()
		defer mu.Unlock()
		switch e := ev.(type) {
		case *browser.EventDownloadWillBegin:
			suggested = e.SuggestedFilename
		case *browser.EventDownloadProgress:
			state = string(e.State)
		}
	}); err != nil {
		t.Fatal(err)
	}
	sr.once.Do(func() { close(sr.release) })
	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/admin/export"), chromedp.WaitVisible(chromedp.CSS(`[data-testid="export-form"]`))); err != nil {
		t.Fatal(err)
	}
	submit()
	waitJS(t, ctx, "the download link", `document.querySelector('[data-testid="export-download"]')`, 10*time.Second)
	if p := evalJS[string](t, ctx, `location.pathname`); p == firstJob {
		t.Fatal("the second export reused the first one's page")
	}
	screenshot(t, ctx, "export-done")
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`[data-testid="export-download"]`))); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		s := state
		mu.Unlock()
		if s == string(browser.DownloadProgressStateCompleted) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("download state %q", s)
		}
		time.Sleep(20 * time.Millisecond)
	}
	checkExportDownload(t, ts, ctx, console, now, from, to, dir, suggested, firstJob)
}

// checkExportDownload is the end of TestExportJobBrowser: the file the
// browser saved in dir as suggested is the export of from..to, and the
// cancelled job firstJob has no file.
func checkExportDownload(t *testing.T, ts *testServer, ctx context.Context, console *consoleLog, now time.Time, from, to, dir, suggested, firstJob string) {
	t.Helper()
	wantName := "雁塔区_scans_" + now.AddDate(0, 0, -2).Format("20060102") + "-" + now.AddDate(0, 0, 1).Format("20060102") + ".csv"
	if suggested != wantName {
		t.Errorf("download named %q, want %q", suggested, wantName)
	}
	got, err := os.ReadFile(filepath.Join(dir, suggested))
	if err != nil {
		t.Fatal(err)
	}
	var want bytes.Buffer
	// In the district's zone, as the form reads dates.
	loc, err := ts.DB.Location(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	f, _ := export.ParseTime("from", from, loc)
	u, _ := export.ParseTime("to", to, loc)
	if _, err := export.Run(t.Context(), ts.DB, &want, &export.Request{Kind: export.KindScans, Format: export.CSV, From: f, To: u, Location: loc}, nil); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want.Bytes()) || !bytes.Contains(got, []byte("南门闸机")) {
		t.Errorf("downloaded file (%d bytes) differs from the export (%d bytes)", len(got), want.Len())
	}
	console.check(t)
	// Last, as Chromium logs the 404 as an error.
	if st := evalJS[int](t, ctx, `fetch("`+firstJob+`/file").then(r => r.status)`); st != 404 {
		t.Errorf("file of the cancelled export: %d, want 404", st)
	}
}
