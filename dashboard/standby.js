// The standby coordinator's page (observability/standby-page.ts renders it): asks this
// coordinator's /api/role every POLL_MS and reloads the page when the leadership changed, so the
// page follows: another leader to link to, or this coordinator leading (then / is the dashboard).
(function () {
  'use strict';
  const POLL_MS = 2000;
  const body = document.body;
  const follow = document.getElementById('standby-follow');

  function check() {
    fetch('api/role', { cache: 'no-store' })
      .then(function (res) {
        return res.json().then(function (s) {
          if (s.role !== 'standby') return location.reload();
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
  // The dashboard's token came as ?token= and is a cookie now (see app.js): out of the address bar.
  const url = new URL(location.href);
  if (url.searchParams.has('token')) {
    url.searchParams.delete('token');
    history.replaceState(history.state, '', url.pathname + url.search + url.hash);
  }
  setTimeout(check, POLL_MS);
})();
