import { describe, expect, it } from 'vitest';
import { OptionError } from '../../common/errors.ts';
import { compileJobOptions, DEFAULT_JOB, tokensPerStep } from '../../common/job-options.ts';

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

  it('resolves a data path to an absolute path', () => {
    expect(compileJobOptions({ data: 'some/file.txt' }).data).toMatch(/^\/.*some\/file\.txt$/);
  });
});
