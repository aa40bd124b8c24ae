package web_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"passgate/pass"
	"passgate/store"
	"passgate/web/i18n"
)

// newCameraBrowser is newBrowser with a fake camera that plays video (a
// .y4m or .mjpeg file) in a loop, and camera permission granted without
// asking. Without Chromium the test is skipped, except under CI=true.
func newCameraBrowser(t *testing.T, video string) context.Context {
	t.Helper()
	requireChromium(t)
	opts := append(browserFlags(t.TempDir()),
		// The camera: a fake capture device fed from the video file, and
		// the permission prompt answered yes.
		chromedp.Flag("use-fake-device-for-media-stream", true),
		chromedp.Flag("use-fake-ui-for-media-stream", true),
		chromedp.Flag("use-file-for-fake-video-capture", video),
	)
	ctx, stop, err := startChromium(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	return ctx
}

// passVideo renders text as a pass QR (pass.QRPNG at scale 6) and makes a
// 3 s, 640×480 video of it on white with ffmpeg, as Chromium's fake
// camera plays it. Without ffmpeg the test is skipped, except under
// CI=true.
func passVideo(t *testing.T, text string) string {
	t.Helper()
	ffmpeg, err := exec.LookPath("ffmpeg")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("camera test needs ffmpeg (install Debian's ffmpeg): %v", err)
		}
		t.Skipf("camera test skipped: ffmpeg not found (install Debian's ffmpeg to run it)")
	}
	png, _, err := pass.QRPNG(text, 6)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	qr, video := filepath.Join(dir, "qr.png"), filepath.Join(dir, "pass.y4m")
	if err := os.WriteFile(qr, png, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(ffmpeg, "-hide_banner", "-loglevel", "error", "-y",
		"-loop", "1", "-i", qr, "-t", "3", "-r", "10", "-pix_fmt", "yuv420p",
		"-vf", "scale=640:480:force_original_aspect_ratio=decrease,pad=640:480:(ow-iw)/2:(oh-ih)/2:white",
		video)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg: %v\n%s", err, out)
	}
	return video
}

