// The compiled build (scripts/build.mjs, bin/ftrain.js, bin/build-fingerprint.js) on a small
// package made of the real build files plus a probe: a cli/main.ts that starts a thread through
// common/ts-thread.ts and prints where its modules ran from. The bin must run build/ exactly
// while it matches the sources, and the sources through tsx otherwise or with FTRAIN_TSX=1.
import { spawnSync } from 'node:child_process';
import { appendFileSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const REPO = fileURLToPath(new URL('../../', import.meta.url));
const COPIED = ['package.json', 'tsconfig.json', 'tsconfig.build.json', 'bin/ftrain.js', 'bin/build-fingerprint.js', 'scripts/build.mjs', 'common/package-root.ts', 'common/ts-thread.ts', 'common/ts-thread.mjs'];
const PROBE: Record<string, string> = {
  'cli/main.ts':
    "import { COMPILED, packagePath } from '../common/package-root.ts';\nimport { startTsThread } from '../common/ts-thread.ts';\n" +
    "const thread = startTsThread(new URL('../worker/probe-thread.ts', import.meta.url));\n" +
    'thread.once(\'message\', (threadUrl: string) => {\n' +
    '  process.stdout.write(`${JSON.stringify({ compiled: COMPILED, main: import.meta.url, thread: threadUrl, bin: packagePath(\'bin/ftrain.js\') })}\\n`);\n' +
    '  void thread.terminate();\n});\n',
  'worker/probe-thread.ts': "import { parentPort } from 'node:worker_threads';\nparentPort!.postMessage(import.meta.url);\n",
};

interface Probe {
  readonly start: string;
  readonly compiled: boolean;
  readonly main: string;
  readonly thread: string;
  readonly bin: string;
}

let dir = '';

function write(file: string, text: string): void {
  mkdirSync(dirname(join(dir, file)), { recursive: true });
  writeFileSync(join(dir, file), text);
}

/** Runs the fixture's bin/ftrain.js; FTRAIN_DEBUG_START says which way it started. */
function ftrain(env: Record<string, string> = {}): Probe {
  const run = spawnSync(process.execPath, [join(dir, 'bin', 'ftrain.js')], {
    encoding: 'utf8',
    timeout: 30_000,
    env: { ...process.env, FTRAIN_TSX: '', FTRAIN_DEBUG: '', FTRAIN_DEBUG_START: '1', ...env },
  });
  expect(run.status, run.stderr).toBe(0);
  return { start: run.stderr.trim(), ...(JSON.parse(run.stdout) as Omit<Probe, 'start'>) };
}

function expectCompiled(p: Probe): void {
  expect(p.start).toBe('ftrain: start compiled');
  expect(p).toMatchObject({ compiled: true, main: pathToFileURL(join(dir, 'build/cli/main.js')).href, thread: pathToFileURL(join(dir, 'build/worker/probe-thread.js')).href });
  expect(p.bin).toBe(join(dir, 'bin', 'ftrain.js'));
}

function expectSources(p: Probe, why: string): void {
  expect(p.start).toBe(`ftrain: start tsx (${why})`);
  expect(p).toMatchObject({ compiled: false, main: pathToFileURL(join(dir, 'cli/main.ts')).href, thread: pathToFileURL(join(dir, 'worker/probe-thread.ts')).href });
  expect(p.bin).toBe(join(dir, 'bin', 'ftrain.js'));
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'ftrain-build-'));
  for (const file of COPIED) {
    mkdirSync(dirname(join(dir, file)), { recursive: true });
    copyFileSync(join(REPO, file), join(dir, file));
  }
  for (const [file, text] of Object.entries(PROBE)) write(file, text);
  symlinkSync(join(REPO, 'node_modules'), join(dir, 'node_modules'), 'dir');
  write('build/cli/renamed-long-ago.js', 'throw new Error("stale output");\n');
});

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('compiled build', () => {
  it('lists the same runtime folders in tsconfig.build.json and the fingerprint', async () => {
    const config = JSON.parse(readFileSync(join(REPO, 'tsconfig.build.json'), 'utf8').replace(/^\s*\/\/.*$/gm, '')) as { include: string[] };
    const { RUNTIME_FOLDERS } = (await import(pathToFileURL(join(REPO, 'bin', 'build-fingerprint.js')).href)) as { RUNTIME_FOLDERS: string[] };
    expect([...RUNTIME_FOLDERS].sort()).toEqual([...config.include].sort());
  });

  describe('on a package built by scripts/build.mjs', () => {
    beforeAll(() => {
      const build = spawnSync(process.execPath, [join(dir, 'scripts', 'build.mjs')], { cwd: dir, encoding: 'utf8', timeout: 60_000 });
      expect(build.status, `${build.stdout}${build.stderr}`).toBe(0);
      expect(build.stdout).toMatch(/^ftrain build: build\/ is fresh \(.*1 stale files removed\)$/m);
    }, 60_000);

    it('writes the fingerprint and drops output whose source is gone', () => {
      expect(readFileSync(join(dir, 'build', '.source-fingerprint'), 'utf8')).toMatch(/^[0-9a-f]{64}\n$/);
      expect(existsSync(join(dir, 'build/cli/renamed-long-ago.js'))).toBe(false);
    });

    it('runs build/, threads included, while it matches the sources', () => {
      expectCompiled(ftrain());
    });

    it('runs the sources through tsx with FTRAIN_TSX=1', () => {
      expectSources(ftrain({ FTRAIN_TSX: '1' }), 'FTRAIN_TSX=1');
    });

    it('runs the sources when one of them differs, is added, or the build is gone', () => {
      const thread = join(dir, 'worker/probe-thread.ts');
      const original = readFileSync(thread, 'utf8');
      appendFileSync(thread, '// edited\n');
      expectSources(ftrain(), 'build is stale');
      writeFileSync(thread, original);
      write('domain/new.ts', 'export const added = 1;\n');
      expectSources(ftrain(), 'build is stale');
      rmSync(join(dir, 'domain'), { recursive: true });
      expectCompiled(ftrain());
      const fingerprint = join(dir, 'build', '.source-fingerprint');
      const saved = readFileSync(fingerprint);
      rmSync(fingerprint);
      expectSources(ftrain(), 'no build');
      writeFileSync(fingerprint, saved);
    });
  });

  it('builds nothing and exits 0 without TypeScript (npm ci --omit=dev runs prepare too)', () => {
    const bare = mkdtempSync(join(tmpdir(), 'ftrain-build-bare-'));
    try {
      mkdirSync(join(bare, 'scripts'));
      copyFileSync(join(REPO, 'scripts', 'build.mjs'), join(bare, 'scripts', 'build.mjs'));
      const build = spawnSync(process.execPath, [join(bare, 'scripts', 'build.mjs')], { cwd: bare, encoding: 'utf8', timeout: 30_000 });
      expect(build.status).toBe(0);
      expect(build.stdout).toBe('ftrain build: skipped, TypeScript is not installed (a production install); bin/ftrain.js runs the sources through tsx\n');
      expect(existsSync(join(bare, 'build'))).toBe(false);
    } finally {
      rmSync(bare, { recursive: true, force: true });
    }
  });
});
