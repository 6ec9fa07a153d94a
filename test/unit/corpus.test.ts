import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkCorpusFits, loadCorpus, microBatchFor } from '../../domain/corpus.ts';
import { DataError } from '../../domain/errors.ts';

describe('corpus', () => {
  const moby = loadCorpus('moby-dick');

  it('bundles Moby-Dick as real English text', () => {
    expect(moby.bytes.length).toBeGreaterThan(1_000_000);
    expect(new TextDecoder().decode(moby.bytes.subarray(0, 200_000))).toContain('Call me Ishmael');
  });

  it('makes the batch of a step a pure function of (seed, step)', () => {
    const a = microBatchFor(moby, 7, 12, 1, 4, 64);
    const b = microBatchFor(moby, 7, 12, 1, 4, 64);
    expect(a.inputs).toEqual(b.inputs);
    expect(microBatchFor(moby, 7, 13, 1, 4, 64).inputs).not.toEqual(a.inputs);
    expect(microBatchFor(moby, 8, 12, 1, 4, 64).inputs).not.toEqual(a.inputs);
    // targets are the inputs shifted by one byte
    expect(a.targets.subarray(0, 63)).toEqual(a.inputs.subarray(1, 64));
  });

  it('refuses a missing file with a clear error', () => {
    expect(() => loadCorpus('/no/such/file.txt')).toThrow(DataError);
    expect(() => loadCorpus('/no/such/file.txt')).toThrow(/does not exist/);
  });

  it('refuses a text too short for one sequence', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ftrain-corpus-'));
    const path = join(dir, 'short.txt');
    writeFileSync(path, 'too short');
    const corpus = loadCorpus(path);
    expect(() => checkCorpusFits(corpus, 64)).toThrow(/too short for one batch/);
    expect(() => checkCorpusFits(corpus, 8)).not.toThrow();
  });
});
