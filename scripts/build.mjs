#!/usr/bin/env node
// `npm run build`, and `prepare` (so `npm ci` runs it): compiles the runtime folders into build/
// (tsconfig.build.json) for bin/ftrain.js. Plain JavaScript: no tsx. Removes the old fingerprint
// first and writes the new one last, so a build that fails or is still running is never run.
// Without TypeScript (`npm ci --omit=dev`) it builds nothing and exits 0: the bin runs the sources
// through tsx then.

import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const started = performance.now();

let tsc;
try {
  tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
} catch {
  console.log('ftrain build: skipped, TypeScript is not installed (a production install); bin/ftrain.js runs the sources through tsx');
  process.exit(0);
}
const { BUILD_DIR, FINGERPRINT_FILE, sourceFingerprint } = await import('../bin/build-fingerprint.js');
const buildDir = join(root, BUILD_DIR);

rmSync(join(root, FINGERPRINT_FILE), { force: true });
// --noCheck: `npm test` type-checks on its own (npm run typecheck); the output is the same.
const compile = spawnSync(process.execPath, [tsc, '-p', 'tsconfig.build.json', '--noCheck'], { cwd: root, stdio: 'inherit' });
if (compile.status !== 0) {
  console.error(`ftrain build: tsc failed (${compile.signal ?? `exit ${compile.status}`}); bin/ftrain.js runs the sources through tsx`);
  process.exit(compile.status || 1);
}

// Output of sources since deleted or renamed: nothing imports it, but it should not linger.
let removed = 0;
function removeOrphans(dir) {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) {
      removeOrphans(path);
      if (readdirSync(path).length === 0) rmSync(path, { recursive: true });
      continue;
    }
    const source = join(root, relative(buildDir, path)).replace(/\.js(\.map)?$/, '.ts');
    if (/\.js(\.map)?$/.test(entry.name) && !existsSync(source)) {
      rmSync(path);
      removed++;
    }
  }
}
removeOrphans(buildDir);

// Last: from now on the bin runs build/ (while the sources stay as they are).
writeFileSync(join(root, FINGERPRINT_FILE), `${sourceFingerprint(root)}\n`);
const seconds = ((performance.now() - started) / 1000).toFixed(1);
console.log(`ftrain build: build/ is fresh (${seconds} s${removed ? `, ${removed} stale files removed` : ''})`);
