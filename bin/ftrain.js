#!/usr/bin/env node
// Entry point of the `ftrain` command. Runs the compiled JavaScript in build/ (scripts/build.mjs,
// which `npm ci` runs through `prepare`) when that build is fresh: made from the TypeScript
// sources exactly as they are now (build-fingerprint.js). Otherwise, or with FTRAIN_TSX=1, runs
// the sources through tsx: the same code, only slower to start. It never builds.
// FTRAIN_DEBUG_START=1: say on stderr which of the two starts. FTRAIN_DEBUG: source maps for the
// build's stack traces (they cost ~0.1 s a process, so only then).
import { buildStaleness } from './build-fingerprint.js';

const tsxBecause = process.env.FTRAIN_TSX === '1' ? 'FTRAIN_TSX=1' : buildStaleness();
if (process.env.FTRAIN_DEBUG_START) process.stderr.write(`ftrain: start ${tsxBecause ? `tsx (${tsxBecause})` : 'compiled'}\n`);
if (tsxBecause === null) {
  if (process.env.FTRAIN_DEBUG) process.setSourceMapsEnabled(true);
  await import(new URL('../build/cli/main.js', import.meta.url).href);
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import('../cli/main.ts');
}
