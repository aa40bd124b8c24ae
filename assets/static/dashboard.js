// The admin's dashboard (and the city console's) refreshes itself: every few seconds (the panel's
// data-refresh-ms) it fetches the panel alone and puts it in place of the
// old one. A failed fetch keeps the numbers shown and tries again later;
// a session that ended answers with the login page, which is not put in:
// the next full load goes there.
(function () {
  'use strict';
  var panel = document.querySelector('[data-role="dashboard"]');
  if (!panel) return;
  var every = parseInt(panel.dataset.refreshMs, 10) || 30000;
  // The page the panel comes from: the landing page's own panel, or a
  // whole page (the city dashboard) whose panel is taken out of it.
  var url = panel.dataset.refreshUrl || '/admin/dashboard';

  function refresh() {
    fetch(url, { credentials: 'same-origin', cache: 'no-store', redirect: 'manual' })
      .then(function (r) {
        if (!r.ok) throw new Error('status ' + r.status);
        return r.text();
      })
      .then(function (html) {
        var doc = new DOMParser().parseFromString(html, 'text/html');
        var fresh = doc.querySelector('[data-role="dashboard"]');
        var old = document.querySelector('[data-role="dashboard"]');
        if (fresh && old) {
          old.replaceWith(document.importNode(fresh, true));
          document.dispatchEvent(new CustomEvent('dashboard:refreshed'));
        }
      })
      .catch(function () { /* keep what is shown; try again */ })
      .then(function () { setTimeout(refresh, every); });
  }
  setTimeout(refresh, every);
})();
