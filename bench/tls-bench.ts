// `ftrain bench tls`: what mutual TLS (issue 16) costs, plaintext and TLS side by side in one
// invocation, alternated so that a drift of a shared machine falls on both:
//   - pipeline: the same job (same seed, cpu backend by default) with `ftrain run --insecure`
//     and with `ftrain run` (a CA, certificates and a join token made per run), in turn, --repeat
//     times each: the median step time and tokens/s of each, their ratios, and whether every run
//     ended with the same weights (TLS must not change the maths: a mismatch fails the bench);
//   - shard exchange: PutShard streams of one shard of --shard-mb MiB from this process to a real
//     snapshot manager process over loopback, one sink serving plaintext and one mutual TLS (the
//     sender's certificate names the shard's owner, which the TLS sink checks), medians of
//     --transfers each, against a memcpy of the same bytes into warm memory.
// Prints JSON; progress goes to stderr. Memory: the runs' nodes (memory.pipelinePeakRamPerNodeBytes),
// and per shard size three copies of the shard here (payload, memcpy target, gRPC buffers) and
// up to two in each sink (the shard it holds and the one it receives).

import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { initCa, issueCertificate, loadTlsMaterial } from '../common/certificates.ts';
import { readVmHwmBytes } from '../common/process-memory.ts';
import { channelCredentials, tlsIdentity, useTls } from '../common/transport.ts';
import { widthForStateMib, type Backend } from '../domain/job-options.ts';
import type { RunReport } from '../observability/run-report.ts';
import { SHARD_CHUNK_BYTES } from '../snapshot-manager/shard-transfer.ts';
import { runOnce, slowestStepMs } from './pipeline-bench.ts';
import { putShardMs, shardPayload, shardSinkClient, startShardSink, type ShardPayload, type ShardSinkProcess } from './shard-sink.ts';
import { gbps, machineFigures, median, sig, timeIt } from './stats.ts';

export interface TlsBenchOptions {
  readonly stages: number;
  /** Steps per run; the first is warm-up and not timed. */
  readonly steps: number;
  readonly backend: Backend;
  /** Runs of each mode. */
  readonly repeat: number;
  /** MiB of training state per stage (two blocks, the `wide` preset's shape); 0: a small model whose steps take a fraction of a second. */
  readonly stateMib: number;
  /** Shard sizes in MiB, one PutShard stream of one shard each. */
  readonly shardMib: readonly number[];
  /** Timed transfers of each size in each mode (and memcpys). */
  readonly transfers: number;
  readonly progress: (line: string) => void;
}

export const TlsMode = { plain: 'plain', tls: 'tls' } as const;
export type TlsMode = (typeof TlsMode)[keyof typeof TlsMode];

/** Thrown when runs of the same job with and without TLS end with different weights: TLS changed the maths. */
export class DigestMismatchError extends Error {
  override readonly name = 'DigestMismatchError';
  constructor(readonly digests: readonly { readonly mode: TlsMode; readonly weightsDigest: string | null }[]) {
    super(`the runs ended with different weights (${digests.map((d) => `${d.mode} ${d.weightsDigest ?? 'none'}`).join(', ')}): the same job with and without TLS must train the same model`);
  }
}

/** The small model of the default: steps of a fraction of a second on 2 cores (as `bench ha`'s). */
const SMALL_MODEL = ['--d-model', '32', '--heads', '2', '--seq-len', '32', '--micro-batch-size', '2', '--micro-batches', '2'];
/** With --state-mb: the `wide` preset's shape, its width set by the state. */
const SIZED_LAYERS_PER_STAGE = 2;
const SIZED_HEADS = 8;
const SEED = 0;
/** The names of the shard measurement: the sink's node id and the sender's (the shard's owner). */
const SINK_NAME = 'bench-sink';
const SENDER_NAME = 'bench-source';

function modelArgs(stateMib: number): string[] {
  if (stateMib === 0) return SMALL_MODEL;
  const dModel = widthForStateMib(stateMib, SIZED_LAYERS_PER_STAGE);
  return ['--d-model', String(dModel), '--heads', String(SIZED_HEADS), '--layers-per-stage', String(SIZED_LAYERS_PER_STAGE), '--seq-len', '16', '--micro-batch-size', '1'];
}

interface PipelineRun {
  readonly mode: TlsMode;
  readonly stepMs: number;
  readonly tokensPerSecond: number;
  readonly wallSeconds: number;
  readonly weightsDigest: string | null;
  readonly peakRamPerNodeBytes: number | null;
}

