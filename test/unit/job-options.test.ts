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
    expect(job.snapshotEvery).toBe('auto');
    expect(job.overlapReduce).toBe(false);
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
    [{ snapshotEvery: 'often' }, '--snapshot-every'],
    [{ overlapReduce: 'yes' }, '--overlap-reduce'],
    [{ snapshotEvery: '-1' }, '--snapshot-every'],
    [{ snapshotEvery: '2.5' }, '--snapshot-every'],
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

  it('takes --snapshot-every auto or N, and treats auto as snapshots on', () => {
    expect(compileJobOptions({ snapshotEvery: ' auto ' }).snapshotEvery).toBe('auto');
    expect(compileJobOptions({ snapshotEvery: '3' }).snapshotEvery).toBe(3);
    expect(compileJobOptions({ snapshotEvery: '0' }).snapshotEvery).toBe(0);
    // Snapshots on: erasure coding, snapshot recovery and an explicit code are allowed.
    expect(compileJobOptions({ nodes: '4', snapshotEvery: 'auto' }).ec).toBe('auto');
    expect(compileJobOptions({ nodes: '4', snapshotEvery: 'auto', ec: '2,1', recovery: 'snapshot' }).ec).toEqual({ dataShards: 2, parityShards: 1 });
  });

  it('resolves a data path to an absolute path', () => {
    expect(compileJobOptions({ data: 'some/file.txt' }).data).toMatch(/^\/.*some\/file\.txt$/);
  });
});

describe('settings the job cannot honour', () => {
  const refusal = (raw: Parameters<typeof compileJobOptions>[0]): OptionError => {
    try {
      compileJobOptions(raw);
    } catch (err) {
      if (err instanceof OptionError) return err;
      throw err;
    }
    throw new Error(`accepted ${JSON.stringify(raw)}`);
  };

  it('refuses --ec K,M whose K + M shards do not fit on the nodes other than a stage\'s own, naming what fits', () => {
    const e = refusal({ nodes: '2', ec: '9,9' });
    expect(e.field).toBe('--ec');
    expect(e.message).toMatch(/--ec: 9,9 needs 18 other nodes to hold the shards; --nodes 2 --spares 0 gives 1, too few for any code/);
    expect(refusal({ nodes: '4', spares: '2', ec: '4,2' }).message).toMatch(/4,2 needs 6 other nodes .*--nodes 4 --spares 2 gives 5: the largest code that fits has K \+ M = 5 \(e\.g\. --ec 3,2\)/);
    expect(refusal({ nodes: '2', ec: '1,1' }).message).toMatch(/add --spares 1 for RS\(1,1\)/);
    // What fits is accepted, spares included.
    expect(compileJobOptions({ nodes: '2', spares: '1', ec: '1,1' }).ec).toEqual({ dataShards: 1, parityShards: 1 });
    expect(compileJobOptions({ nodes: '4', spares: '2', ec: '3,2' }).ec).toEqual({ dataShards: 3, parityShards: 2 });
  });

  it('takes a thousand-node job and more, and refuses slots and spares past the limits, naming the flag', () => {
    const job = compileJobOptions({ nodes: '8', replicas: '124', spares: '8' });
    expect(job.stages * job.replicas + job.spares).toBe(1000);
    expect(compileJobOptions({ nodes: '16', replicas: '600', spares: '400' }).replicas).toBe(600);
    expect(refusal({ nodes: '64', replicas: '1000' }).message).toMatch(/--replicas: 1000 replicas of 64 stages need 64000 nodes; at most 16384/);
    expect(refusal({ nodes: '4', spares: '5000' }).message).toMatch(/--spares: must be an integer from 0 to 4096/);
  });

  it('refuses an explicit --ec with snapshots off, which has nothing to protect', () => {
    expect(refusal({ nodes: '4', snapshotEvery: '0', ec: '2,1' }).field).toBe('--ec');
    expect(compileJobOptions({ nodes: '4', snapshotEvery: '0' }).ec).toBe('off');
  });

  it('refuses --recovery checkfree with fewer than 3 stages: no stage has neighbours on both sides', () => {
    const e = refusal({ nodes: '2', recovery: 'checkfree' });
    expect(e.field).toBe('--recovery');
    expect(e.message).toMatch(/needs --nodes 3 or more, got 2/);
    expect(compileJobOptions({ nodes: '3', recovery: 'checkfree' }).recovery).toBe('checkfree');
  });
});
