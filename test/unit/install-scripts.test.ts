// `npm ci` runs no dependency's install script it has not been told about: every installed
// package with one is named in package.json's allowScripts (npm 11 blocks unlisted ones and warns
// about each; npm 10 ignores the field and runs them, which is harmless for these).

import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = join(import.meta.dirname, '..', '..');
const INSTALL_SCRIPTS = ['preinstall', 'install', 'postinstall'];

/** Every package under node_modules (scoped and nested ones too) with an install script. */
function packagesWithInstallScripts(dir: string, found = new Map<string, string>()): Map<string, string> {
  if (!existsSync(dir)) return found;
  for (const entry of readdirSync(dir)) {
    if (entry.startsWith('.')) continue;
    if (entry.startsWith('@')) {
      packagesWithInstallScripts(join(dir, entry), found);
      continue;
    }
    const pkgDir = join(dir, entry);
    const manifest = join(pkgDir, 'package.json');
    if (existsSync(manifest)) {
      const pkg = JSON.parse(readFileSync(manifest, 'utf8')) as { name?: string; scripts?: Record<string, string> };
      const script = INSTALL_SCRIPTS.find((s) => pkg.scripts?.[s] !== undefined);
      if (pkg.name && script) found.set(pkg.name, `${script}: ${pkg.scripts![script]}`);
    }
    packagesWithInstallScripts(join(pkgDir, 'node_modules'), found);
  }
  return found;
}

describe('install scripts', () => {
  it('every dependency with an install script is decided in allowScripts', () => {
    const allow = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { allowScripts?: Record<string, boolean> }).allowScripts ?? {};
    const found = packagesWithInstallScripts(join(ROOT, 'node_modules'));
    expect(found.size).toBeGreaterThan(0);
    const undecided = [...found].filter(([name]) => !(name in allow) && !Object.keys(allow).some((k) => k.startsWith(`${name}@`)));
    expect(undecided, 'add them to allowScripts in package.json (false unless the package needs its script), and say why in the README').toEqual([]);
  });
});