async function benchPipelineTls(o: TlsBenchOptions) {
  const job = ['--nodes', String(o.stages), '--steps', String(o.steps), '--backend', o.backend, '--seed', String(SEED), '--no-dashboard', ...modelArgs(o.stateMib)];
  const runs: PipelineRun[] = [];
  for (let r = 0; r < o.repeat; r++) {
    for (const mode of [TlsMode.plain, TlsMode.tls]) {
      o.progress(`bench tls: pipeline, ${o.stages} stages on ${o.backend}, ${mode === TlsMode.tls ? 'mutual TLS + join token' : '--insecure'}, run ${r + 1}/${o.repeat}`);
      const report: RunReport = await runOnce(mode === TlsMode.tls ? job : [...job, '--insecure']);
      const stepMs = slowestStepMs(report);
      runs.push({ mode, stepMs: sig(stepMs), tokensPerSecond: sig(report.tokensPerStep / (stepMs / 1000)), wallSeconds: report.wallSeconds, weightsDigest: report.weightsDigest, peakRamPerNodeBytes: report.peakRamPerNodeBytes ?? null });
    }
  }
  const digests = new Set(runs.map((r) => r.weightsDigest));
  if (digests.size !== 1 || digests.has(null)) throw new DigestMismatchError(runs.map((r) => ({ mode: r.mode, weightsDigest: r.weightsDigest })));
  const side = (mode: TlsMode) => {
    const mine = runs.filter((r) => r.mode === mode);
    return { stepMs: sig(median(mine.map((r) => r.stepMs))), tokensPerSecond: sig(median(mine.map((r) => r.tokensPerSecond))), weightsDigest: mine[0]!.weightsDigest };
  };
  const plain = side(TlsMode.plain);
  const tls = side(TlsMode.tls);
  return {
    runsPerMode: o.repeat,
    plain,
    tls,
    ratioStepMs: sig(tls.stepMs / plain.stepMs),
    ratioTokensPerSecond: sig(tls.tokensPerSecond / plain.tokensPerSecond),
    sameDigest: true,
    runs,
  };
}

/** The medians of one shard size: each mode's PutShard stream and the memcpy, in ms. */
interface ShardTimes {
  readonly plainMs: number[];
  readonly tlsMs: number[];
  readonly memcpyMs: number;
}

async function timeShardSize(o: TlsBenchOptions, payload: ShardPayload, clients: Record<TlsMode, ReturnType<typeof shardSinkClient>>, nextStep: () => number): Promise<ShardTimes> {
  const put = (mode: TlsMode) => putShardMs(clients[mode], SENDER_NAME, nextStep(), payload);
  // One untimed stream each first: the connection (and its handshake) and the sink's first shard of this size.
  await put(TlsMode.plain);
  await put(TlsMode.tls);
  const times: Record<TlsMode, number[]> = { plain: [], tls: [] };
  for (let r = 0; r < o.transfers; r++) {
    // Alternate which goes first, so that neither is always the one after a pause.
    for (const mode of r % 2 === 0 ? [TlsMode.plain, TlsMode.tls] : [TlsMode.tls, TlsMode.plain]) times[mode].push(await put(mode));
  }
  const src = Buffer.from(payload.data.buffer, payload.data.byteOffset, payload.data.byteLength);
  const dst = Buffer.allocUnsafeSlow(src.byteLength).fill(1);
  src.copy(dst); // warm
  return { plainMs: times.plain, tlsMs: times.tls, memcpyMs: timeIt(o.transfers, () => src.copy(dst)) };
}

/** Thrown when the sink started with a TLS directory takes a plaintext stream: its figures would not be those of TLS. */
export class SinkNotTlsError extends Error {
  override readonly name = 'SinkNotTlsError';
  constructor(readonly address: string) {
    super(`the snapshot manager at ${address}, started with --tls-dir, took a shard over plaintext: the TLS figures would not be of TLS`);
  }
}

/** Checks that the TLS sink refuses a plaintext client (its handshake fails), so that what is timed against it is TLS. */
async function refusesPlaintext(sink: ShardSinkProcess, plainCredentials: ReturnType<typeof channelCredentials>, step: number): Promise<void> {
  const client = shardSinkClient(sink.address, plainCredentials);
  try {
    await putShardMs(client, SENDER_NAME, step, shardPayload(1024));
  } catch {
    return;
  } finally {
    client.close();
  }
  throw new SinkNotTlsError(sink.address);
}

