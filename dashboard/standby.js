// The standby coordinator's page (observability/standby-page.ts renders it): asks this
// coordinator's /api/state every POLL_MS and reloads the page when the leadership changed, so the
// page follows: another leader to link to, or this coordinator leading (then /api/state answers
// 200 and / is the dashboard).
(function () {
  'use strict';
  const POLL_MS = 2000;
  const body = document.body;
  const follow = document.getElementById('standby-follow');

  function check() {
    fetch('api/state', { cache: 'no-store' })
      .then(function (res) {
        if (res.ok) return location.reload();
        return res.json().then(function (s) {
          const leader = s.leader || { id: '', term: 0 };
          if (leader.id !== body.getAttribute('data-leader-id') || String(leader.term) !== body.getAttribute('data-leader-term')) return location.reload();
          follow.textContent = '';
          setTimeout(check, POLL_MS);
        });
      })
      .catch(function () {
        follow.textContent = 'This coordinator does not answer right now: trying again.';
        setTimeout(check, POLL_MS);
      });
  }
  setTimeout(check, POLL_MS);
})();
