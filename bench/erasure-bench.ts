// `ftrain bench erasure`: what Reed-Solomon coding of a snapshot costs, per code, size and
// kernel, against a memcpy of the same bytes measured in the same run. Figures are medians over
// the runs; raw values go along. Every rebuild is checked against the original data: a wrong
// byte fails the bench.
//
// What the figures mean (also in the report's `definitions`):
// - throughput: data bytes / wall time of one call, GB = 1e9 bytes.
// - encode: the encode a snapshot manager runs (what ErasurePool does with a snapshot handed to
//   it): one stripe with dataShards 'view', so the k data shards are views of the snapshot (no
//   copy; the code is systematic), the m parity shards new buffers, and all k + m crc32s.
// - encodeCopy: encodeShards with its defaults (1 MiB stripes): all k + m shards in new
//   buffers, k of them copies of the data, each with its crc32. For comparison only.
// - rebuild: rebuildFromShards with m data shards lost (all k and m - k parity if m > k), so the
//   kernel decodes: crc32 of every shard given, the decoding, the data in a new buffer.
// - memcpy: `new Uint8Array(n).set(data)`: a copy into fresh memory, page faults included, which
//   is what copying a snapshot out costs and how DESIGN.md measured "memcpy ~1.6 GB/s".
// - memcpyWarm: a copy into a buffer allocated and touched beforehand: the memory bus alone.
//
// Each timed call starts after a full garbage collection, so that the buffers of the call before
// (hundreds of MiB) are not freed inside the next one's timing.

import { availableParallelism, cpus, loadavg } from 'node:os';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { Prng } from '../domain/prng.ts';
import {
  DEFAULT_STRIPE_BYTES,
  ERASURE_KERNEL_NAMES,
  ErasureKernelName,
  encodeShards,
  oneStripeBytes,
  rebuildFromShards,
  type EncodedSnapshot,
  type Shard,
} from '../snapshot-manager/erasure-codec.ts';
import { ErasurePool } from '../snapshot-manager/erasure-pool.ts';
import { gbps, median, sig } from './stats.ts';

export interface ErasureCode {
  readonly dataShards: number;
  readonly parityShards: number;
}

export interface ErasureBenchOptions {
  readonly runs: number;
  readonly sizesMib: readonly number[];
  readonly codes: readonly ErasureCode[];
  /** Threads of the ErasurePool measured in `pool`. */
  readonly threads: number;
  readonly progress: (line: string) => void;
  /** Test hook: flip a byte of every rebuilt snapshot before it is checked, as a broken codec would. */
  readonly tamperWithRebuilds?: boolean;
}

export const DEFAULT_ERASURE_BENCH = {
  runs: 5,
  sizesMib: [16, 64],
  codes: [
    { dataShards: 4, parityShards: 2 },
    { dataShards: 2, parityShards: 1 },
    { dataShards: 6, parityShards: 3 },
  ],
  threads: 1,
} as const satisfies Omit<ErasureBenchOptions, 'progress'>;

const MIB = 1024 * 1024;
/** The acceptance figure: RS(4,2) on 64 MiB with the SIMD kernel. */
const HEADLINE = { dataShards: 4, parityShards: 2, sizeMib: 64, kernel: ErasureKernelName.simd } as const;
const TARGETS = { encodeFractionOfMemcpyMin: 0.4 } as const;
/** The event loop's timer during the pool runs: its worst gap is the loop's stall. */
const LOOP_PROBE_INTERVAL_MS = 1;

export interface ErasureBenchCase {
  /** "RS(k,m)". */
  readonly code: string;
  readonly dataShards: number;
  readonly parityShards: number;
  readonly sizeMib: number;
  readonly kernel: ErasureKernelName;
  readonly encodeCopyGBps: number;
  readonly encodeGBps: number;
  readonly rebuildGBps: number;
  readonly memcpyGBps: number;
  readonly memcpyWarmGBps: number;
  /** encodeCopyGBps / memcpyGBps. */
  readonly encodeCopyFractionOfMemcpy: number;
  /** encodeGBps / memcpyWarmGBps. */
  readonly encodeFractionOfWarmMemcpy: number;
  /** encodeGBps / memcpyGBps. */
  readonly encodeFractionOfMemcpy: number;
  /** rebuildGBps / memcpyGBps. */
  readonly rebuildFractionOfMemcpy: number;
  /** Shards lost before each rebuild. */
  readonly lostShards: readonly number[];
  /** Rebuilds of the timed runs found equal to the original, byte for byte (the bench fails on any other). */
  readonly rebuildsChecked: number;
  readonly raw: Readonly<Record<'encodeCopyMs' | 'encodeMs' | 'rebuildMs' | 'memcpyMs' | 'memcpyWarmMs', readonly number[]>>;
}

