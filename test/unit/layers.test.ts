// The layer check (`npm run check:layers`, .dependency-cruiser.cjs) on a small fixture tree: the
// real tree may be mid-move, so this proves the rules themselves, not the tree. The fixture has
// the repo's folder names and only allowed imports. The installed depcruise runs there with the
// script's own arguments three times (each run costs about a second of CPU): on the clean tree,
// with one role importing another, and with one forbidden import of every other kind at once,
// where its exit code (the number of errors) shows that each import is caught once and only once.
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const REPO = fileURLToPath(new URL('../../', import.meta.url));
const DEPCRUISE = join(REPO, 'node_modules', '.bin', 'depcruise');

/** The arguments of the `check:layers` script, so the test runs what `npm test` runs. */
function checkLayersArgs(): string[] {
  const pkg = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
  const [bin, ...args] = (pkg.scripts['check:layers'] ?? '').split(/\s+/);
  expect(bin).toBe('depcruise');
  return args;
}

/** A tree with every layer and only allowed imports (relative, with explicit .ts like the repo). */
const CLEAN: Record<string, string> = {
  'proto/generated/ftrain.ts': "import type { Ack } from './ftrain/v1/Ack';\nexport type { Ack };\n",
  'proto/generated/ftrain/v1/Ack.ts': 'export interface Ack { ok: boolean }\n',
  'domain/a.ts': "import { createHash } from 'node:crypto';\nexport const a = (s: string) => createHash('sha256').update(s).digest('hex');\n",
  'domain/b.ts': "import { a } from './a.ts';\nexport const b = a('b');\n",
  'common/rpc.ts':
    "import type { Logger } from 'pino';\nimport { a } from '../domain/a.ts';\nimport type { Ack } from '../proto/generated/ftrain.ts';\n" +
    'export const rpc = (ack: Ack, log?: Logger) => { log?.info(a(String(ack.ok))); };\n',
  'coordinator/core/brain.ts': "import { b } from '../../domain/b.ts';\nexport const brain = () => b;\n",
  'coordinator/c.ts':
    "import { brain } from './core/brain.ts';\nimport { rpc } from '../common/rpc.ts';\nimport type { Ack } from '../proto/generated/ftrain/v1/Ack.ts';\n" +
    'export const c = (ack: Ack) => { rpc(ack); return brain(); };\n',
  'worker/core/k.ts': "import { a } from '../../domain/a.ts';\nexport const k = () => a('k');\n",
  'worker/w.ts': "import { k } from './core/k.ts';\nimport { rpc } from '../common/rpc.ts';\nexport const w = () => { rpc({ ok: true }); return k(); };\n",
  'snapshot-manager/s.ts': "import { rpc } from '../common/rpc.ts';\nexport const s = () => rpc({ ok: true });\n",
  'observability/report.ts': "import { c } from '../coordinator/c.ts';\nexport const report = () => c({ ok: true });\n",
  'bench/bench.ts': "import { w } from '../worker/w.ts';\nimport { s } from '../snapshot-manager/s.ts';\nexport const bench = () => [w(), s()];\n",
  'experiment/e.ts': "import { bench } from '../bench/bench.ts';\nimport { report } from '../observability/report.ts';\nexport const e = () => [bench(), report()];\n",
  'chaos/x.ts': "import { c } from '../coordinator/c.ts';\nexport const x = () => c({ ok: false });\n",
  'cli/flags.ts': 'export const flags = { nodes: 4 };\n',
  'cli/main.ts':
    "import { flags } from './flags.ts';\nimport { w } from '../worker/w.ts';\nimport { s } from '../snapshot-manager/s.ts';\nimport { e } from '../experiment/e.ts';\n" +
    "export const main = async () => [flags, w(), s(), e(), (await import('../chaos/x.ts')).x()];\n",
  'scripts/gen.ts': "import { main } from '../cli/main.ts';\nvoid main();\n",
  'test/main.test.ts': "import { main } from '../cli/main.ts';\nimport { k } from '../worker/core/k.ts';\nvoid main(); void k();\n",
};

const TSCONFIG = {
  compilerOptions: {
    target: 'ES2022',
    module: 'ESNext',
    moduleResolution: 'Bundler',
    strict: true,
    allowImportingTsExtensions: true,
    noEmit: true,
    skipLibCheck: true,
    verbatimModuleSyntax: true,
  },
  include: [...new Set(Object.keys(CLEAN).map((file) => file.split('/')[0]!))],
};

let dir = '';
let args: string[] = [];

