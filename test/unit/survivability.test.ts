// The survivability statement against the recovery policy itself: for a grid of jobs, the number
// of losses at once the statement claims are recovered is exactly what planRecovery decides over
// every loss of that many nodes (the worst case over which nodes), found here by brute force.

import { describe, expect, it } from 'vitest';
import { placeShards, resolveErasureCode } from '../../domain/erasure-protection.ts';
import { OptionError } from '../../domain/errors.ts';
import { compileJobOptions, type JobOptions } from '../../domain/job-options.ts';
import { planRecovery, unrecoverable } from '../../coordinator/core/recovery-policy.ts';
import { survivability, survivabilityLines } from '../../coordinator/core/survivability.ts';

/**
 * Whether the coordinator brings the run back after the nodes `lost` fail at once, in steady
 * training: stage i on node i, every stage reported, snapshot of step 1 held locally and (with a
 * code) fully placed on its holders. A worker crash keeps its snapshot manager; a node loss does not.
 */
function recovered(job: JobOptions, nodes: number, lost: ReadonlySet<number>, kind: 'worker' | 'node'): boolean {
  const lostStages = [...lost].filter((n) => n < job.stages).sort((a, b) => a - b);
  if (lostStages.length === 0) return true;
  const reported = Array.from({ length: job.stages }, () => true);
  if (lostStages.some((s) => unrecoverable(job, s, reported) !== null)) return false;
  const code = job.snapshotEvery === 0 || job.ec === 'off' ? null : resolveErasureCode(job.ec, nodes);
  const ids = Array.from({ length: nodes }, (_, i) => ({ nodeId: `n${i}`, address: `a${i}` }));
  const placement = code ? placeShards(new Map(Array.from({ length: job.stages }, (_, s) => [s, `n${s}`] as const)), ids, code) : null;
  const fromShards = Array.from({ length: job.stages }, () => new Map<number, number>());
  const restorable = Array.from({ length: job.stages }, (_, s) => {
    if (job.snapshotEvery === 0) return [];
    if (!lost.has(s) || kind === 'worker') return [1];
    const live = (placement?.plans.get(s)?.holders ?? []).filter((h) => !lost.has(Number(h.nodeId.slice(1)))).length;
    if (!code || live < code.dataShards) return [];
    fromShards[s]!.set(1, live);
    return [1];
  });
  const d = planRecovery({
    policy: job.recovery,
    stages: job.stages,
    replicas: 1,
    lost: lostStages,
    restorable,
    fromShards,
    fromReplicas: fromShards.map(() => new Map()),
    dataShards: code?.dataShards ?? null,
    reported,
    diskTier: job.checkpointDir !== null,
    shardShortfall: '',
  });
  return d.plan.tier !== 'fail';
}

function subsets(n: number): number[][] {
  return Array.from({ length: 2 ** n }, (_, mask) => Array.from({ length: n }, (_, i) => i).filter((i) => mask & (1 << i)));
}

/** The most losses at once that are always recovered, by brute force. */
function bruteForce(job: JobOptions, nodes: number, kind: 'worker' | 'node'): number | 'any' {
  const universe = kind === 'worker' ? job.stages : nodes;
  let smallestFatal = Infinity;
  for (const set of subsets(universe)) {
    if (set.length < smallestFatal && !recovered(job, nodes, new Set(set), kind)) smallestFatal = set.length;
  }
  return smallestFatal === Infinity ? 'any' : smallestFatal - 1;
}

const RECOVERY = ['auto', 'snapshot', 'checkfree', 'checkfree-plus', 'checkpoint'] as const;
const EC = ['auto', 'off', '1,1', '2,1', '2,2'] as const;

