// What one snapshot manager's erasure protection of a big snapshot costs in memory and time, with
// real peers: `npx tsx bench/smp-protect-bench.ts [--mb 270] [--code 3,1] [--steps 3]`.
//
// The parent writes a snapshot of --mb MiB of random bytes into the owner's slot directory on
// /dev/shm, then starts k + m peer snapshot managers and the owner, each in its own process (so
// the owner's peak RSS counts only what it holds itself, never the peers' shards). The owner is
// given a plan over the peers; each time it reports the step protected, the parent writes the
// next step into another slot. Printed as JSON: per step, encodeMs and placeMs as the owner's
// status says them and the wall time from the slot's seal to the version protected; the owner's
// VmRSS before its start and once idle (its coding thread started, no snapshot yet), and its
// VmHWM (peak RSS) at the end; each peer's VmHWM. Then a fresh manager, in its own process,
// rebuilds the last step from the peers' shards, as a node taking over a lost stage does: its
// fetch and decode times and its peak RSS above its idle RSS.
// tmpfs pages the owner only reads through read(2) are page cache, not its RSS.

import { fork, type ChildProcess } from 'node:child_process';
import { randomFillSync } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pino from 'pino';
import { SnapshotSlots, type SnapshotHeader } from '../domain/snapshot-slots.ts';
import { SnapshotManager } from '../snapshot-manager/snapshot-manager.ts';

const MIB = 1024 * 1024;
const STAGE = 1;
/** How long the owner idles after its start before its RSS counts as its idle RSS. */
const IDLE_WAIT_MS = 2000;
/** Longest wait for one step to be protected. */
const STEP_TIMEOUT_MS = 120_000;

type Msg =
  | { kind: 'ready'; address: string; rssBytes: number; idleRssBytes: number }
  | { kind: 'protected'; step: number; encodeMs: number | null; placeMs: number | null; lastError: string | null }
  | { kind: 'memory'; hwmBytes: number; rssBytes: number }
  | { kind: 'rebuilt'; fetchMs: number; decodeMs: number; wallMs: number; bytes: number; idleRssBytes: number; hwmBytes: number };

function procStatus(pid: number | 'self'): { hwmBytes: number; rssBytes: number } {
  const text = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? NaN) * 1024;
  return { hwmBytes: kb('VmHWM'), rssBytes: kb('VmRSS') };
}

const send = (m: Msg) => process.send!(m);
const mb = (bytes: number) => Math.round((bytes / MIB) * 10) / 10;

async function peer(dir: string, name: string): Promise<void> {
  const smp = new SnapshotManager(dir, 4, name, pino({ level: 'silent' }));
  await smp.start('127.0.0.1:0');
  send({ kind: 'ready', address: smp.address, rssBytes: procStatus('self').rssBytes, idleRssBytes: procStatus('self').rssBytes });
  process.on('message', () => send({ kind: 'memory', ...procStatus('self') }));
}

async function owner(dir: string, k: number, m: number, holders: string[]): Promise<void> {
  const rssBytes = procStatus('self').rssBytes;
  const smp = new SnapshotManager(dir, 4, 'owner', pino({ level: 'silent' }));
  await smp.start('127.0.0.1:0');
  smp.configure({ stage: STAGE, code: { dataShards: k, parityShards: m }, holders: holders.map((address, i) => ({ nodeId: `peer-${i}`, address })), degraded: false }, -1);
  await new Promise((r) => setTimeout(r, IDLE_WAIT_MS)); // the coding thread starts meanwhile
  send({ kind: 'ready', address: smp.address, rssBytes, idleRssBytes: procStatus('self').rssBytes });
  let reported = '';
  setInterval(() => {
    const s = smp.status();
    const newest = s.versions.at(-1)?.step ?? -1;
    const key = `${newest}:${s.lastError}`;
    if (key === reported) return;
    reported = key;
    send({ kind: 'protected', step: newest, encodeMs: s.encodeMs, placeMs: s.placeMs, lastError: s.lastError });
  }, 5).unref();
  process.on('message', () => send({ kind: 'memory', ...procStatus('self') }));
}

async function rebuilder(dir: string, k: number, m: number, step: number, sources: string[]): Promise<void> {
  const smp = new SnapshotManager(dir, 4, 'rebuilder', pino({ level: 'silent' }));
  await smp.start('127.0.0.1:0');
  await new Promise((r) => setTimeout(r, IDLE_WAIT_MS));
  const idleRssBytes = procStatus('self').rssBytes;
  const t0 = performance.now();
  const r = await smp.rebuild({ stage: STAGE, step, epoch: 0, code: { dataShards: k, parityShards: m }, sources });
  const wallMs = performance.now() - t0;
  send({ kind: 'rebuilt', fetchMs: r.fetchMs, decodeMs: r.decodeMs, wallMs, bytes: r.bytes, idleRssBytes, hwmBytes: procStatus('self').hwmBytes });
}

