// Distinct sounds for allow and deny, generated with the Web Audio API so
// the appliance needs no audio files. Shared by the gate screen and camera
// mode, which call passgateSound.unlock() on a user gesture and
// passgateSound.beep(allowed) on a decision.
(function () {
  "use strict";
  var audio = null, resuming = false;

  // Browsers start audio only after a user gesture (a tap, or a
  // scanner's key press). Ask once at a time: a frame is hundreds of keys.
  function unlock() {
    if (resuming) return;
    var AC = window.AudioContext || window.webkitAudioContext;
    if (!AC) return;
    if (!audio) { try { audio = new AC(); } catch (err) { return; } }
    if (audio.state !== "suspended") return;
    resuming = true;
    audio.resume().then(function () { resuming = false; }, function () { resuming = false; });
  }
  document.addEventListener("pointerdown", unlock, true);
  document.addEventListener("keydown", unlock, true);

  function tone(freq, type, start, dur, gain) {
    var o = audio.createOscillator(), g = audio.createGain();
    o.type = type;
    o.frequency.value = freq;
    g.gain.setValueAtTime(0, start);
    g.gain.linearRampToValueAtTime(gain, start + 0.01);
    g.gain.setValueAtTime(gain, start + dur - 0.02);
    g.gain.linearRampToValueAtTime(0, start + dur);
    o.connect(g);
    g.connect(audio.destination);
    o.start(start);
    o.stop(start + dur + 0.01);
  }

  // Allow: two short rising beeps. Deny: one long low buzz.
  function beep(allowed) {
    unlock(); // allowed without a gesture where the browser permits it
    if (!audio || audio.state !== "running") return;
    var t = audio.currentTime;
    if (allowed) {
      tone(880, "sine", t, 0.09, 0.3);
      tone(1320, "sine", t + 0.12, 0.09, 0.3);
    } else {
      tone(180, "square", t, 0.6, 0.15);
    }
  }

  window.passgateSound = { unlock: unlock, beep: beep };
})();