describe('survivability', () => {
  it('claims exactly the losses at once planRecovery recovers, whichever nodes they hit', () => {
    let checked = 0;
    let refused = 0;
    for (let stages = 1; stages <= 8; stages++) {
      for (let spares = 0; spares <= 2; spares++) {
        if (stages + spares > 9) continue;
        for (const ec of EC) {
          for (const recovery of RECOVERY) {
            for (const disk of [false, true]) {
              let job: JobOptions;
              try {
                job = compileJobOptions({ nodes: stages, spares, ec, recovery, ...(disk ? { checkpointDir: '/tmp/ftrain-ck', checkpointEvery: 5 } : {}) });
              } catch (err) {
                expect(err).toBeInstanceOf(OptionError);
                refused++;
                continue;
              }
              const nodes = stages + spares;
              const s = survivability(job);
              const where = JSON.stringify({ stages, spares, ec, recovery, disk });
              expect(s.nodeLosses, `node losses, ${where}`).toBe(bruteForce(job, nodes, 'node'));
              expect(s.workerCrashes, `worker crashes, ${where}`).toBe(bruteForce(job, nodes, 'worker'));
              // The fatal example really is fatal, and as small as claimed.
              if (s.fatal) {
                expect(recovered(job, nodes, new Set(s.fatal.nodes), 'node'), where).toBe(false);
                expect(s.fatal.nodes.length, where).toBe((s.nodeLosses as number) + 1);
              }
              // A single node loss: the stages the statement names are those planRecovery gives up.
              const alone = Array.from({ length: stages }, (_, st) => st).filter((st) => !recovered(job, nodes, new Set([st]), 'node'));
              expect(s.fatalNodeLoss, where).toEqual(alone);
              checked++;
            }
          }
        }
      }
    }
    expect(checked).toBeGreaterThan(500);
    expect(refused).toBeGreaterThan(0);
  });

  it('says at start that a 2-node job cannot survive a lost node, and what would help', () => {
    const job = compileJobOptions({ nodes: 2 });
    expect(survivability(job)).toMatchObject({ code: null, nodeLosses: 0, workerCrashes: 'any', fatalNodeLoss: [0, 1] });
    const text = survivabilityLines(job).join('\n');
    expect(text).toMatch(/local snapshot: any number of worker crashes at once/);
    expect(text).toMatch(/cannot survive: a lost node ends the run: 2 nodes leave too few other nodes for erasure shards .*CheckFree needs a neighbour on both sides/);
    expect(text).toMatch(/to survive more: --spares 1 or more nodes \(erasure shards\), or --checkpoint-dir DIR/);
  });

  it('counts the stage\'s own node among the losses erasure coding covers: RS(k,m) survives m + 1', () => {
    const s = survivability(compileJobOptions({ nodes: 4, spares: 1 }));
    expect(s.code).toEqual({ dataShards: 3, parityShards: 1 });
    expect(s.nodeLosses).toBe(2);
    const lines = survivabilityLines(compileJobOptions({ nodes: 4, spares: 1 }));
    expect(lines.join('\n')).toMatch(/erasure rebuild: any 2 node losses at once \(RS\(3,1\)/);
    expect(lines.join('\n')).toMatch(/cannot survive: 3 node losses at once/);
    expect(lines.join('\n')).toMatch(/goes to one of the 1 spare\(s\) at once/);
  });

  it('names only the edge stages when CheckFree can bring back the others', () => {
    const job = compileJobOptions({ nodes: 3, ec: 'off' });
    expect(survivability(job).fatalNodeLoss).toEqual([0, 2]);
    expect(survivabilityLines(job).join('\n')).toMatch(/cannot survive: losing the node of stage 0 or 2 ends the run/);
  });

  it('survives any losses with a disk tier', () => {
    const job = compileJobOptions({ nodes: 2, checkpointDir: '/tmp/ftrain-ck', checkpointEvery: 5 });
    expect(survivability(job)).toMatchObject({ nodeLosses: 'any', fatal: null });
    expect(survivabilityLines(job).join('\n')).not.toMatch(/cannot survive/);
  });
});
