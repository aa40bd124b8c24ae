// The page of a background export: polls the job's status and moves the
// progress bar and the row count; when the job has stopped running, the
// page reloads to show the download link or the outcome. Without script
// the page's Refresh link does the same by hand.
(function () {
  'use strict';
  var job = document.querySelector('[data-role="export-job"]');
  if (!job || job.dataset.state !== 'running') return;
  var url = job.dataset.statusUrl;
  var bar = document.getElementById('export-progress');
  var rows = document.getElementById('export-rows');
  var state = document.getElementById('export-state');

  function poll() {
    fetch(url, { credentials: 'same-origin', cache: 'no-store', headers: { Accept: 'application/json' } })
      .then(function (r) {
        // Gone (expired, or the appliance restarted): the page says so.
        if (r.status === 404) {
          location.reload();
          return null;
        }
        if (!r.ok) throw new Error('status ' + r.status);
        return r.json();
      })
      .then(function (s) {
        if (s === null) return;
        if (s.state !== 'running') {
          location.reload();
          return;
        }
        bar.max = Math.max(s.total, 1);
        bar.value = s.done;
        bar.textContent = s.text;
        rows.textContent = s.text;
        state.textContent = s.stateText;
        setTimeout(poll, 500);
      })
      .catch(function () {
        // The appliance restarted or the network dropped: try again a
        // little later rather than hammering it.
        setTimeout(poll, 3000);
      });
  }
  setTimeout(poll, 300);
})();
