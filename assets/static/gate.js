// Gate screen: reads passes from a keyboard-wedge scanner (or paste, or
// the manual field), asks the server for a decision, shows it large with
// a sound, and follows the live feed. The decision panel shows only this
// screen's own checks and those of the inputs an admin assigned to its
// entrance; every other check is only listed, with its source.
//
// A wedge scanner types the pass as key presses at US key positions. The
// page assembles characters from KeyboardEvent.code (the physical key)
// and Shift, never from event.key: under a French or German layout, or
// with a Chinese input method active, event.key differs from what the
// scanner meant while event.code stays right.
(function () {
  "use strict";

  var root = document.querySelector(".gate");
  if (!root) return;

  // US layout: code -> [unshifted, shifted].
  var US = {
    Space: [" ", " "], Minus: ["-", "_"], Equal: ["=", "+"], Slash: ["/", "?"],
    Period: [".", ">"], Comma: [",", "<"], Semicolon: [";", ":"], Quote: ["'", "\""],
    BracketLeft: ["[", "{"], BracketRight: ["]", "}"], Backslash: ["\\", "|"],
    Backquote: ["`", "~"], NumpadDecimal: [".", "."], NumpadDivide: ["/", "/"],
    NumpadMultiply: ["*", "*"], NumpadSubtract: ["-", "-"], NumpadAdd: ["+", "+"]
  };
  var letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ";
  for (var i = 0; i < letters.length; i++) {
    var c = letters.charAt(i);
    US["Key" + c] = [c.toLowerCase(), c];
  }
  var shiftedDigits = ")!@#$%^&*(";
  for (var d = 0; d < 10; d++) {
    US["Digit" + d] = [String(d), shiftedDigits.charAt(d)];
    US["Numpad" + d] = [String(d), String(d)];
  }
  var MODIFIERS = { ShiftLeft: 1, ShiftRight: 1, CapsLock: 1 };

  // A scanner types far faster than a person: a frame counts only when
  // it is long enough and its keys came quickly; a pause resets it.
  var MIN_FRAME = 8, MAX_AVG_GAP = 50, RESET_GAP = 100;

  var msg = root.dataset;
  var lang = document.documentElement.lang || "zh-CN";
  var result = passgateResult.forPage(root);
  var recent = document.getElementById("gate-recent");
  var feed = document.getElementById("gate-feed");
  var countAllow = document.getElementById("count-allow");
  var countDeny = document.getElementById("count-deny");
  var lists = document.getElementById("gate-lists");
  var listsAge = document.getElementById("lists-age");
  var form = document.getElementById("gate-manual");
  var input = document.getElementById("gate-payload");
  var seen = {}; // scan ids already counted and listed
  var MAX_ROWS = 20;
  var ended = false; // the login session is over: no more checks or feed

  function isTextTarget(t) {
    if (!t || t.nodeType !== 1) return false;
    var tag = t.tagName;
    return tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT" || t.isContentEditable;
  }

  // ---- keyboard-wedge capture ----
  var buf = [], first = 0, last = 0, enterAt = 0, awaiting = false;

  function reset() { buf = []; first = 0; last = 0; }

  document.addEventListener("keydown", function (e) {
    passgateSound.unlock();
    if (isTextTarget(e.target)) return; // a person typing in a field
    if (e.ctrlKey || e.metaKey || e.altKey) { reset(); return; }
    var now = e.timeStamp || performance.now();
    if (e.code === "Enter" || e.code === "NumpadEnter") {
      var n = buf.length;
      var ok = n >= MIN_FRAME && (last - first) / (n - 1) <= MAX_AVG_GAP && now - last <= RESET_GAP;
      var text = buf.join("");
      reset();
      if (ok) {
        e.preventDefault(); // not a click on a focused button
        enterAt = now;
        awaiting = true;
        check(text);
      }
      return;
    }
    if (MODIFIERS[e.code]) return;
    var keys = US[e.code];
    if (!keys) { reset(); return; } // Tab, arrows...: not a scanner
    if (buf.length && now - last > RESET_GAP) reset();
    if (!buf.length) first = now;
    last = now;
    buf.push(keys[e.shiftKey ? 1 : 0]);
    e.preventDefault(); // no page scroll on space, no find-as-you-type
  }, true);

  // The latency clock runs from the key-up of Enter, the moment a
  // scanner's frame is complete.
  document.addEventListener("keyup", function (e) {
    if ((e.code === "Enter" || e.code === "NumpadEnter") && awaiting && !isTextTarget(e.target)) {
      enterAt = e.timeStamp || performance.now();
    }
  }, true);

  document.addEventListener("paste", function (e) {
    if (isTextTarget(e.target)) return;
    var text = (e.clipboardData || window.clipboardData).getData("text");
    if (!text || !text.trim()) return;
    e.preventDefault();
    enterAt = performance.now();
    awaiting = true;
    check(text.trim());
  });

  form.addEventListener("submit", function (e) {
    e.preventDefault();
    var text = input.value.trim();
    if (!text) { input.focus(); return; }
    input.value = "";
    // Leave the field so the next scan is captured by the page, not typed
    // into the field under the OS keyboard layout.
    input.blur();
    enterAt = performance.now();
    awaiting = true;
    check(text);
  });

  // ---- checking ----
  // Only the newest check may paint: an answer to an earlier one that
  // arrives late is listed, never shown as the current person's. A check
  // with no answer in time is given up (passgateResult.post).
  var seq = 0;
  function check(payload) {
    if (ended) { result.login(msg.msgLogin, msg.msgLoginOther); return; }
    var mine = ++seq;
    result.checking(msg.msgChecking, msg.msgCheckingOther); // the previous answer leaves at once
    passgateResult.post("/gate/check", "application/json",
      JSON.stringify({ payload: payload, screen: msg.screen, entrance: msg.entrance })
    ).then(function (r) {
      if (mine !== seq) {
        if (r.status === 200) list(r.body);
        return;
      }
      if (r.status === 401) { endSession(); return; }
      if (r.status !== 200) {
        if (r.body.error) showError(r.body.error, r.body.error_other);
        else showError(msg.msgNetwork, msg.msgNetworkOther);
        return;
      }
      show(r.body, true);
    }, function () {
      if (mine === seq) showError(msg.msgNetwork, msg.msgNetworkOther);
    });
  }

  function showError(text, other) {
    awaiting = false;
    result.error(text, other);
    passgateSound.beep(false);
  }

  // show paints a decision in the panel, with its sound, and lists it.
  function show(d, local) {
    result.show(d);
    passgateSound.beep(d.decision === "allow");
    list(d);
    if (local && awaiting) {
      awaiting = false;
      var start = enterAt;
      requestAnimationFrame(function () {
        var ms = performance.now() - start;
        document.body.dataset.lastLatencyMs = ms.toFixed(1);
      });
    }
    document.body.dataset.lastScanId = d.scan_id;
  }

  // list counts a decision and adds it to the live list, once.
  function list(d) {
    if (seen[d.scan_id]) return;
    seen[d.scan_id] = true;
    var allowed = d.decision === "allow";
    count(allowed);
    addRow(d, passgateResult.display(d, lang), allowed);
    document.body.dataset.lastListedId = d.scan_id;
  }

  // endSession: the login is over. The panel says so with a login
  // button, and the screen stops listening.
  function endSession() {
    ended = true;
    awaiting = false;
    if (source) { source.close(); source = null; }
    result.login(msg.msgLogin, msg.msgLoginOther);
    feed.dataset.state = "ended";
    feed.textContent = msg.msgLogin;
  }

  // The counters are today's: at midnight in the district's zone (the
  // server's day, not the browser's) they start again.
  function dayNow() {
    try {
      return new Intl.DateTimeFormat("en-CA", {
        timeZone: msg.timeZone || undefined, year: "numeric", month: "2-digit", day: "2-digit"
      }).format(new Date());
    } catch (e) {
      return new Date().toDateString(); // a zone this browser does not know
    }
  }
  var today = dayNow();
  function count(allowed) {
    var now = dayNow();
    if (now !== today) {
      today = now;
      countAllow.textContent = "0";
      countDeny.textContent = "0";
    }
    var el = allowed ? countAllow : countDeny;
    el.textContent = String((parseInt(el.textContent, 10) || 0) + 1);
  }

  function cell(text, cls) {
    var td = document.createElement("td");
    td.textContent = text;
    if (cls) td.className = cls;
    return td;
  }

  function addRow(d, disp, allowed) {
    var tr = document.createElement("tr");
    tr.dataset.testid = "gate-recent-row";
    tr.dataset.scanId = d.scan_id;
    tr.appendChild(cell(disp.time || "", ""));
    tr.appendChild(cell(passgateResult.label(d), ""));
    var res = cell((allowed ? "✓ " : "✗ ") + (allowed ? msg.msgAllow : msg.msgDeny), allowed ? "allow" : "deny");
    res.dataset.testid = "row-decision";
    tr.appendChild(res);
    var reason = cell(disp.reason || d.reason, "");
    if (d.repeat) {
      var span = document.createElement("span");
      span.className = "muted";
      span.textContent = " · " + msg.msgRepeat;
      reason.appendChild(span);
    }
    tr.appendChild(reason);
    recent.insertBefore(tr, recent.firstChild);
    while (recent.children.length > MAX_ROWS) recent.removeChild(recent.lastChild);
  }


  // ---- live feed ----
  var lastEventId = "";
  var source = null;
  function connect() {
    if (ended) return;
    var url = "/gate/events?screen=" + encodeURIComponent(msg.screen) +
      "&entrance=" + encodeURIComponent(msg.entrance || "");
    // A new EventSource (after the browser gave up) does not send
    // Last-Event-ID itself; the query carries it instead.
    if (lastEventId) url += "&last=" + encodeURIComponent(lastEventId);
    source = new EventSource(url);
    source.onopen = function () {
      feed.dataset.state = "live";
      feed.textContent = msg.msgLive;
    };
    function parse(e) {
      if (e.lastEventId) lastEventId = e.lastEventId;
      try { return JSON.parse(e.data); } catch (err) { return null; }
    }
    // A decision: an input at this screen's entrance ("panel") goes in
    // the panel; anything else only in the list.
    source.onmessage = function (e) {
      var d = parse(e);
      if (!d) return;
      if (d.panel) show(d, false); else list(d);
    };
    // A result of this screen's that it missed while reconnecting: too
    // old for the panel.
    source.addEventListener("replay", function (e) {
      var d = parse(e);
      if (d) list(d);
    });
    source.addEventListener("end", endSession);
    source.addEventListener("status", function (e) {
      var st;
      try { st = JSON.parse(e.data); } catch (err) { return; }
      var age = st.lists_age && (st.lists_age[lang] || st.lists_age["zh-CN"]);
      if (age) listsAge.textContent = age;
      lists.dataset.stale = st.lists_stale ? "true" : "false";
      var banner = document.getElementById("lists-banner");
      if (banner) {
        banner.textContent = st.lists_banner || "";
        banner.hidden = !st.lists_banner;
      }
      if (st.inputs) showInputs(st.inputs);
      var waiting = document.getElementById("sync-waiting");
      if (waiting && typeof st.sync_waiting === "number") waiting.textContent = String(st.sync_waiting);
    });
    source.onerror = function () {
      if (ended) return;
      feed.dataset.state = "offline";
      feed.textContent = msg.msgOffline;
      if (source.readyState === EventSource.CLOSED) {
        // The browser retries by itself unless the server refused the
        // stream; then try again later.
        source = null;
        setTimeout(connect, 5000);
      }
    };
  }
  // The appliance's own scanners (serial, evdev): connected or not.
  function showInputs(list) {
    var ul = document.getElementById("gate-inputs");
    if (!ul) return;
    while (ul.firstChild) ul.removeChild(ul.firstChild);
    list.forEach(function (it) {
      var li = document.createElement("li");
      li.dataset.name = it.name;
      li.dataset.connected = it.connected ? "true" : "false";
      li.textContent = (it.connected ? "✓ " : "✗ ") + it.name + " " +
        (it.connected ? ul.dataset.msgConnected : ul.dataset.msgDisconnected);
      ul.appendChild(li);
    });
  }
  connect();
})();
