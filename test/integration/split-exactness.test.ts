// The split is exact: the same model computed by 1, 2 and 4 worker processes yields the same
// gradients (first step, before clipping).

import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { SMALL_MODEL, runCli } from '../support/cli.ts';

const TOTAL_BLOCKS = 4;

async function gradients(stages: number): Promise<Map<string, number[]>> {
  const dir = mkdtempSync(join(tmpdir(), `ftrain-grads-${stages}-`));
  const res = await runCli([
    'run',
    '--nodes', String(stages),
    '--layers-per-stage', String(TOTAL_BLOCKS / stages),
    '--steps', '1',
    '--seed', '5',
    '--backend', 'cpu',
    ...SMALL_MODEL,
    '--dump-grads', dir,
    '--log-file', join(dir, 'run.log'),
  ]);
  expect(res.code, res.stdout + res.stderr).toBe(0);
  const files = readdirSync(dir).filter((f) => f.startsWith('stage-')).sort();
  expect(files).toHaveLength(stages);
  const out = new Map<string, number[]>();
  for (const f of files) {
    for (const [name, values] of Object.entries(JSON.parse(readFileSync(join(dir, f), 'utf8')) as Record<string, number[]>)) {
      expect(out.has(name), `${name} in two stages`).toBe(false);
      out.set(name, values);
    }
  }
  return out;
}

function maxAbsDiff(a: Map<string, number[]>, b: Map<string, number[]>): number {
  expect([...b.keys()].sort()).toEqual([...a.keys()].sort());
  let worst = 0;
  for (const [name, av] of a) {
    const bv = b.get(name)!;
    expect(bv.length).toBe(av.length);
    for (let i = 0; i < av.length; i++) worst = Math.max(worst, Math.abs(av[i]! - bv[i]!));
  }
  return worst;
}

describe('split exactness', () => {
  it('gives the gradients of one process when split over 2 and 4 processes', async () => {
    const one = await gradients(1);
    // The whole model: embeddings, 4 blocks, head.
    expect(one.has('tok_emb') && one.has('head') && one.has('block3.mlp.w2')).toBe(true);
    const nonZero = [...one.values()].flat().filter((v) => v !== 0).length;
    expect(nonZero).toBeGreaterThan(1000);
    const two = await gradients(2);
    const four = await gradients(4);
    expect(maxAbsDiff(one, two)).toBeLessThan(1e-5);
    expect(maxAbsDiff(one, four)).toBeLessThan(1e-5);
  });
});