export interface ErasurePoolFigures {
  readonly threads: number;
  /** The pool's default for handed-over data: data shards are views of it. */
  readonly dataShards: 'view';
  /** Encodes submitted at once, one per thread, of the headline code and the largest size. */
  readonly concurrentEncodes: number;
  readonly code: string;
  readonly sizeMib: number;
  /** concurrentEncodes x data bytes / wall time until the last one resolved. */
  readonly encodeGBpsAggregate: number;
  readonly wallMs: number;
  /** The longest the calling thread's event loop went without running a 1 ms timer meanwhile. */
  readonly eventLoopWorstGapMs: number;
  /** A rebuild through the pool, with the headline's shards lost, gave the original bytes. */
  readonly rebuildChecked: true;
}

export interface ErasureBenchResult {
  readonly runs: number;
  readonly machine: {
    readonly cpus: number;
    readonly cpuModel: string;
    readonly node: string;
    readonly v8: string;
    readonly loadAverage1mBefore: number;
    readonly loadAverage1mAfter: number;
  };
  readonly definitions: Readonly<Record<string, string>>;
  /** Which case the top-level figures are: RS(4,2), SIMD, the largest size measured (64 MiB by default). */
  readonly headline: { readonly code: string; readonly sizeMib: number; readonly kernel: ErasureKernelName } | null;
  readonly encodeCopyGBps: number | null;
  readonly encodeGBps: number | null;
  readonly rebuildGBps: number | null;
  readonly memcpyGBps: number | null;
  readonly memcpyWarmGBps: number | null;
  readonly encodeCopyFractionOfMemcpy: number | null;
  readonly encodeFractionOfWarmMemcpy: number | null;
  readonly encodeFractionOfMemcpy: number | null;
  /** Headline SIMD encode over the reference kernel's, same case. */
  readonly simdSpeedupOverReference: number | null;
  readonly targets: {
    readonly encodeFractionOfMemcpy: { readonly min: number; readonly met: boolean };
  };
  readonly cases: readonly ErasureBenchCase[];
  readonly pool: ErasurePoolFigures;
}

function codeName(c: ErasureCode): string {
  return `RS(${c.dataShards},${c.parityShards})`;
}

/** A full collection on demand; the flag must be set before the function is first looked up. */
function exposeGc(): () => void {
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
}

/** float32 weights-like values (uniform in +-0.01), in shared memory, as the snapshot bench uses. */
function syntheticSnapshot(bytes: number): Uint8Array {
  const buffer = new SharedArrayBuffer(bytes);
  const floats = new Float32Array(buffer, 0, Math.floor(bytes / 4));
  const prng = new Prng(0xe7a5);
  for (let i = 0; i < floats.length; i++) floats[i] = (prng.next() - 0.5) * 0.02;
  return new Uint8Array(buffer);
}

/** Data shards lost before a rebuild: the first m, or all k and then parity from the end. */
function lostShards(c: ErasureCode): number[] {
  const n = c.dataShards + c.parityShards;
  return Array.from({ length: c.parityShards }, (_, j) => (j < c.dataShards ? j : n - 1 - (j - c.dataShards)));
}

/** Thrown when a rebuild gives other bytes than were encoded: the codec is broken. */
export class RebuildMismatchError extends Error {
  override readonly name = 'RebuildMismatchError';
  constructor(
    readonly what: string,
    readonly firstDifference: number,
  ) {
    super(`${what}: the rebuilt data differs from the original at byte ${firstDifference}`);
  }
}

function firstDifference(a: Uint8Array, b: Uint8Array): number {
  if (a.length !== b.length) return Math.min(a.length, b.length);
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return i;
  return -1;
}

function checkRebuilt(what: string, rebuilt: Uint8Array, original: Uint8Array, tamper: boolean): void {
  if (tamper && rebuilt.length > 0) rebuilt[rebuilt.length >> 1]! ^= 0x01;
  if (Buffer.compare(rebuilt, original) !== 0) throw new RebuildMismatchError(what, firstDifference(rebuilt, original));
}

