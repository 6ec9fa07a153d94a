// Where this install's files are, whether the code runs from its TypeScript sources (tsx, vitest)
// or compiled into build/ (tsconfig.build.json; bin/ftrain.js picks one). Files that are not
// compiled (proto/, dashboard/, the .mjs threads, bin/) live only at the package root, so they are
// found from it, never from a module's own URL: the sources sit at <root>/common/package-root.ts,
// the build at <root>/build/common/package-root.js.

import { fileURLToPath } from 'node:url';

/** True when this code runs compiled, from build/, rather than from its .ts sources. */
export const COMPILED = import.meta.url.endsWith('.js');

/** The package root (where package.json is), as a directory URL. */
export const PACKAGE_ROOT = new URL(COMPILED ? '../../' : '../', import.meta.url);

/** The URL of a file of the package, given from its root: packageUrl('proto/ftrain.proto'). */
export function packageUrl(fromRoot: string): URL {
  return new URL(fromRoot, PACKAGE_ROOT);
}

/** The path of a file of the package, given from its root. */
export function packagePath(fromRoot: string): string {
  return fileURLToPath(packageUrl(fromRoot));
}

/**
 * The module to load for the TypeScript module `module` (written `new URL('./x.ts', import.meta.url)`,
 * which tsc does not rewrite): its compiled `.js` when running compiled, `module` itself otherwise.
 */
export function runtimeModule(module: URL): URL {
  if (!COMPILED || !module.pathname.endsWith('.ts')) return module;
  const compiled = new URL(module.href);
  compiled.pathname = compiled.pathname.replace(/\.ts$/, '.js');
  return compiled;
}