function write(file: string, text: string): void {
  mkdirSync(dirname(join(dir, file)), { recursive: true });
  writeFileSync(join(dir, file), text);
}

function check(): { status: number | null; out: string } {
  const run = spawnSync(DEPCRUISE, args, { cwd: dir, encoding: 'utf8', timeout: 30_000 });
  if (run.error) throw run.error;
  return { status: run.status, out: `${run.stdout}${run.stderr}` };
}

/** Runs the check with these files replaced (or added), then puts the clean tree back. */
function checkWith(files: Record<string, string>): { status: number | null; out: string } {
  for (const [file, text] of Object.entries(files)) write(file, text);
  try {
    return check();
  } finally {
    for (const file of Object.keys(files)) {
      if (file in CLEAN) write(file, CLEAN[file]!);
      else rmSync(join(dir, file));
    }
  }
}

beforeAll(() => {
  args = checkLayersArgs();
  dir = mkdtempSync(join(tmpdir(), 'ftrain-layers-'));
  for (const [file, text] of Object.entries(CLEAN)) write(file, text);
  writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify(TSCONFIG, null, 2));
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'fixture', type: 'module', private: true, dependencies: { pino: '*' } }));
  copyFileSync(join(REPO, '.dependency-cruiser.cjs'), join(dir, '.dependency-cruiser.cjs'));
  symlinkSync(join(REPO, 'node_modules'), join(dir, 'node_modules'), 'dir');
});

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** Forbidden imports added together in one run: file, import appended, the line expected. */
const FORBIDDEN: [file: string, add: string, expected: string | RegExp][] = [
  ['coordinator/c.ts', "import type { w } from '../worker/w.ts';\nexport type W = typeof w;\n", 'error layer-coordinator: coordinator/c.ts → worker/w.ts'],
  ['worker/core/k.ts', "import { rpc } from '../../common/rpc.ts';\nvoid rpc;\n", 'error layer-worker-core: worker/core/k.ts → common/rpc.ts'],
  ['coordinator/core/brain.ts', "import type { Logger } from 'pino';\nexport type L = Logger;\n", /error layer-coordinator-core-npm: coordinator\/core\/brain\.ts → \S*node_modules\/pino\//],
  ['domain/b.ts', "import { w } from '../worker/w.ts';\nvoid w;\n", 'error layer-domain: domain/b.ts → worker/w.ts'],
  ['domain/a.ts', "import pino from 'pino';\nvoid pino;\n", /error layer-domain-npm: domain\/a\.ts → \S*node_modules\/pino\//],
  ['snapshot-manager/s.ts', "import { report } from '../observability/report.ts';\nvoid report;\n", 'error layer-snapshot-manager: snapshot-manager/s.ts → observability/report.ts'],
  ['observability/report.ts', "import { w } from '../worker/w.ts';\nvoid w;\n", 'error layer-observability: observability/report.ts → worker/w.ts'],
  ['chaos/x.ts', "import { flags } from '../cli/flags.ts';\nvoid flags;\n", 'error layer-chaos: chaos/x.ts → cli/flags.ts'],
  ['common/rpc.ts', "import { gone } from './gone.ts';\nvoid gone;\n", 'error not-to-unresolvable: common/rpc.ts → ./gone.ts'],
];

describe('layer check (dependency-cruiser)', () => {
  it('passes on a tree with allowed imports only', () => {
    const { status, out } = check();
    expect(out).not.toMatch(/^\s*(error|warn) /m);
    expect(status).toBe(0);
  });

  it('fails when a role imports another role, naming the rule and the import', () => {
    const { status, out } = checkWith({ 'worker/w.ts': `${CLEAN['worker/w.ts']}import { c } from '../coordinator/c.ts';\nvoid c;\n` });
    expect(out).toContain('error layer-worker: worker/w.ts → coordinator/c.ts');
    expect(status).toBe(1);
  });

  describe('catches every other kind of forbidden import', () => {
    let run: { status: number | null; out: string };
    beforeAll(() => {
      const files: Record<string, string> = {};
      for (const [file, add] of FORBIDDEN) files[file] = `${files[file] ?? CLEAN[file] ?? ''}${add}`;
      run = checkWith(files);
    });

    it.each(FORBIDDEN)('%s importing %s', (_file, _add, expected) => {
      if (typeof expected === 'string') expect(run.out).toContain(expected);
      else expect(run.out).toMatch(expected);
    });

    it('and exits with one error per forbidden import', () => {
      expect(run.out).not.toMatch(/^\s*warn /m);
      expect(run.status).toBe(FORBIDDEN.length);
    });
  });
});
