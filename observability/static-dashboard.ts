// The dashboard as one self-contained HTML file for a finished run (`ftrain report --html`):
// the page's stylesheet, Chart.js, the data and the page's script inlined, so it opens from disk
// with no server and no network.

import { readFileSync } from 'node:fs';
import { DASHBOARD_ASSETS } from './dashboard-server.ts';
import type { DashboardData } from './dashboard-data.ts';

/** The lines of dashboard/index.html that load its assets; each is replaced by the asset inline. */
export const ASSET_TAGS = {
  style: '<link rel="stylesheet" href="style.css">',
  chart: '<script src="vendor/chart.umd.js"></script>',
  app: '<script src="app.js"></script>',
} as const;

/** Thrown when dashboard/index.html no longer has a tag the static page replaces. */
export class DashboardTemplateError extends Error {
  override readonly name = 'DashboardTemplateError';
  constructor(readonly tag: string) {
    super(`dashboard/index.html has no line ${tag}: the static page cannot inline its assets`);
  }
}

function asset(path: string): string {
  return readFileSync(DASHBOARD_ASSETS[path]!.file(), 'utf8');
}

/** Text inside a <script> element must not close it early. */
function scriptSafe(text: string): string {
  return text.replace(/<\/(script)/gi, '<\\/$1').replace(/<!--/g, '<\\!--');
}

function replaceTag(html: string, tag: string, replacement: string): string {
  const at = html.indexOf(tag);
  if (at < 0) throw new DashboardTemplateError(tag);
  return html.slice(0, at) + replacement + html.slice(at + tag.length);
}

export function staticDashboardHtml(data: DashboardData): string {
  let html = asset('/');
  html = replaceTag(html, ASSET_TAGS.style, `<style>\n${asset('/style.css')}\n</style>`);
  html = replaceTag(html, ASSET_TAGS.chart, `<script>\n${scriptSafe(asset('/vendor/chart.umd.js'))}\n</script>`);
  // JSON in a script element: only "<" can end it early, and \u003c is the same string to JSON.parse.
  const json = JSON.stringify(data).replace(/</g, '\\u003c');
  html = replaceTag(html, ASSET_TAGS.app, `<script type="application/json" id="ftrain-data">${json}</script>\n<script>\n${scriptSafe(asset('/app.js'))}\n</script>`);
  return html;
}
