package web

import (
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"passgate/assets"
	"passgate/check"
	"passgate/scanner"
	"passgate/web/i18n"
	"passgate/web/view"
)

// Camera mode: the gate page's camera grabs frames from the tablet's
// camera, turns them into 8-bit luma and posts them here; the appliance
// finds the QR code and checks it like any other input. Decoding here
// rather than in the browser needs no third-party JavaScript and works
// in browsers without BarcodeDetector (Chromium on Linux has none).

// cameraPauseMs is how long the camera page waits after a decision before
// it looks again, so the pass still in front of the camera is not checked
// over and over.
const cameraPauseMs = 2000

// handleCamera is the camera scanning page: the live picture, the result
// panel of the gate screen and a way back to it.
func (s *Server) handleCamera(w http.ResponseWriter, r *http.Request) {
	s.startEvents()
	p := s.page(r, "camera.title")
	p.CSS = append(p.CSS, assets.Path("/assets/", "gate.css"), assets.Path("/assets/", "camera.css"))
	p.JS = append(p.JS, assets.Path("/assets/", "sound.js"), assets.Path("/assets/", "result.js"), assets.Path("/assets/", "camera.js"))
	hold, err := s.db.GateHold(r.Context())
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	m := view.Camera{
		MaxWidth: cameraMaxWidth, MaxHeight: cameraMaxHeight, PauseMs: cameraPauseMs,
		Screen: newScreenID(), Entrance: pageEntrance(r), HoldMs: int(hold.Milliseconds()),
	}
	if m.Entrance != "" {
		p.Path = "/gate/camera?entrance=" + url.QueryEscape(m.Entrance)
	}
	s.render(w, r, http.StatusOK, view.CameraPage(p, m))
}

// The camera page sends frames at the camera's own resolution, scaled
// down only to fit cameraMaxWidth×cameraMaxHeight (1080p, the most the
// decoder accepts): a pass held at arm's length covers a third of a 720p
// picture, and a frame shrunk to 640×480 leaves its modules too small to
// read. Decoding a large frame starts with a half-size pass, so the cost
// grows less than the pixels do (see scanner.DecodeFrame).
const (
	cameraMaxWidth  = 1920
	cameraMaxHeight = 1080
)

// frameSlots bounds how many frames are decoded at once, so cameras at
// several gates cannot take every core from the checks of the scanners:
// one core is always left. Each camera page has at most one frame in
// flight, so the wait is short and bounded by the number of cameras.
var frameSlots = make(chan struct{}, max(1, runtime.GOMAXPROCS(0)-1))

// framePool recycles frame buffers: a camera posts several 1-2 MB frames
// a second, which would otherwise all be garbage.
var framePool = sync.Pool{New: func() any { b := make([]byte, 0, 1280*720); return &b }}

// handleCameraFrame decodes one frame, an 8-bit luma plane of w×h pixels
// (query parameters w and h) posted as application/octet-stream. With a
// QR code in it, the code is checked with source "camera:<user>" and the
// answer is the decision as the gate screen's check answers it (the scan
// API's JSON plus "display"); the live feed carries it to every gate
// screen. Without one the answer is 204 and nothing is logged, as no
// check happened. The time spent is in the Server-Timing header.
func (s *Server) handleCameraFrame(w http.ResponseWriter, r *http.Request) {
	s.startEvents()
	start := time.Now()
	t := i18n.FromRequest(r)
	if ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); ct != "application/octet-stream" {
		writePanelError(w, http.StatusUnsupportedMediaType, t, "camera.err.frame")
		return
	}
	q := r.URL.Query()
	g, ok := s.requestScreen(w, r, q.Get("screen"), q.Get("entrance"))
	if !ok {
		return
	}
	width, err1 := strconv.Atoi(q.Get("w"))
	height, err2 := strconv.Atoi(q.Get("h"))
	if err1 != nil || err2 != nil {
		// A size too large for an int is a frame too large.
		if tooBig(q.Get("w"), err1) || tooBig(q.Get("h"), err2) {
			writePanelError(w, http.StatusRequestEntityTooLarge, t, "camera.err.too_large")
			return
		}
		writePanelError(w, http.StatusBadRequest, t, "camera.err.frame")
		return
	}
	if err := scanner.CheckFrameSize(width, height); err != nil {
		frameSizeError(w, t, err)
		return
	}
	n := width * height
	if r.ContentLength >= 0 && r.ContentLength != int64(n) {
		if r.ContentLength > scanner.MaxFramePixels {
			writePanelError(w, http.StatusRequestEntityTooLarge, t, "camera.err.too_large")
			return
		}
		writePanelError(w, http.StatusBadRequest, t, "camera.err.frame")
		return
	}
	bp := framePool.Get().(*[]byte)
	defer framePool.Put(bp)
	if cap(*bp) < n {
		*bp = make([]byte, n)
	}
	buf := (*bp)[:n]
	// Read exactly n bytes, then make sure nothing follows: a chunked
	// body has no length to compare up front.
	body := http.MaxBytesReader(w, r.Body, int64(n)+1)
	if _, err := io.ReadFull(body, buf); err != nil {
		writePanelError(w, http.StatusBadRequest, t, "camera.err.frame")
		return
	}
	if m, _ := body.Read(make([]byte, 1)); m != 0 {
		writePanelError(w, http.StatusRequestEntityTooLarge, t, "camera.err.too_large")
		return
	}
	read := time.Now()
	if s.gateCheckDelay != nil {
		s.gateCheckDelay(r.Context())
	}

	select {
	case frameSlots <- struct{}{}:
	case <-r.Context().Done():
		return // the page gave up on this frame
	}
	text, err := scanner.DecodeFrame(buf, width, height)
	<-frameSlots
	decoded := time.Now()
	timing := fmt.Sprintf("read;dur=%.2f, decode;dur=%.2f", frameMs(read.Sub(start)), frameMs(decoded.Sub(read)))
	if errors.Is(err, scanner.ErrNoCode) {
		w.Header().Set("Server-Timing", timing)
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusNoContent)
		return
	}
	if err != nil {
		frameSizeError(w, t, err)
		return
	}
	source := "camera"
	if u := userFrom(r.Context()); u != nil {
		source = "camera:" + u.Username
	}
	d, err := s.checker.Check(check.WithOrigin(r.Context(), g.origin()), source, text)
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	h := w.Header()
	h.Set("Server-Timing", timing+fmt.Sprintf(", check;dur=%.2f", frameMs(time.Since(decoded))))
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	_, _ = w.Write(append(gateEventJSON(d, g.entrance, false, s.clockZone()), '\n'))
}

// frameSizeError answers a frame whose size the decoder refused.
func frameSizeError(w http.ResponseWriter, t i18n.Printer, err error) {
	var fe *scanner.FrameSizeError
	if errors.As(err, &fe) && fe.TooLarge {
		writePanelError(w, http.StatusRequestEntityTooLarge, t, "camera.err.too_large")
		return
	}
	writePanelError(w, http.StatusBadRequest, t, "camera.err.frame")
}

// tooBig reports whether err is strconv's answer to a positive number out
// of range.
func tooBig(v string, err error) bool {
	return errors.Is(err, strconv.ErrRange) && !strings.HasPrefix(v, "-")
}

func frameMs(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
