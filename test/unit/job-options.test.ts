import { describe, expect, it } from 'vitest';
import { OptionError } from '../../domain/errors.ts';
import { compileJobOptions, DEFAULT_JOB, tokensPerStep } from '../../domain/job-options.ts';

describe('compileJobOptions', () => {
  it('fills every default', () => {
    const job = compileJobOptions({});
    expect(job.stages).toBe(DEFAULT_JOB.nodes);
    expect(job.steps).toBeNull();
    expect(job.backend).toBe('wasm');
    expect(job.data).toBe('moby-dick');
    expect(tokensPerStep(job)).toBe(DEFAULT_JOB.microBatches * DEFAULT_JOB.microBatchSize * DEFAULT_JOB.seqLen);
  });

  it.each([
    [{ nodes: '0' }, '--nodes'],
    [{ nodes: 'four' }, '--nodes'],
    [{ nodes: '2.5' }, '--nodes'],
    [{ steps: '0' }, '--steps'],
    [{ backend: 'gpu' }, '--backend'],
    [{ dModel: '30', heads: '4' }, '--heads'],
    [{ lr: '-1' }, '--lr'],
    [{ heartbeatMs: '1000', leaseMs: '500' }, '--lease-ms'],
    [{ data: '' }, '--data'],
    [{ recovery: 'sometimes' }, '--recovery'],
    [{ nodes: '3', recovery: 'checkfree-plus' }, '--recovery'],
    [{ nodes: '4', snapshotEvery: '0', recovery: 'checkfree', inject: '3:0:node-kill' }, '--inject'],
  ])('refuses %o naming %s', (raw, field) => {
    let caught: unknown;
    try {
      compileJobOptions(raw);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(OptionError);
    expect((caught as OptionError).field).toBe(field);
    expect((caught as OptionError).message).toContain(field);
  });

  it('lets CheckFree+ recover an edge stage with snapshots off, which plain CheckFree cannot', () => {
    expect(compileJobOptions({ nodes: '4', snapshotEvery: '0', recovery: 'checkfree-plus', inject: '3:0:node-kill,5:3:node-kill' }).recovery).toBe('checkfree-plus');
  });

  it('resolves a data path to an absolute path', () => {
    expect(compileJobOptions({ data: 'some/file.txt' }).data).toMatch(/^\/.*some\/file\.txt$/);
  });
});
