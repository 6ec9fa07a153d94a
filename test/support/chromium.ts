// Debian's Chromium, headless, driven by playwright-core: the browser the dashboard tests use.
// scripts/install-test-deps.sh installs it (with promtool and etcd) when missing.

import { execFileSync } from 'node:child_process';
import { join, resolve } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';

const ROOT = resolve(import.meta.dirname, '../..');
/** Screenshots a person can look at after the run (the folder is not committed). */
export const SHOTS = join(ROOT, '.ftrain', 'test-screenshots');
const CHROMIUM = '/usr/bin/chromium';
/** Without the background-networking flags Chromium keeps calling out, and this machine refuses it. */
const CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

/** Installs the test dependencies when missing, then starts Chromium headless. */
export async function launchChromium(): Promise<Browser> {
  execFileSync(join(ROOT, 'scripts', 'install-test-deps.sh'), { stdio: 'inherit' });
  return chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, headless: true });
}

/** Collects the page's console errors and uncaught exceptions into `errors`. */
export function collectPageErrors(page: Page, errors: string[]): void {
  page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
  page.on('pageerror', (e) => errors.push(e.message));
}
