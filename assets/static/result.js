// The decision panel of the gate and camera pages: one place that paints
// a decision, a neutral "ready" state, a check in progress and an error,
// and that clears a result after the hold time, so the next person at the
// door never sees the previous one's answer.
//
// passgateResult.forPage(root) returns the controller of the page's panel
// (the element with data-role="panel"), its hold time and fallback
// headlines read from root's data-hold-ms, data-msg-allow and
// data-msg-deny, so no page script needs to know the panel's markup.
// passgateResult.panel(el, opts) returns the controller of panel el:
//   show(d)      paint a decision (the scan API's JSON plus "display")
//   checking(t, o)  neutral at once while a check runs, with text t
//   error(t, o)     a neutral error with text t; cleared after the hold
//   login(t, o)     the session is over: text t and a login button, kept
//   ready()         back to the neutral "ready" state
// Every message is shown in the page's language (t) with the other
// language's (o) beside it, as a decision's reason is: whoever stands at
// the door may read either.
// opts: holdMs (how long a result stays), lang, allow and deny (fallback
// headlines). Parts are found by data-role; data-testid is for tests.
//
// passgateResult.post(url, type, body) sends a check (a pass or a camera
// frame) and resolves with {status, body}, or rejects when the network
// fails or no answer came within TIMEOUT_MS: both pages then say "scan
// again" instead of leaving the door waiting on a stalled network.
(function () {
  "use strict";

  var TIMEOUT_MS = 3000;

  function post(url, type, body) {
    return new Promise(function (resolve, reject) {
      var ctl = window.AbortController ? new AbortController() : null;
      var done = false;
      var timer = setTimeout(function () {
        if (done) return;
        done = true;
        if (ctl) ctl.abort();
        reject(new Error("timeout"));
      }, TIMEOUT_MS);
      fetch(url, {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": type, "Accept": "application/json" },
        body: body,
        signal: ctl ? ctl.signal : undefined
      }).then(function (resp) {
        if (resp.status === 204) return { status: 204, body: {} };
        return resp.json().then(function (b) { return { status: resp.status, body: b || {} }; },
          function () { return { status: resp.status, body: {} }; });
      }).then(function (r) {
        if (done) return;
        done = true;
        clearTimeout(timer);
        resolve(r);
      }, function (err) {
        if (done) return;
        done = true;
        clearTimeout(timer);
        reject(err);
      });
    });
  }

  var FIELDS = ["reason", "reason-other", "name", "idtail", "color", "tested", "expires", "source", "time"];

  function panel(el, opts) {
    var hold = opts.holdMs > 0 ? opts.holdMs : 8000;
    var lang = opts.lang || "zh-CN";
    var timer = 0;
    var parts = {};
    ["decision", "repeat", "login"].concat(FIELDS).forEach(function (r) {
      parts[r] = el.querySelector("[data-role=" + r + "]");
    });

    function set(state) {
      el.className = "gate-result " + (state === "allow" || state === "deny" ? state : "idle");
      el.dataset.state = state;
    }

    function clear(headline, reason, other) {
      FIELDS.forEach(function (r) { parts[r].textContent = ""; });
      parts.decision.textContent = headline;
      parts.reason.textContent = reason || "";
      parts["reason-other"].textContent = other || "";
      parts.repeat.hidden = true;
      parts.login.hidden = true;
      delete el.dataset.scanId;
    }

    // after clears the panel once the hold time is over.
    function after() {
      clearTimeout(timer);
      timer = setTimeout(ready, hold);
    }

    function ready() {
      clearTimeout(timer);
      set("idle");
      clear(el.dataset.msgReady, el.dataset.msgHint, el.dataset.msgReadyOther);
    }

    function checking(text, other) {
      clearTimeout(timer);
      set("checking");
      clear(text, "", other);
    }

    function error(text, other) {
      set("error");
      clear(text, "", other);
      after();
    }

    function login(text, other) {
      clearTimeout(timer);
      set("error");
      clear(text, "", other);
      parts.login.hidden = false;
    }

    function show(d) {
      var disp = display(d, lang);
      var allowed = d.decision === "allow";
      set(allowed ? "allow" : "deny");
      el.dataset.scanId = d.scan_id;
      parts.decision.textContent = disp.headline || (allowed ? opts.allow : opts.deny);
      parts.reason.textContent = disp.reason || d.reason || "";
      parts["reason-other"].textContent = disp.reason_other || "";
      parts.name.textContent = disp.name || "";
      parts.idtail.textContent = disp.id_tail || "";
      parts.color.textContent = disp.color || "";
      parts.tested.textContent = disp.tested || "";
      parts.expires.textContent = disp.expires || "";
      parts.source.textContent = label(d);
      parts.time.textContent = disp.time || "";
      parts.repeat.textContent = disp.repeat || "";
      parts.repeat.hidden = !d.repeat;
      parts.login.hidden = true;
      after();
    }

    return { show: show, checking: checking, error: error, login: login, ready: ready };
  }

  function forPage(root) {
    var msg = root.dataset;
    return panel(document.querySelector("[data-role=panel]"), {
      holdMs: parseInt(msg.holdMs, 10), lang: document.documentElement.lang || "zh-CN",
      allow: msg.msgAllow, deny: msg.msgDeny
    });
  }

  // display is a decision's words in lang, or in Chinese when lang has
  // none.
  function display(d, lang) {
    return (d.display && (d.display[lang] || d.display["zh-CN"])) || {};
  }

  // label names where a check was made: its source, and its entrance
  // when known.
  function label(d) {
    var s = d.source || "";
    return d.entrance ? s + " · " + d.entrance : s;
  }

  window.passgateResult = { forPage: forPage, display: display, panel: panel, label: label, post: post, TIMEOUT_MS: TIMEOUT_MS };
})();