function checkSameShards(what: string, a: EncodedSnapshot, b: EncodedSnapshot): void {
  const differ = a.shards.filter((s, i) => s.crc32 !== b.shards[i]!.crc32).map((s) => s.index);
  if (differ.length > 0) throw new Error(`${what}: shard(s) ${differ.join(', ')} differ between the two encodes`);
}

interface CaseSpec extends ErasureCode {
  readonly sizeMib: number;
  readonly kernel: ErasureKernelName;
}

interface CaseRaw {
  rebuildsChecked: number;
  encodeCopyMs: number[];
  encodeMs: number[];
  rebuildMs: number[];
  memcpyMs: number[];
  memcpyWarmMs: number[];
}

export async function runErasureBench(o: ErasureBenchOptions): Promise<ErasureBenchResult> {
  const loadAverage1mBefore = loadavg()[0]!;
  const gc = exposeGc();
  const specs: CaseSpec[] = o.codes.flatMap((code) => o.sizesMib.flatMap((sizeMib) => ERASURE_KERNEL_NAMES.map((kernel) => ({ ...code, sizeMib, kernel }))));
  const maxMib = Math.max(...o.sizesMib);
  const tamper = o.tamperWithRebuilds ?? false;
  o.progress(`bench erasure: ${specs.length} case(s) (${o.codes.map(codeName).join(', ')} x ${o.sizesMib.join(', ')} MiB x ${ERASURE_KERNEL_NAMES.join(', ')}), ${o.runs} run(s)`);
  const snapshot = syntheticSnapshot(maxMib * MIB);
  // Touched now, so that the warm copy measures copying only.
  const warm = new Uint8Array(maxMib * MIB).fill(1);

  /** One timed measurement of every figure of a case; `record` false for the warm-up. */
  const measureCase = (spec: CaseSpec, raw: CaseRaw | null): void => {
    const bytes = spec.sizeMib * MIB;
    const data = snapshot.subarray(0, bytes);
    const what = `${codeName(spec)} ${spec.sizeMib} MiB ${spec.kernel}`;
    const time = (run: () => unknown): number => {
      gc();
      const t0 = performance.now();
      run();
      return performance.now() - t0;
    };
    const memcpyMs = time(() => new Uint8Array(bytes).set(data));
    const memcpyWarmMs = time(() => warm.set(data));
    let encoded: EncodedSnapshot | null = null;
    const encodeCopyMs = time(() => (encoded = encodeShards(data, spec, DEFAULT_STRIPE_BYTES, { kernel: spec.kernel })));
    let viewed: EncodedSnapshot | null = null;
    const encodeMs = time(() => (viewed = encodeShards(data, spec, oneStripeBytes(bytes, spec.dataShards), { kernel: spec.kernel, dataShards: 'view' })));
    const lost = lostShards(spec);
    const survivors: (Shard | null)[] = encoded!.shards.map((s) => (lost.includes(s.index) ? null : s));
    let rebuilt: Uint8Array | null = null;
    const rebuildMs = time(() => (rebuilt = rebuildFromShards(encoded!.layout, survivors, { kernel: spec.kernel }).data));
    checkRebuilt(`${what}, shards ${lost.join(', ')} lost`, rebuilt!, data, tamper);
    const viewSurvivors = viewed!.shards.map((s) => (lost.includes(s.index) ? null : s));
    checkRebuilt(`${what} (one stripe, data shard views), shards ${lost.join(', ')} lost`, rebuildFromShards(viewed!.layout, viewSurvivors, { kernel: spec.kernel }).data, data, tamper);
    if (raw) {
      raw.rebuildsChecked += 2;
      raw.memcpyMs.push(memcpyMs);
      raw.memcpyWarmMs.push(memcpyWarmMs);
      raw.encodeCopyMs.push(encodeCopyMs);
      raw.encodeMs.push(encodeMs);
      raw.rebuildMs.push(rebuildMs);
    }
  };

  // JIT, wasm compilation, kernel memory and the allocator's first large blocks: not timed.
  o.progress('bench erasure: warm-up');
  for (const spec of specs) measureCase(spec, null);
  // The two kernels must make the same shards (the unit tests check bytes; here the crc32s).
  for (const code of o.codes) {
    const data = snapshot.subarray(0, Math.min(...o.sizesMib) * MIB);
    checkSameShards(`${codeName(code)}: simd and reference`, encodeShards(data, code, DEFAULT_STRIPE_BYTES, { kernel: 'simd' }), encodeShards(data, code, DEFAULT_STRIPE_BYTES, { kernel: 'reference' }));
  }

  const raws = specs.map((): CaseRaw => ({ rebuildsChecked: 0, encodeCopyMs: [], encodeMs: [], rebuildMs: [], memcpyMs: [], memcpyWarmMs: [] }));
  for (let run = 1; run <= o.runs; run++) {
    // All cases in every run, so that a slow spell of the machine touches all of them alike.
    specs.forEach((spec, i) => measureCase(spec, raws[i]!));
    const head = specs.findIndex((s) => s.dataShards === HEADLINE.dataShards && s.parityShards === HEADLINE.parityShards && s.kernel === HEADLINE.kernel && s.sizeMib === maxMib);
    const h = head >= 0 ? raws[head]! : null;
    o.progress(
      `bench erasure: run ${run}/${o.runs}` +
        (h ? `: RS(4,2) ${maxMib} MiB simd encode ${sig(h.encodeCopyMs.at(-1)!)} ms (view ${sig(h.encodeMs.at(-1)!)} ms), rebuild ${sig(h.rebuildMs.at(-1)!)} ms, memcpy ${sig(h.memcpyMs.at(-1)!)} ms` : ''),
    );
  }

  const cases: ErasureBenchCase[] = specs.map((spec, i) => {
    const raw = raws[i]!;
    const bytes = spec.sizeMib * MIB;
    const encodeCopy = gbps(bytes, median(raw.encodeCopyMs));
    const encode = gbps(bytes, median(raw.encodeMs));
    const rebuild = gbps(bytes, median(raw.rebuildMs));
    const memcpy = gbps(bytes, median(raw.memcpyMs));
    const memcpyWarm = gbps(bytes, median(raw.memcpyWarmMs));
    return {
      code: codeName(spec),
      dataShards: spec.dataShards,
      parityShards: spec.parityShards,
      sizeMib: spec.sizeMib,
      kernel: spec.kernel,
      encodeGBps: sig(encode),
      encodeCopyGBps: sig(encodeCopy),
      rebuildGBps: sig(rebuild),
      memcpyGBps: sig(memcpy),
      memcpyWarmGBps: sig(memcpyWarm),
      encodeFractionOfMemcpy: sig(encode / memcpy),
      encodeFractionOfWarmMemcpy: sig(encode / memcpyWarm),
      encodeCopyFractionOfMemcpy: sig(encodeCopy / memcpy),
      rebuildFractionOfMemcpy: sig(rebuild / memcpy),
      lostShards: lostShards(spec),
      rebuildsChecked: raw.rebuildsChecked,
      raw: {
        encodeCopyMs: raw.encodeCopyMs.map(sig),
        encodeMs: raw.encodeMs.map(sig),
        rebuildMs: raw.rebuildMs.map(sig),
        memcpyMs: raw.memcpyMs.map(sig),
        memcpyWarmMs: raw.memcpyWarmMs.map(sig),
      },
    };
  });

  const pool = await measurePool(o, snapshot.subarray(0, maxMib * MIB), maxMib, gc);

  const headline = cases.find((c) => c.dataShards === HEADLINE.dataShards && c.parityShards === HEADLINE.parityShards && c.kernel === HEADLINE.kernel && c.sizeMib === maxMib) ?? null;
  const reference = headline ? cases.find((c) => c.code === headline.code && c.sizeMib === headline.sizeMib && c.kernel === ErasureKernelName.reference) : undefined;
  if (headline && headline.sizeMib !== HEADLINE.sizeMib) o.progress(`bench erasure: note: the target is defined at ${HEADLINE.sizeMib} MiB; this run's largest size is ${headline.sizeMib} MiB`);
  return {
    runs: o.runs,
    machine: {
      cpus: availableParallelism(),
      cpuModel: cpus()[0]?.model ?? 'unknown',
      node: process.version,
      v8: process.versions.v8,
      loadAverage1mBefore: sig(loadAverage1mBefore),
      loadAverage1mAfter: sig(loadavg()[0]!),
    },
    definitions: {
      throughput: 'data bytes / wall time of one call; median of the runs; GB = 1e9 bytes',
      encode: "the encode a snapshot manager runs: one stripe, data shards as views of the snapshot (the code is systematic), parity shards in new buffers, all k+m crc32s",
      encodeCopy: `encodeShards with its defaults (${DEFAULT_STRIPE_BYTES / MIB} MiB stripes): all k+m shards in new buffers (k of them copies of the data), each with its crc32; for comparison`,
      rebuild: 'rebuildFromShards with lostShards missing: crc32 of every shard given, decoding, the data in a new buffer; checked equal to the original',
      memcpy: 'new Uint8Array(n).set(data): a copy of the same bytes into fresh memory, page faults included (how DESIGN.md measured memcpy)',
      memcpyWarm: 'a copy of the same bytes into a buffer allocated and touched beforehand',
      fractions: 'throughput / memcpy throughput of the same bytes in the same runs',
    },
    headline: headline ? { code: headline.code, sizeMib: headline.sizeMib, kernel: headline.kernel } : null,
    encodeCopyGBps: headline?.encodeCopyGBps ?? null,
    encodeGBps: headline?.encodeGBps ?? null,
    rebuildGBps: headline?.rebuildGBps ?? null,
    memcpyGBps: headline?.memcpyGBps ?? null,
    memcpyWarmGBps: headline?.memcpyWarmGBps ?? null,
    encodeCopyFractionOfMemcpy: headline?.encodeCopyFractionOfMemcpy ?? null,
    encodeFractionOfWarmMemcpy: headline?.encodeFractionOfWarmMemcpy ?? null,
    encodeFractionOfMemcpy: headline?.encodeFractionOfMemcpy ?? null,
    simdSpeedupOverReference: headline && reference ? sig(headline.encodeGBps / reference.encodeGBps) : null,
    targets: {
      encodeFractionOfMemcpy: { min: TARGETS.encodeFractionOfMemcpyMin, met: (headline?.encodeFractionOfMemcpy ?? 0) >= TARGETS.encodeFractionOfMemcpyMin },
    },
    cases,
    pool,
  };
}

