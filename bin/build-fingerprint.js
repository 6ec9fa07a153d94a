// Whether build/ (the compiled JavaScript, scripts/build.mjs) may run instead of the TypeScript
// sources. Its fingerprint is a hash of the path and bytes of every TypeScript file in the folders
// tsc compiles (RUNTIME_FOLDERS) and of the two tsconfig files; the build writes it last, into
// build/, and bin/ftrain.js runs build/ only while it still matches the sources as they are now.
// Hashing ~180 files costs a few ms. Plain JavaScript: it runs before tsx is registered, or instead.

import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const PACKAGE_ROOT = fileURLToPath(new URL('..', import.meta.url));
export const BUILD_DIR = 'build';
export const FINGERPRINT_FILE = 'build/.source-fingerprint';
/** The `include` of tsconfig.build.json: everything the bin can load (a unit test keeps the two equal). */
export const RUNTIME_FOLDERS = ['cli', 'common', 'domain', 'coordinator', 'worker', 'snapshot-manager', 'observability', 'chaos', 'bench', 'experiment', 'proto'];
const CONFIG_FILES = ['tsconfig.json', 'tsconfig.build.json'];
const TYPESCRIPT = /\.[cm]?tsx?$/;

/** The TypeScript files under `folder` (relative to root), with '/' separators; none if it is missing. */
function typescriptFiles(root, folder, out) {
  let entries;
  try {
    entries = readdirSync(join(root, folder), { withFileTypes: true });
  } catch (err) {
    if (err.code === 'ENOENT') return out;
    throw err;
  }
  for (const entry of entries) {
    const rel = `${folder}/${entry.name}`;
    if (entry.isDirectory()) typescriptFiles(root, rel, out);
    else if (entry.isFile() && TYPESCRIPT.test(entry.name)) out.push(rel);
  }
  return out;
}

/** The fingerprint of the sources under `root` as they are now (hex). */
export function sourceFingerprint(root = PACKAGE_ROOT) {
  const files = RUNTIME_FOLDERS.flatMap((folder) => typescriptFiles(root, folder, [])).sort();
  const hash = createHash('sha256');
  for (const rel of [...CONFIG_FILES, ...files]) {
    const bytes = readFileSync(join(root, rel));
    hash.update(`${rel}\0${bytes.length}\0`).update(bytes);
  }
  return hash.digest('hex');
}

/** Why build/ under `root` may not run: null when it may (it is fresh), else a short reason. */
export function buildStaleness(root = PACKAGE_ROOT) {
  let built;
  try {
    built = readFileSync(join(root, FINGERPRINT_FILE), 'utf8').trim();
  } catch {
    return 'no build';
  }
  try {
    return built === sourceFingerprint(root) ? null : 'build is stale';
  } catch (err) {
    return `sources unreadable: ${err.code ?? err.message}`;
  }
}
