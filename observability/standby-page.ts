// What a standby coordinator's HTTP server answers instead of the dashboard: the dashboard is the
// leader's, so a standby's `/` is a small page that says who leads and links to the leader's
// dashboard (and follows when the leadership changes: `dashboard/standby.js` asks `/api/role`
// again and reloads), `/api/state` is a 503 with the same facts as JSON, and `/leader` (the
// readiness check that lets a Kubernetes Service reach only the leader) is a 503 as well.

import type { CoordinatorRoleState, KnownLeader } from './coordinator-role.ts';

type StandbyState = Extract<CoordinatorRoleState, { role: 'standby' }>;

/** `/api/state` on a standby (status 503). */
export interface StandbyAnswer {
  readonly role: 'standby';
  readonly id: string;
  readonly leader: KnownLeader | null;
}

export function standbyAnswer(state: StandbyState): StandbyAnswer {
  return { role: 'standby', id: state.id, leader: state.leader };
}

/** The page's sentence: "this coordinator (c2) is a standby; the leader is c1 at 10.0.0.5:7070". */
export function standbySentence(state: StandbyState): string {
  const l = state.leader;
  return `this coordinator (${state.id}) is a standby; ${l ? `the leader is ${l.id} at ${l.address} (term ${l.term})` : 'no coordinator leads right now'}`;
}

/** `/leader`: 200 on the coordinator that decides (alone or leading), 503 on a standby; one line of text. */
export function leaderProbe(state: CoordinatorRoleState): { readonly status: 200 | 503; readonly text: string } {
  switch (state.role) {
    case 'single':
      return { status: 200, text: 'leader: the only coordinator of the job (its state in its process)' };
    case 'leader':
      return { status: 200, text: `leader: coordinator ${state.id}, term ${state.term}${state.storeUnreachable ? '; the store cannot be reached: no new decision until it answers' : ''}` };
    case 'standby':
      return { status: 503, text: standbySentence(state) };
  }
}

/** A link only to a web page: the URL comes from the store, and is shown, never run. */
function webUrl(url: string | null): string | null {
  if (!url) return null;
  try {
    const u = new URL(url);
    return u.protocol === 'http:' || u.protocol === 'https:' ? u.href : null;
  } catch {
    return null;
  }
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** The whole standby page. `data-*` attributes say what it shows, for its script and for tests. */
export function standbyPageHtml(state: StandbyState): string {
  const l = state.leader;
  const url = webUrl(l?.dashboardUrl ?? null);
  const sentence = escapeHtml(standbySentence(state));
  const link =
    !l ? '<p>This page follows when a coordinator leads.</p>'
    : url ? `<p>The dashboard is the leader's: <a id="leader-link" href="${escapeHtml(url)}">${escapeHtml(url)}</a></p>`
    : `<p>The leader publishes no dashboard address (it runs without a dashboard, or gives none with <code>--dashboard-advertise</code>).</p>`;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>ftrain coordinator ${escapeHtml(state.id)}: standby</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="style.css">
<noscript><meta http-equiv="refresh" content="5"></noscript>
</head>
<body class="standby-page" data-role="standby" data-id="${escapeHtml(state.id)}" data-leader-id="${escapeHtml(l?.id ?? '')}" data-leader-term="${l?.term ?? 0}">
<header class="top">
  <div class="title-row"><h1>ftrain</h1><span class="badge phase-standby">standby</span></div>
</header>
<main class="standby">
  <p id="standby-sentence">${sentence[0]!.toUpperCase()}${sentence.slice(1)}.</p>
  ${link}
  <p class="sub">Only the leader decides and serves the run's dashboard; this coordinator takes over if the leader goes. <span id="standby-follow"></span></p>
</main>
<script src="standby.js"></script>
</body>
</html>
`;
}