/**
 * Encodes through an ErasurePool as a snapshot manager does: the snapshot in its own ArrayBuffer,
 * handed over (transferred, so the pool's defaults apply: one stripe, data shards as views of that
 * buffer), one job per thread at once, while a 1 ms timer probes the event loop. The copies handed
 * over are made before the timing. Then a rebuild through the pool is checked.
 */
async function measurePool(o: ErasureBenchOptions, data: Uint8Array, sizeMib: number, gc: () => void): Promise<ErasurePoolFigures> {
  const code = o.codes.find((c) => c.dataShards === HEADLINE.dataShards && c.parityShards === HEADLINE.parityShards) ?? o.codes[0]!;
  const pool = new ErasurePool({ threads: o.threads });
  try {
    const encodeAll = (copies: Uint8Array[]) => Promise.all(copies.map((copy) => pool.encode(copy, code)));
    const handOffs = () => Array.from({ length: o.threads }, () => data.slice());
    await encodeAll(handOffs()); // thread start-up and warm-up
    const wallMs: number[] = [];
    const gapMs: number[] = [];
    let last: EncodedSnapshot | null = null;
    for (let run = 1; run <= o.runs; run++) {
      const copies = handOffs();
      gc();
      let worst = 0;
      let previous = performance.now();
      const probe = setInterval(() => {
        const now = performance.now();
        worst = Math.max(worst, now - previous);
        previous = now;
      }, LOOP_PROBE_INTERVAL_MS);
      const t0 = performance.now();
      const results = await encodeAll(copies);
      wallMs.push(performance.now() - t0);
      clearInterval(probe);
      gapMs.push(Math.max(worst, performance.now() - previous));
      last = results[0]!;
    }
    const lost = lostShards(code);
    const rebuilt = await pool.rebuild(last!.layout, last!.shards.map((s) => (lost.includes(s.index) ? null : s)));
    checkRebuilt(`${codeName(code)} ${sizeMib} MiB through the pool, shards ${lost.join(', ')} lost`, rebuilt.data, data, o.tamperWithRebuilds ?? false);
    const wall = median(wallMs);
    o.progress(`bench erasure: pool of ${o.threads} thread(s): ${o.threads} x ${codeName(code)} ${sizeMib} MiB in ${sig(wall)} ms, event loop's worst gap ${sig(median(gapMs))} ms`);
    return {
      threads: o.threads,
      dataShards: 'view',
      concurrentEncodes: o.threads,
      code: codeName(code),
      sizeMib,
      encodeGBpsAggregate: sig(gbps(o.threads * data.byteLength, wall)),
      wallMs: sig(wall),
      eventLoopWorstGapMs: sig(median(gapMs)),
      rebuildChecked: true,
    };
  } finally {
    await pool.close();
  }
}