async function benchShardExchange(o: TlsBenchOptions) {
  const tlsDir = mkdtempSync(join(tmpdir(), 'ftrain-bench-tls-'));
  const previous = tlsIdentity();
  const sinks: ShardSinkProcess[] = [];
  try {
    await initCa(tlsDir);
    await issueCertificate(tlsDir, SINK_NAME);
    await issueCertificate(tlsDir, SENDER_NAME);
    // The credentials are made now and kept by the clients: the process's identity is put back after.
    useTls(loadTlsMaterial(tlsDir, SENDER_NAME));
    const tlsCredentials = channelCredentials();
    useTls(null);
    const plainCredentials = channelCredentials();
    useTls(previous);
    const plainSink = await startShardSink({ nodeId: SINK_NAME, tlsDir: null });
    sinks.push(plainSink);
    const tlsSink = await startShardSink({ nodeId: SINK_NAME, tlsDir });
    sinks.push(tlsSink);
    const clients = { plain: shardSinkClient(plainSink.address, plainCredentials), tls: shardSinkClient(tlsSink.address, tlsCredentials) };
    let step = 0;
    await refusesPlaintext(tlsSink, plainCredentials, step++);
    const sizes = [];
    try {
      for (const mib of o.shardMib) {
        o.progress(`bench tls: shard exchange, one shard of ${mib} MiB per PutShard stream, plaintext and mutual TLS in turn, ${o.transfers} timed each`);
        const bytes = mib * 2 ** 20;
        const t = await timeShardSize(o, shardPayload(bytes), clients, () => step++);
        const plainMs = median(t.plainMs);
        const tlsMs = median(t.tlsMs);
        const plainGBps = gbps(bytes, plainMs);
        const tlsGBps = gbps(bytes, tlsMs);
        const memcpyGBps = gbps(bytes, t.memcpyMs);
        sizes.push({
          shardMb: mib,
          shardBytes: bytes,
          plainGBps: sig(plainGBps),
          tlsGBps: sig(tlsGBps),
          memcpyGBps: sig(memcpyGBps),
          ratio: sig(tlsGBps / plainGBps),
          plainVsMemcpy: sig(plainGBps / memcpyGBps),
          tlsVsMemcpy: sig(tlsGBps / memcpyGBps),
          plainMs: sig(plainMs),
          tlsMs: sig(tlsMs),
          memcpyMs: sig(t.memcpyMs),
          runsMs: { plain: t.plainMs.map(sig), tls: t.tlsMs.map(sig) },
        });
        o.progress(`  plaintext ${sig(plainGBps)} GB/s, TLS ${sig(tlsGBps)} GB/s (ratio ${sig(tlsGBps / plainGBps)}), memcpy ${sig(memcpyGBps)} GB/s`);
      }
    } finally {
      clients.plain.close();
      clients.tls.close();
    }
    return { sizes, tlsSinkRefusedPlaintext: true, sinkPeakRssBytes: { plain: plainSink.peakRssBytes(), tls: tlsSink.peakRssBytes() } };
  } finally {
    useTls(previous);
    for (const s of sinks) s.stop();
    rmSync(tlsDir, { recursive: true, force: true });
  }
}

export async function runTlsBench(o: TlsBenchOptions) {
  const loadAverage1mBefore = loadavg()[0]!;
  const pipeline = await benchPipelineTls(o);
  o.progress(`  step ${pipeline.plain.stepMs} ms plaintext, ${pipeline.tls.stepMs} ms TLS (ratio ${pipeline.ratioStepMs}); same weights: ${pipeline.sameDigest}`);
  const shards = await benchShardExchange(o);
  const model = o.stateMib === 0 ? { preset: 'small', args: SMALL_MODEL.join(' ') } : { preset: 'sized', stateMbPerStage: o.stateMib, args: modelArgs(o.stateMib).join(' ') };
  return {
    bench: 'tls',
    machine: machineFigures(loadAverage1mBefore),
    settings: {
      stages: o.stages,
      steps: o.steps,
      backend: o.backend,
      seed: SEED,
      repeat: o.repeat,
      model,
      shardMb: o.shardMib,
      transfers: o.transfers,
      shardChunkBytes: SHARD_CHUNK_BYTES,
    },
    definitions: {
      pipeline: 'the same job run with `ftrain run --insecure` (plain: no TLS, no join token) and with `ftrain run` (tls: a CA, a certificate per process and a join token made per run; every connection mutual TLS), alternated plain, tls, plain, ...; stepMs: the slowest stage\'s mean step time after the first step, median over the runs of a mode; tokensPerSecond: tokens per step over that step time, median; ratioStepMs and ratioTokensPerSecond: tls / plain; sameDigest: every run ended with the same weights (checked: a mismatch fails the bench)',
      shardExchange: 'one shard of shardMb MiB per PutShard stream (chunks of shardChunkBytes, with back-pressure) from this process to a real `ftrain snapshot-manager` process on loopback, until it answered; one sink serves plaintext, the other mutual TLS with certificates of one CA (the sender\'s names the shard\'s owner, as the sink checks); one untimed stream each first, then transfers of each, alternated (tlsSinkRefusedPlaintext: the TLS sink was checked to refuse a plaintext client first); *GBps: bytes over the median time, GB = 1e9 bytes; memcpyGBps: Buffer.copy of the same bytes into warm memory in this process (the floor of any copy); ratio: tlsGBps / plainGBps; plainVsMemcpy, tlsVsMemcpy: the stream\'s bandwidth as a fraction of memcpy\'s',
      memory: 'peak resident sets (VmHWM): this process (the shard payloads, memcpy targets and gRPC buffers), each sink process, and the largest node of the pipeline runs (worker + snapshot manager + slot files)',
    },
    pipeline,
    shardExchange: shards.sizes,
    tlsSinkRefusedPlaintext: shards.tlsSinkRefusedPlaintext,
    memory: {
      benchProcessPeakRssBytes: readVmHwmBytes(),
      shardSinkPeakRssBytes: shards.sinkPeakRssBytes,
      pipelinePeakRamPerNodeBytes: Math.max(0, ...pipeline.runs.map((r) => r.peakRamPerNodeBytes ?? 0)) || null,
    },
  };
}