func TestCameraBrowser(t *testing.T) {
	// Not parallel: it bounds how soon the gate screen shows a check,
	// which other tests' load would delay.
	ts := newTestServer(t)
	t.Cleanup(ts.Srv.CloseClientConnections) // the gate screen's stream is still open
	base := ts.Srv.URL
	ts.createUser(t, "wang", store.UserStaff, "staff-password-1")
	green := readablePass(t, ts.DB, "张三明", "610113199001011230", 0)
	video := passVideo(t, green)
	gate := newCameraBrowser(t, video)

	// The gate screen is open in the first tab, following the live feed.
	browserLogin(t, gate, base, "wang", "staff-password-1", "/gate")
	waitJS(t, gate, "the live feed", `document.querySelector('[data-testid=feed-status]').dataset.state === 'live'`, 5*time.Second)

	// Note when each check reaches the gate screen, by the wall clock the
	// scan log uses too.
	evalJS[bool](t, gate, `window.__shownAt = {};
new MutationObserver(function () {
  document.querySelectorAll('#gate-recent tr[data-scan-id]').forEach(function (tr) {
    if (!window.__shownAt[tr.dataset.scanId]) window.__shownAt[tr.dataset.scanId] = Date.now();
  });
}).observe(document.getElementById('gate-recent'), { childList: true });
true`)

	// The camera page in a second tab of the same browser (same login).
	cam, cancel := chromedp.NewContext(gate)
	defer cancel()
	console := watchConsole(cam)
	if err := chromedp.Do(cam, chromedp.Navigate(base+"/gate/camera")); err != nil {
		t.Fatal(err)
	}
	waitJS(t, cam, "the camera decision", `document.getElementById('gate-result').dataset.state === 'allow' && document.body.dataset.lastScanId`, 15*time.Second)
	text := func(ctx context.Context, testid string) string {
		t.Helper()
		return evalJS[string](t, ctx, `document.querySelector('#gate-result [data-testid=`+testid+`]').textContent.trim()`)
	}
	if got, want := text(cam, "result-name"), pass.MaskName("张三明"); got != want {
		t.Errorf("camera panel name %q, want %q", got, want)
	}
	if icon := evalJS[string](t, cam, `[].filter.call(document.querySelectorAll('#gate-result [data-testid=result-icon] svg'),
		function (e) { return getComputedStyle(e).display !== 'none'; }).map(function (e) { return e.getAttribute('class'); }).join()`); icon != "icon icon-allow" {
		t.Errorf("camera panel icon %q, want the allow icon", icon)
	}
	scanID, err := strconv.ParseInt(evalJS[string](t, cam, `document.body.dataset.lastScanId`), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	scans, err := ts.DB.FindScans(t.Context(), store.ScanFilter{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(scans, func(s *store.Scan) bool { return s.ID == scanID })
	if i < 0 || scans[i].Source != "camera:wang" || scans[i].Decision != "allow" {
		t.Fatalf("scan %d not logged as an allow from camera:wang: %+v", scanID, scans)
	}
	t.Logf("browser, first frame after the page opened: frame captured → decision painted %s ms (answer received %s ms; capture and luma %s ms)",
		evalJS[string](t, cam, `document.body.dataset.lastLatencyMs`), evalJS[string](t, cam, `document.body.dataset.lastRoundTripMs`),
		evalJS[string](t, cam, `document.body.dataset.lastGrabMs`))
	screenshot(t, cam, "camera")

	// The open gate screen lists the camera's check through the live feed
	// within a second of the check; the camera page is another screen,
	// so the check stays out of the gate screen's panel.
	id := strconv.FormatInt(scanID, 10)
	waitJS(t, gate, "the camera check on the gate screen", `window.__shownAt["`+id+`"]`, 3*time.Second)
	if got := evalJS[string](t, gate, `document.getElementById('gate-result').dataset.state`); got != "idle" {
		t.Errorf("another screen's camera check took over the gate screen's panel: %q", got)
	}
	shown := time.UnixMilli(int64(evalJS[float64](t, gate, `window.__shownAt["`+id+`"]`)))
	if d := shown.Sub(scans[i].At); d > time.Second {
		t.Errorf("the gate screen showed the camera check %v after it was made, want within 1 s", d)
	} else {
		t.Logf("gate screen showed the camera check %v after it was made", d.Round(time.Millisecond))
	}
	if got := evalJS[string](t, gate, `document.querySelector('#gate-recent [data-scan-id="`+id+`"] td:nth-child(2)').textContent`); got != "camera:wang" {
		t.Errorf("gate row source %q, want camera:wang", got)
	}

	logCameraLatency(t, cam, id, console)
}

// logCameraLatency logs the camera page's latency over more
// decisions after the one with scan id, then checks its console.
func logCameraLatency(t *testing.T, cam context.Context, id string, console *consoleLog) {
	t.Helper()
	// Latency over more decisions: scan again sooner than the page does.
	var lat, trip []float64
	evalJS[bool](t, cam, `document.querySelector('.camera').dataset.pauseMs = "100"; true`)
	last := id
	for len(lat) < 15 {
		waitJS(t, cam, "the next camera decision", `document.body.dataset.lastScanId !== "`+last+`"`, 5*time.Second)
		last = evalJS[string](t, cam, `document.body.dataset.lastScanId`)
		v, err := strconv.ParseFloat(evalJS[string](t, cam, `document.body.dataset.lastLatencyMs`), 64)
		if err != nil {
			t.Fatal(err)
		}
		lat = append(lat, v)
		rt, _ := strconv.ParseFloat(evalJS[string](t, cam, `document.body.dataset.lastRoundTripMs`), 64)
		trip = append(trip, rt)
	}
	slices.Sort(lat)
	slices.Sort(trip)
	t.Logf("browser: frame captured → answer received: median %.1f ms", trip[len(trip)/2])
	t.Logf("browser: frame captured → decision painted over %d decisions: median %.1f ms, max %.1f ms; last frame capture and luma %s ms; %s frames without a code",
		len(lat), lat[len(lat)/2], lat[len(lat)-1], evalJS[string](t, cam, `document.body.dataset.lastGrabMs`), evalJS[string](t, cam, `document.body.dataset.framesEmpty || "0"`))
	// Why frames are decoded on the appliance: this browser cannot.
	t.Logf("browser: BarcodeDetector available: %v", evalJS[bool](t, cam, `'BarcodeDetector' in window`))
	console.check(t)
}

// TestCameraBrowser_NoCamera: without a usable camera the page says why
// instead of waiting forever.
func TestCameraBrowser_NoCamera(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	t.Cleanup(ts.Srv.CloseClientConnections)
	ts.createUser(t, "wang", store.UserStaff, "staff-password-1")
	ctx := newBrowser(t) // no fake camera, no permission granted
	console := watchConsole(ctx)
	browserLogin(t, ctx, ts.Srv.URL, "wang", "staff-password-1", "/gate")
	zh := i18n.Printer{Lang: i18n.ZH}
	status := `document.querySelector('[data-testid=camera-status]')`

	t.Run("not a secure context", func(t *testing.T) {
		tab, cancel := chromedp.NewContext(ctx)
		defer cancel()
		// As a page opened over plain http from another host sees it.
		if _, err := chromedp.Call(tab, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{
			Source: `Object.defineProperty(window, "isSecureContext", { get: function () { return false; } });`,
		}); err != nil {
			t.Fatal(err)
		}
		if err := chromedp.Do(tab, chromedp.Navigate(ts.Srv.URL+"/gate/camera")); err != nil {
			t.Fatal(err)
		}
		waitJS(t, tab, "the camera error", status+`.dataset.state === 'error'`, 5*time.Second)
		want := zh.T("camera.err.insecure")
		if got := evalJS[string](t, tab, status+`.textContent`); got != want {
			t.Errorf("status %q, want %q", got, want)
		}
		if got := evalJS[string](t, tab, `document.querySelector('#gate-result [data-testid=result-decision]').textContent`); got != want {
			t.Errorf("panel %q, want %q", got, want)
		}
		if got := evalJS[string](t, tab, `document.querySelector('#gate-result [data-testid=result-reason-other]').textContent`); got != zh.OtherT("camera.err.insecure") {
			t.Errorf("panel beside it %q, want %q", got, zh.OtherT("camera.err.insecure"))
		}
		if evalJS[bool](t, tab, `document.getElementById('camera-restart').hidden`) {
			t.Error("no way to try again")
		}
	})

	t.Run("camera refused or missing", func(t *testing.T) {
		tab, cancel := chromedp.NewContext(ctx)
		defer cancel()
		if err := chromedp.Do(tab, chromedp.Navigate(ts.Srv.URL+"/gate/camera")); err != nil {
			t.Fatal(err)
		}
		waitJS(t, tab, "the camera error", status+`.dataset.state === 'error'`, 10*time.Second)
		got := evalJS[string](t, tab, status+`.textContent`)
		if !slices.Contains([]string{zh.T("camera.err.denied"), zh.T("camera.err.no_camera"), zh.T("camera.err.unavailable")}, got) {
			t.Errorf("status %q, want a camera error message", got)
		}
		t.Logf("without a camera: %s", got)
	})
	console.check(t)
}

// TestCameraBrowser_NetworkTimeout: a frame with no answer within 3 s (a
// stalled network) leaves the camera page's panel saying "scan again", as
// the gate screen's does, instead of waiting on it; when the network
// comes back the camera reads again.
func TestCameraBrowser_NetworkTimeout(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	t.Cleanup(ts.Srv.CloseClientConnections)
	ts.createUser(t, "wang", store.UserStaff, "staff-password-1")
	green := readablePass(t, ts.DB, "张三明", "610113199001011230", 0)
	var stalled atomic.Bool
	stalled.Store(true)
	ts.Web.SetGateCheckDelay(func(ctx context.Context) {
		if !stalled.Load() {
			return
		}
		select {
		case <-time.After(6 * time.Second):
		case <-ctx.Done():
		}
	})
	ctx := newCameraBrowser(t, passVideo(t, green))
	console := watchConsole(ctx)
	browserLogin(t, ctx, ts.Srv.URL, "wang", "staff-password-1", "/gate")
	start := time.Now()
	if err := chromedp.Do(ctx, chromedp.Navigate(ts.Srv.URL+"/gate/camera")); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "the network error", `document.getElementById('gate-result').dataset.state === 'error'`, 8*time.Second)
	if took := time.Since(start); took < 2800*time.Millisecond {
		t.Errorf("gave up after %v, want 3 s", took)
	}
	zh := i18n.Printer{Lang: i18n.ZH}
	if got := evalJS[string](t, ctx, `document.querySelector('#gate-result [data-testid=result-decision]').textContent`); got != zh.T("gate.err.network") {
		t.Errorf("camera panel %q, want %q", got, zh.T("gate.err.network"))
	}
	if got := evalJS[string](t, ctx, `document.querySelector('#gate-result [data-testid=result-reason-other]').textContent`); got != zh.OtherT("gate.err.network") {
		t.Errorf("camera panel beside it %q, want %q", got, zh.OtherT("gate.err.network"))
	}
	screenshot(t, ctx, "camera-network-error")
	stalled.Store(false)
	waitJS(t, ctx, "a decision once the network is back", `document.getElementById('gate-result').dataset.state === 'allow'`, 12*time.Second)
	console.check(t)
}
