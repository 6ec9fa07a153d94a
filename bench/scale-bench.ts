// `ftrain bench scale`: ftrain at a real stage size, in one invocation. A 4-stage run with one
// spare on a model whose stages each hold --state-mb MiB of training state (the `wide` preset
// at 256) snapshots every step it can, loses a whole node and then a worker, and reports:
//   - the snapshot stall against a memcpy of the same bytes into warm memory;
//   - the snapshot overhead per step under `--snapshot-every auto`;
//   - erasure encode throughput;
//   - for each kill, every phase of the recovery, the total, and its floor: detection plus the
//     bytes over the bandwidths measured here, in this run (loopback gRPC stream to a real
//     snapshot manager process, Reed-Solomon coding, tmpfs write and read);
//   - each node's peak RAM (worker + snapshot manager + slots on tmpfs) against the state and
//     against the README's formula (domain/memory-budget.ts).
// Prints JSON; progress goes to stderr. Memory: the run's nodes (see peakRamPerNodeBytes), plus
// twice the state in this process for the copies it times.

import { closeSync, mkdtempSync, openSync, readSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { blockStateBytes, widthForStateMib } from '../domain/job-options.ts';
import { memoryBudget } from '../domain/memory-budget.ts';
import type { RecoveredFailure, RecoveryPhases } from '../domain/run-status.ts';
import type { RunReport } from '../observability/run-report.ts';
import { encodeShards, oneStripeBytes } from '../snapshot-manager/erasure-codec.ts';
import { runOnce } from './pipeline-bench.ts';
import { putShardMs, shardPayload, shardSinkClient, startShardSink } from './shard-sink.ts';
import { gbps, median, sig, timeIt } from './stats.ts';
import { channelCredentials } from '../common/transport.ts';

export interface ScaleBenchOptions {
  readonly stateMib: number;
  readonly stages: number;
  readonly spares: number;
  readonly layersPerStage: number;
  readonly backend: string;
  /** The node of this stage is killed as step nodeKillStep begins, the worker of workerKillStage at workerKillStep. */
  readonly nodeKillStage: number;
  readonly nodeKillStep: number;
  readonly workerKillStage: number;
  readonly workerKillStep: number;
  /** Repetitions of each bandwidth measurement (medians). */
  readonly repeats: number;
  /** Where the run's JSON log is kept (its phases in detail); null: not kept. */
  readonly logFile: string | null;
  readonly progress: (line: string) => void;
}

/** Bandwidths of this machine, measured on `bytes` bytes: milliseconds per pass. */
export interface Floors {
  readonly bytes: number;
  readonly memcpyMs: number;
  readonly tmpfsWriteMs: number;
  readonly tmpfsReadMs: number;
  /** The same read into memory never touched before (a new process's). */
  readonly tmpfsReadFreshMs: number;
  readonly grpcStreamMs: number;
  readonly encodeMs: number;
  readonly encodeGBps: number;
}

const SHM = '/dev/shm';

/** Writes the first `bytes` of `src` at the start of the file (in place: its pages are kept). */
function writeWhole(fd: number, src: Uint8Array, bytes: number): void {
  for (let off = 0; off < bytes; ) off += writeSync(fd, src, off, bytes - off, off);
}

/** Copies and codes of `bytes` bytes in this process; tmpfs through a file in /dev/shm. */
function localFloors(bytes: number, k: number, m: number, repeats: number): Omit<Floors, 'grpcStreamMs'> {
  const src = Buffer.allocUnsafeSlow(bytes);
  for (let i = 0; i < bytes; i += 4096) src[i] = i & 0xff;
  const dst = Buffer.allocUnsafeSlow(bytes).fill(1);
  const memcpyMs = timeIt(repeats, () => src.copy(dst));
  const dir = mkdtempSync(join(SHM, 'ftrain-bench-scale-'));
  try {
    const fd = openSync(join(dir, 'slot.bin'), 'w+');
    try {
      const write = () => writeWhole(fd, src, bytes);
      write(); // pages in place, as a slot's are
      const tmpfsWriteMs = timeIt(repeats, write);
      const tmpfsReadMs = timeIt(repeats, () => {
        for (let off = 0; off < bytes; ) off += readSync(fd, dst, off, bytes - off, off);
      });
      // A process that did not hold the state (a standby, a spare) reads it into memory it never
      // touched: the read takes the page faults of that memory too. A new buffer each time.
      const tmpfsReadFreshMs = timeIt(repeats, () => {
        const fresh = Buffer.allocUnsafeSlow(bytes);
        for (let off = 0; off < bytes; ) off += readSync(fd, fresh, off, bytes - off, off);
      });
      const encodeMs = timeIt(Math.min(repeats, 3), () => encodeShards(src, { dataShards: k, parityShards: m }, oneStripeBytes(bytes, k), { dataShards: 'view' }));
      return { bytes, memcpyMs, tmpfsWriteMs, tmpfsReadMs, tmpfsReadFreshMs, encodeMs, encodeGBps: gbps(bytes, encodeMs) };
    } finally {
      closeSync(fd);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** One shard of `bytes` bytes streamed to a real snapshot manager process over loopback gRPC, as a rebuild fetches them. */
async function grpcStreamMs(bytes: number, repeats: number): Promise<number> {
  const sink = await startShardSink({ nodeId: 'bench-sink', tlsDir: null });
  try {
    const client = shardSinkClient(sink.address, channelCredentials());
    const payload = shardPayload(bytes);
    const ms: number[] = [];
    try {
      for (let r = 0; r < repeats; r++) ms.push(await putShardMs(client, 'bench-source', r, payload));
    } finally {
      client.close();
    }
    return median(ms);
  } finally {
    sink.stop();
  }
}

/**
 * Copies of `bytes` bytes made while the run trains, every `everyMs`, until `until` settles: a
 * memcpy into warm memory and a write into a tmpfs file whose pages are in place, under the same
 * load as the workers' snapshots (two cores shared by every stage). Their medians are what a
 * snapshot's stall is compared with.
 */
async function copiesDuringRun(bytes: number, until: Promise<unknown>, everyMs: number): Promise<{ memcpyMs: number[]; tmpfsWriteMs: number[] }> {
  const src = Buffer.allocUnsafeSlow(bytes).fill(3);
  const dst = Buffer.allocUnsafeSlow(bytes).fill(1);
  const dir = mkdtempSync(join(SHM, 'ftrain-bench-scale-copy-'));
  const fd = openSync(join(dir, 'slot.bin'), 'w+');
  const write = () => writeWhole(fd, src, bytes);
  write();
  let done = false;
  void until.finally(() => (done = true)).catch(() => undefined);
  const memcpyMs: number[] = [];
  const tmpfsWriteMs: number[] = [];
  try {
    while (!done) {
      await new Promise((r) => setTimeout(r, everyMs));
      if (done) break;
      let t0 = performance.now();
      src.copy(dst);
      memcpyMs.push(performance.now() - t0);
      t0 = performance.now();
      write();
      tmpfsWriteMs.push(performance.now() - t0);
    }
  } finally {
    closeSync(fd);
    rmSync(dir, { recursive: true, force: true });
  }
  return { memcpyMs, tmpfsWriteMs };
}

function failureOf(report: RunReport, kind: string): RecoveredFailure {
  const f = report.failures.find((x) => x.kind === kind);
  if (!f) throw new Error(`the run reports no recovered ${kind} (failures: ${report.failures.map((x) => x.kind).join(', ') || 'none'})`);
  return f;
}

function killFigures(f: RecoveredFailure, floorMs: number, floorParts: Record<string, number>) {
  const phases: RecoveryPhases | null = f.phases ?? null;
  return {
    method: f.method,
    recoverMs: sig(f.recoverMs),
    floorMs: sig(floorMs),
    recoverVsFloor: sig(f.recoverMs / floorMs),
    lostSteps: f.lostSteps,
    phases: phases ? Object.fromEntries(Object.entries(phases).map(([k, v]) => [k, v === null ? null : sig(v)])) : null,
    floorParts: Object.fromEntries(Object.entries(floorParts).map(([k, v]) => [k, sig(v)])),
  };
}

export async function runScaleBench(o: ScaleBenchOptions) {
  const dModel = widthForStateMib(o.stateMib, o.layersPerStage);
  const stateBytesPerBlockStage = o.layersPerStage * blockStateBytes(dModel, 4);
  const steps = Math.max(o.nodeKillStep, o.workerKillStep) + 3;
  const model = ['--d-model', String(dModel), '--heads', '8', '--layers-per-stage', String(o.layersPerStage), '--seq-len', '16', '--micro-batch-size', '1'];
  o.progress(`bench scale: ${o.stages} stages + ${o.spares} spare, ${(stateBytesPerBlockStage / 2 ** 20).toFixed(1)} MiB of state per stage (--d-model ${dModel}, ${o.layersPerStage} blocks), ${steps} steps on ${o.backend}`);
  const inject = `${o.nodeKillStep}:${o.nodeKillStage}:node-kill,${o.workerKillStep}:${o.workerKillStage}:worker-kill`;
  const started = performance.now();
  const run = runOnce([
    '--nodes', String(o.stages), '--spares', String(o.spares), '--steps', String(steps), '--backend', o.backend, ...model,
    '--snapshot-every', 'auto', '--inject', inject, '--no-dashboard',
  ], o.logFile);
  const during = await copiesDuringRun(stateBytesPerBlockStage, run, 3000);
  const report = await run;
  o.progress(`  run done in ${((performance.now() - started) / 1000).toFixed(0)} s: ${report.status}`);
  const k = report.erasure.dataShards ?? 1;
  const m = report.erasure.parityShards ?? 1;
  const stateBytes = Math.max(...report.snapshots.bytesPerStage);
  o.progress(`bench scale: bandwidths of this machine on ${(stateBytes / 2 ** 20).toFixed(0)} MiB (memcpy, tmpfs, RS(${k},${m}), loopback gRPC)`);
  const local = localFloors(stateBytes, k, m, o.repeats);
  const floors: Floors = { ...local, grpcStreamMs: await grpcStreamMs(stateBytes, o.repeats) };

  // The snapshot's stall is compared with copies made under the same load, while the run trained.
  const duringMemcpyMs = during.memcpyMs.length > 0 ? median(during.memcpyMs) : floors.memcpyMs;
  const nodeKill = failureOf(report, 'node-kill');
  const workerKill = failureOf(report, 'worker-kill');
  // A node's loss: detection, the state's bytes over loopback gRPC from its holders, one coding
  // pass, the rebuilt snapshot written into a slot and read into the backend of a worker that did
  // not hold it (memory it never touched).
  const nodeParts = { detectMs: nodeKill.detectMs ?? 0, fetchMs: floors.grpcStreamMs, decodeMs: floors.encodeMs, commitMs: floors.tmpfsWriteMs, restoreMs: floors.tmpfsReadFreshMs };
  // A worker's crash: detection, and the snapshot read from its slot into the backend of the
  // worker that replaces it (a new process: memory it never touched).
  const workerParts = { detectMs: workerKill.detectMs ?? 0, restoreMs: floors.tmpfsReadFreshMs };
  const sum = (p: Record<string, number>) => Object.values(p).reduce((a, b) => a + b, 0);

  const stageNodes = report.memory.filter((n) => n.stage !== null);
  const peakRamPerNodeBytes = Math.max(0, ...stageNodes.map((n) => n.peakTotalBytes ?? 0));
  // After the node kill one node fewer holds shards (no replacement joins): each holds more of them.
  const budget = memoryBudget({ stateBytes, dataShards: k, parityShards: m, stages: o.stages, nodes: o.stages + o.spares - 1 });
  // Each node against the formula of its role: the node that runs the killed node's stage now
  // took it over; every other stage node is a stage node.
  const vsFormula = Object.fromEntries(
    stageNodes.map((n) => {
      const role = n.stage === o.nodeKillStage ? 'takeOver' : 'stage';
      const formula = role === 'takeOver' ? budget.takeOverNodeBytes : budget.stageNodeBytes;
      return [n.nodeId, { role, peakBytes: n.peakTotalBytes, formulaBytes: formula, peakVsFormula: n.peakTotalBytes === null ? null : sig(n.peakTotalBytes / formula) }];
    }),
  );
  const busiest = stageNodes.reduce<(typeof stageNodes)[number] | null>((a, n) => ((n.peakTotalBytes ?? 0) > (a?.peakTotalBytes ?? -1) ? n : a), null);
  return {
    bench: 'scale',
    settings: {
      stages: o.stages,
      spares: o.spares,
      backend: o.backend,
      steps,
      model: { dModel, heads: 8, layersPerStage: o.layersPerStage, seqLen: 16, microBatchSize: 1 },
      inject,
      erasureCode: report.erasure.code,
      repeats: o.repeats,
      stall: 'the median snapshot stall of the run against a memcpy of the same bytes into warm memory made by this process every 3 s while the run trained (the same load); copiesDuringRun.idleMemcpyMs is the same copy on an idle machine',
      floor: 'detection (measured in the run) + the bytes over the bandwidths measured here: node kill = gRPC stream of the state + one coding pass + tmpfs write + tmpfs read; worker kill = tmpfs read; each tmpfs read of a restore into memory never touched (the page faults of the worker that loads it: bandwidths.tmpfsReadFreshGBps), as loading the state into a process that did not hold it costs at least that',
      peakRam: 'per stage node: the largest sampled sum of worker RSS, snapshot manager RSS and slot files on tmpfs (the node agent and the standby worker are not counted); the formula is taken with the nodes left after the node kill, for each node by its role (the node that took the killed stage over: takeOverNodeBytes; the others: stageNodeBytes); peakRamVsFormula is the busiest node\'s',
    },
    stateBytesPerStage: stateBytes,
    stepSecondsP50: report.stepSecondsP50,
    stallMsP50: report.snapshots.stallMsP50,
    warmMemcpyMs: sig(duringMemcpyMs),
    stallVsWarmMemcpy: report.snapshots.stallMsP50 === null ? null : sig(report.snapshots.stallMsP50 / duringMemcpyMs),
    copiesDuringRun: {
      samples: during.memcpyMs.length,
      memcpyMsP50: sig(duringMemcpyMs),
      tmpfsWriteMsP50: sig(median(during.tmpfsWriteMs)),
      stallVsTmpfsWrite: report.snapshots.stallMsP50 === null ? null : sig(report.snapshots.stallMsP50 / median(during.tmpfsWriteMs)),
      idleMemcpyMs: sig(floors.memcpyMs),
    },
    snapshotOverheadPct: report.snapshots.overheadPctPerStep ?? report.snapshots.overheadPct,
    snapshotInterval: { mode: report.snapshots.intervalMode, everySteps: report.snapshots.everySteps, changes: report.snapshots.intervalChanges },
    encodeGBps: sig(floors.encodeGBps),
    bandwidths: {
      memcpyGBps: sig(gbps(stateBytes, floors.memcpyMs)),
      tmpfsWriteGBps: sig(gbps(stateBytes, floors.tmpfsWriteMs)),
      tmpfsReadGBps: sig(gbps(stateBytes, floors.tmpfsReadMs)),
      tmpfsReadFreshGBps: sig(gbps(stateBytes, floors.tmpfsReadFreshMs)),
      grpcStreamGBps: sig(gbps(stateBytes, floors.grpcStreamMs)),
      encodeGBps: sig(floors.encodeGBps),
    },
    nodeKill: killFigures(nodeKill, sum(nodeParts), nodeParts),
    workerKill: killFigures(workerKill, sum(workerParts), workerParts),
    peakRamPerNodeBytes,
    peakRamPerNodeVsState: sig(peakRamPerNodeBytes / stateBytes),
    formulaRamPerNodeBytes: budget.stageNodeBytes,
    peakRamVsFormula: busiest ? vsFormula[busiest.nodeId]!.peakVsFormula : null,
    peakRamVsFormulaPerNode: vsFormula,
    formula: budget,
    memoryPerNode: report.memory,
    weightsDigest: report.weightsDigest,
  };
}
