// Camera scanning: grabs frames from the device camera, turns each into
// an 8-bit luma plane (grayscale, one byte per pixel) at the camera's own
// resolution (scaled down only beyond the page's limit, 1080p), and posts it to the appliance, which finds the QR
// code and checks it. The decision is shown in the gate screen's result
// panel with the gate's words, icons, colours and sounds.
//
// Frames go out one at a time: the next is captured only after the
// answer to the last, at most ~6-7 a second, so a slow network or a busy
// appliance slows the camera down instead of queueing frames. After a
// decision the camera pauses, so the pass still held up is not checked
// again and again.
(function () {
  "use strict";

  var root = document.querySelector(".camera");
  if (!root) return;

  var msg = root.dataset;
  var result = passgateResult.forPage(root);
  var video = document.getElementById("camera-video");
  var status = document.getElementById("camera-status");
  var restart = document.getElementById("camera-restart");
  var FRAME_MS = 150; // one frame every 150 ms at most: ~6.7 frames/s
  var maxW = parseInt(msg.maxWidth, 10) || 1920;
  var maxH = parseInt(msg.maxHeight, 10) || 1080;
  var canvas = document.createElement("canvas");
  var ctx2d = null;
  var stream = null, timer = 0, running = false;

  function setStatus(state, text) {
    status.dataset.state = state;
    status.textContent = text;
  }

  // ---- camera ----
  function start() {
    restart.hidden = true;
    // getUserMedia exists only in a secure context: https, or localhost.
    if (!window.isSecureContext || !navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      fail("msgInsecure");
      return;
    }
    setStatus("starting", msg.msgStarting);
    navigator.mediaDevices.getUserMedia({
      audio: false,
      video: { facingMode: "environment", width: { ideal: 1280 }, height: { ideal: 720 } }
    }).then(function (s) {
      stream = s;
      video.srcObject = s;
      return video.play();
    }).then(function () {
      running = true;
      setStatus("scanning", msg.msgScanning);
      schedule(0);
    }, function (err) {
      var name = err && err.name;
      if (name === "NotAllowedError" || name === "SecurityError") fail("msgDenied");
      else if (name === "NotFoundError" || name === "OverconstrainedError") fail("msgNoCamera");
      else fail("msgUnavailable");
    });
  }

  function stop() {
    running = false;
    clearTimeout(timer);
    if (stream) stream.getTracks().forEach(function (t) { t.stop(); });
    stream = null;
  }

  // fail stops the camera with the message named by key (a data-msg-*
  // attribute), shown in both languages in the panel.
  function fail(key) {
    stop();
    setStatus("error", msg[key]);
    if (key === "msgLogin") result.login(msg[key], msg[key + "Other"]);
    else result.error(msg[key], msg[key + "Other"]);
    restart.hidden = false;
  }

  restart.addEventListener("click", function () { passgateSound.unlock(); start(); });

  function schedule(ms) {
    clearTimeout(timer);
    if (running) timer = setTimeout(scan, ms);
  }

  // grab draws the current picture, at the camera's resolution unless it
  // is larger than maxW×maxH (a small code needs every pixel), and returns
  // its luma plane with its size, or null while the video has no picture.
  function grab() {
    var vw = video.videoWidth, vh = video.videoHeight;
    if (!vw || !vh) return null;
    var k = Math.min(1, maxW / vw, maxH / vh);
    var w = Math.max(1, Math.round(vw * k)), h = Math.max(1, Math.round(vh * k));
    if (canvas.width !== w || canvas.height !== h) {
      canvas.width = w;
      canvas.height = h;
      ctx2d = null;
    }
    if (!ctx2d) ctx2d = canvas.getContext("2d", { willReadFrequently: true });
    ctx2d.drawImage(video, 0, 0, w, h);
    var rgba = ctx2d.getImageData(0, 0, w, h).data;
    var luma = new Uint8Array(w * h);
    for (var i = 0, j = 0; j < luma.length; i += 4, j++) {
      // BT.601 luma in integer arithmetic.
      luma[j] = (77 * rgba[i] + 150 * rgba[i + 1] + 29 * rgba[i + 2]) >> 8;
    }
    return { luma: luma, w: w, h: h };
  }

  function scan() {
    if (!running) return;
    var started = performance.now();
    var frame = grab();
    if (!frame) { schedule(FRAME_MS); return; }
    // What a frame costs the tablet: capture, scale and luma conversion.
    document.body.dataset.lastGrabMs = (performance.now() - started).toFixed(1);
    // No answer within the timeout, or none at all: the panel says
    // "scan again", as the gate screen's does, and the camera tries again.
    passgateResult.post("/gate/camera/frame?w=" + frame.w + "&h=" + frame.h +
      "&screen=" + encodeURIComponent(msg.screen) + "&entrance=" + encodeURIComponent(msg.entrance || ""),
      "application/octet-stream", frame.luma
    ).then(function (r) {
      if (r.status === 204) {
        count("framesEmpty");
        schedule(Math.max(0, FRAME_MS - (performance.now() - started)));
        return;
      }
      if (r.status === 401) { fail("msgLogin"); return; }
      if (r.status !== 200) {
        if (r.body.error) showError(r.body.error, r.body.error_other);
        else showError(msg.msgNetwork, msg.msgNetworkOther);
        schedule(1000);
        return;
      }
      // Capture, upload, decode and check, without the paint.
      document.body.dataset.lastRoundTripMs = (performance.now() - started).toFixed(1);
      show(r.body, started);
      setStatus("paused", msg.msgPaused);
      var pause = parseInt(root.dataset.pauseMs, 10) || 2000;
      clearTimeout(timer);
      timer = setTimeout(function () {
        if (!running) return;
        setStatus("scanning", msg.msgScanning);
        scan();
      }, pause);
    }, function () {
      if (!running) return;
      showError(msg.msgNetwork, msg.msgNetworkOther);
      schedule(1000);
    });
  }

  function count(name) {
    var d = document.body.dataset;
    d[name] = String((parseInt(d[name], 10) || 0) + 1);
  }

  // ---- result panel, as on the gate screen ----
  function showError(text, other) { result.error(text, other); }

  // show renders a decision and records, once painted, how long it took
  // from the captured frame.
  function show(d, started) {
    result.show(d);
    passgateSound.beep(d.decision === "allow");
    requestAnimationFrame(function () {
      document.body.dataset.lastLatencyMs = (performance.now() - started).toFixed(1);
      document.body.dataset.lastScanId = d.scan_id;
    });
  }

  // A hidden tab does not need the camera; take it up again on return.
  document.addEventListener("visibilitychange", function () {
    if (document.hidden) { stop(); setStatus("starting", msg.msgStarting); }
    else if (!stream && restart.hidden) start();
  });

  start();
})();