function start(role: string, args: string[]): { child: ChildProcess; next: () => Promise<Msg> } {
  const child = fork(fileURLToPath(import.meta.url), [role, ...args], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const queue: Msg[] = [];
  const waiting: ((m: Msg) => void)[] = [];
  child.on('message', (m: Msg) => (waiting.length ? waiting.shift()!(m) : queue.push(m)));
  const next = () =>
    new Promise<Msg>((resolve, reject) => {
      if (queue.length) return resolve(queue.shift()!);
      const t = setTimeout(() => reject(new Error(`${role}: no message within ${STEP_TIMEOUT_MS} ms`)), STEP_TIMEOUT_MS);
      waiting.push((msg) => {
        clearTimeout(t);
        resolve(msg);
      });
    });
  return { child, next };
}

async function main(): Promise<void> {
  const arg = (name: string, dflt: string) => {
    const at = process.argv.indexOf(`--${name}`);
    return at > 0 ? process.argv[at + 1]! : dflt;
  };
  const bytes = Math.round(Number(arg('mb', '270')) * MIB) + 13; // not a multiple of k
  const [k, m] = arg('code', '3,1').split(',').map(Number) as [number, number];
  const steps = Number(arg('steps', '3'));
  const root = mkdtempSync('/dev/shm/ftrain-smp-bench-');
  const children: ChildProcess[] = [];
  try {
    const peers = [];
    for (let i = 0; i < k + m; i++) {
      const p = start('peer', [join(root, `peer-${i}`), `peer-${i}`]);
      children.push(p.child);
      peers.push(p);
    }
    const addresses = [];
    for (const p of peers) addresses.push(((await p.next()) as Extract<Msg, { kind: 'ready' }>).address);
    const ownerDir = join(root, 'owner');
    const slots = new SnapshotSlots(ownerDir, 4);
    const o = start('owner', [ownerDir, String(k), String(m), addresses.join(',')]);
    children.push(o.child);
    const ready = (await o.next()) as Extract<Msg, { kind: 'ready' }>;
    const data = new Uint8Array(bytes);
    const results = [];
    for (let step = 1; step <= steps; step++) {
      randomFillSync(data, 0, step === 1 ? bytes : Math.min(bytes, 64 * MIB)); // a different snapshot each step
      const header: SnapshotHeader = { stage: STAGE, step, tensors: [], scalars: { adamT: step }, epoch: 0 };
      const record = slots.write(slots.chooseSlot(), header, [data]);
      const t0 = performance.now();
      slots.seal(record, [data]);
      let msg: Msg;
      do msg = await o.next();
      while (msg.kind !== 'protected' || (msg.step < step && !msg.lastError));
      if (msg.lastError) throw new Error(`protection failed: ${msg.lastError}`);
      results.push({ step, encodeMs: msg.encodeMs, placeMs: msg.placeMs, wallMs: Math.round(performance.now() - t0) });
      process.stderr.write(`step ${step}: ${JSON.stringify(results.at(-1))}\n`);
    }
    o.child.send('memory');
    const mem = (await o.next()) as Extract<Msg, { kind: 'memory' }>;
    const peerHwm = [];
    for (const p of peers) {
      p.child.send('memory');
      peerHwm.push(mb(((await p.next()) as Extract<Msg, { kind: 'memory' }>).hwmBytes));
    }
    const rb = start('rebuilder', [join(root, 'rebuilder'), String(k), String(m), String(steps), addresses.join(',')]);
    children.push(rb.child);
    const rebuilt = (await rb.next()) as Extract<Msg, { kind: 'rebuilt' }>;
    if (rebuilt.bytes !== bytes) throw new Error(`the rebuild gave ${rebuilt.bytes} bytes, not ${bytes}`);
    const report = {
      snapshotMiB: mb(bytes),
      code: `RS(${k},${m})`,
      steps: results,
      ownerRssBeforeStartMiB: mb(ready.rssBytes),
      ownerIdleRssMiB: mb(ready.idleRssBytes),
      ownerPeakRssMiB: mb(mem.hwmBytes),
      ownerPeakAboveIdleMiB: mb(mem.hwmBytes - ready.idleRssBytes),
      peerPeakRssMiB: peerHwm,
      rebuild: {
        fetchMs: Math.round(rebuilt.fetchMs),
        decodeMs: Math.round(rebuilt.decodeMs),
        wallMs: Math.round(rebuilt.wallMs),
        idleRssMiB: mb(rebuilt.idleRssBytes),
        peakRssMiB: mb(rebuilt.hwmBytes),
        peakAboveIdleMiB: mb(rebuilt.hwmBytes - rebuilt.idleRssBytes),
      },
    };
    process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  } finally {
    for (const c of children) c.kill('SIGKILL');
    rmSync(root, { recursive: true, force: true });
  }
}

const [role, ...rest] = process.argv.slice(2);
if (role === 'peer') await peer(rest[0]!, rest[1]!);
else if (role === 'owner') await owner(rest[0]!, Number(rest[1]), Number(rest[2]), rest[3]!.split(','));
else if (role === 'rebuilder') await rebuilder(rest[0]!, Number(rest[1]), Number(rest[2]), Number(rest[3]), rest[4]!.split(','));
else await main();
