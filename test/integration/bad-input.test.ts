// Bad input gets a clear error and breaks nothing: bad flags and data, a node registering
// twice, RPCs naming a stage out of range, pipe traffic from the wrong stage.

import * as grpc from '@grpc/grpc-js';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compileJobOptions } from '../../domain/job-options.ts';
import { GRPC_CHANNEL_OPTIONS, deadline, loadProto } from '../../common/proto.ts';
import { CoordinatorServer } from '../../coordinator/coordinator-server.ts';
import { SMALL_MODEL, isAlive, runCli, startCli, type RunningCli } from '../support/cli.ts';

const dir = mkdtempSync(join(tmpdir(), 'ftrain-bad-'));

describe('bad command lines', () => {
  it.each([
    [['run', '--frobnicate'], /unknown option '--frobnicate'/],
    [['run', '--nodes', '0'], /--nodes: must be an integer from 1 to 64, got "0"/],
    [['run', '--backend', 'gpu'], /--backend: must be one of wasm, cpu, tensorflow/],
    [['run', '--data', '/no/such/corpus.txt'], /data file \/no\/such\/corpus.txt does not exist/],
    [['node'], /required option '--coordinator <host:port\[,host:port\.\.\.\]>' not specified/],
    [['node', '--coordinator', 'nohostport'], /--coordinator: must be HOST:PORT/],
    [['worker', '--coordinator', '127.0.0.1:1', '--standby'], /--standby: is for the node agent's own use/],
  ])('ftrain %j fails with a clear message', async (args, message) => {
    const res = await runCli(args, { timeoutMs: 30_000 });
    expect(res.code).not.toBe(0);
    expect(res.stderr).toMatch(message);
    expect(res.stdout).not.toMatch(/^training/m);
  });

  it('refuses a text too short for one batch', async () => {
    const path = join(dir, 'tiny.txt');
    writeFileSync(path, 'Call me Ishmael.');
    const res = await runCli(['run', '--data', path, '--steps', '1'], { timeoutMs: 30_000 });
    expect(res.code).toBe(2);
    expect(res.stderr).toContain('too short for one batch');
  });

  it('says how to get the tensorflow backend when it is not installed', async () => {
    const res = await runCli(['run', '--nodes', '1', '--steps', '1', '--backend', 'tensorflow', '--log-file', join(dir, 'tf.log')], { timeoutMs: 60_000 });
    expect(res.code).not.toBe(0);
    expect(res.stderr + res.stdout).toMatch(/@tensorflow\/tfjs-node-gpu .*neither is installed/);
  });

  it.each([
    [['run', '--ec', '3'], /--ec: must be K,M/],
    [['run', '--ec', '0,2'], /--ec: must be K,M/],
    [['run', '--spares', '-1'], /--spares: must be an integer from 0/],
    [['run', '--inject', '0:1:node-kill'], /node-kill needs STEP >= 1/],
    [['run', '--replicas', '0'], /--replicas: must be an integer from 1 to 1024, got "0"/],
    [['run', '--replicas', '2', '--recovery', 'checkfree'], /--recovery: checkfree rebuilds a stage from its neighbours, and then its replicas would hold different weights/],
    [['run', '--replicas', '2', '--steps', '9', '--inject', '3:1@2:node-kill'], /--inject: "3:1@2:node-kill": replica 2 is out of range 0\.\.1/],
    [['run', '--zones', '-1'], /--zones: must be an integer from 0 to 16384/],
    [['run', '--replicas', '2', '--steps', '9', '--inject', '3:1@1:corrupt', '--check-every', '0'], /--inject: "3:1@1:corrupt": corruption is caught by comparing replicas' weights/],
    [['node', '--coordinator', '127.0.0.1:1', '--zone', 'us east'], /--zone: must be 1 to 64 letters, digits/],
  ])('refuses %j with a clear message', async (args, message) => {
    const res = await runCli(args, { timeoutMs: 30_000 });
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(message);
  });

  it('prints help for every command', async () => {
    const commands = [[], ['run'], ['coordinator'], ['node'], ['worker'], ['snapshot-manager'], ['bench'], ['bench', 'pipeline'], ['bench', 'snapshot'], ['bench', 'erasure'], ['bench', 'recovery'], ['experiment'], ['experiment', 'churn'], ['chaos'], ['report']];
    // Three at a time: each is a process start, mostly waiting on module loading.
    for (let i = 0; i < commands.length; i += 3) {
      const batch = commands.slice(i, i + 3);
      const results = await Promise.all(batch.map((cmd) => runCli([...cmd, '--help'], { timeoutMs: 30_000 })));
      results.forEach((res, j) => {
        expect(res.code, batch[j]!.join(' ')).toBe(0);
        expect(res.stdout, batch[j]!.join(' ')).toMatch(/Usage: ftrain/);
      });
    }
  });
});

describe('bad RPCs against a live coordinator and node', () => {
  const proto = loadProto();
  let server: CoordinatorServer;
  let coordinator: InstanceType<typeof proto.ftrain.v1.Coordinator>;
  let node: RunningCli;
  let nodeAddress = '';

  beforeAll(async () => {
    const job = compileJobOptions({ nodes: 1, backend: 'cpu', dModel: 32, heads: 2, seqLen: 32, microBatchSize: 2, microBatches: 2 });
    server = new CoordinatorServer({ job, dataSha256: '', listen: '127.0.0.1:0', logger: pino({ level: 'silent' }) });
    const port = await server.start();
    coordinator = new proto.ftrain.v1.Coordinator(`127.0.0.1:${port}`, grpc.credentials.createInsecure(), GRPC_CHANNEL_OPTIONS);
    const started = new Promise<void>((resolve) => server.on('action', (a) => a.type === 'training-started' && resolve()));
    node = startCli(['node', '--coordinator', `127.0.0.1:${port}`, '--node-id', 'only', '--log-file', join(dir, 'node.log')]);
    await started;
    nodeAddress = server.status().nodes.find((n) => n.nodeId === 'only')!.address;
  });

  afterAll(async () => {
    server.requestStop('test over', false);
    const res = await node.result;
    expect(res.code).toBe(0);
    coordinator.close();
    await server.close();
  });

  const call = <T>(fn: (cb: (err: grpc.ServiceError | null, v?: T) => void) => void) =>
    new Promise<{ err: grpc.ServiceError | null; value?: T }>((resolve) => fn((err, value) => resolve({ err, value })));

  it('refuses a node id registered twice, and keeps the first', async () => {
    const { err } = await call((cb) => coordinator.Register({ nodeId: 'only', address: '127.0.0.1:1', pid: 1, hostname: 'x' }, { deadline: deadline() }, cb));
    expect(err?.code).toBe(grpc.status.ALREADY_EXISTS);
    expect(err?.details).toMatch(/already registered by a live node at 127\.0\.0\.1:\d+; give each node a unique --node-id/);
    expect(server.status().nodes.find((n) => n.nodeId === 'only')!.address).toBe(nodeAddress);
    expect(isAlive(node.child.pid!)).toBe(true);
  });

  it('refuses step reports and faults for a stage out of range', async () => {
    const step = await call((cb) => coordinator.ReportStep({ nodeId: 'only', stage: 7, step: 0 }, { deadline: deadline() }, cb));
    expect(step.err?.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(step.err?.details).toBe('stage 7 is out of range: this job has stages 0..0');
    const fault = await call((cb) => coordinator.ReportFault({ nodeId: 'only', stage: -3, message: 'x' }, { deadline: deadline() }, cb));
    expect(fault.err?.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(server.status().phase).toBe('training');
  });

  it('refuses a heartbeat from an unknown node', async () => {
    const { err } = await call((cb) => coordinator.Heartbeat({ nodeId: 'ghost' }, { deadline: deadline() }, cb));
    expect(err?.code).toBe(grpc.status.NOT_FOUND);
  });

  it("answers each beat on a node's Heartbeats stream in turn, and ends the stream at the first beat refused", async () => {
    // The live node's beats: each answered with the lease.
    const live = coordinator.Heartbeats({ deadline: deadline() });
    const answers: number[] = [];
    const liveEnded = new Promise<grpc.ServiceError | null>((resolve) => {
      live.on('data', (r: { leaseMs: number }) => answers.push(Number(r.leaseMs)));
      live.on('error', (err: grpc.ServiceError) => resolve(err));
      live.on('end', () => resolve(null));
    });
    live.write({ nodeId: 'only' });
    live.write({ nodeId: 'only' });
    live.end();
    expect(await liveEnded).toBeNull();
    expect(answers).toEqual([server.job.leaseMs, server.job.leaseMs]);
    // An unknown node's beat ends the stream with NOT_FOUND; a malformed one with INVALID_ARGUMENT.
    for (const [beat, code] of [
      [{ nodeId: 'ghost' }, grpc.status.NOT_FOUND],
      [{ nodeId: 'only', memory: { rssBytes: 2, peakRssBytes: 1 } }, grpc.status.INVALID_ARGUMENT],
    ] as const) {
      const stream = coordinator.Heartbeats({ deadline: deadline() });
      const ended = new Promise<grpc.ServiceError | null>((resolve) => {
        stream.on('data', () => {});
        stream.on('error', (err: grpc.ServiceError) => resolve(err));
        stream.on('end', () => resolve(null));
      });
      stream.write(beat);
      expect((await ended)?.code).toBe(code);
    }
    expect(server.status().phase).toBe('training');
  });

  it('refuses pipe traffic from a stage that is not a neighbour, and weights of another stage', async () => {
    const worker = new proto.ftrain.v1.Worker(nodeAddress, grpc.credentials.createInsecure(), GRPC_CHANNEL_OPTIONS);
    const pipe = await new Promise<grpc.ServiceError | null>((resolve) => {
      const stream = worker.Pipe((err) => resolve(err));
      stream.write({ kind: 'PIPE_KIND_ACTIVATION', fromStage: 5, step: 0, microBatch: 0, shape: [2, 32, 32], chunkIndex: 0, chunkCount: 1, data: Buffer.alloc(8192) });
      stream.end();
    });
    expect(pipe?.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(pipe?.details).toMatch(/stage 0 takes no PIPE_KIND_ACTIVATION for hop 0 of micro-batch 0 \(its route starts there\), not from stage 5/);
    const weights = await new Promise<grpc.ServiceError | null>((resolve) => {
      const s = worker.FetchWeights({ stage: 3 }, { deadline: deadline() });
      s.on('data', () => {});
      s.on('error', (err) => resolve(err as grpc.ServiceError));
      s.on('end', () => resolve(null));
    });
    expect(weights?.code).toBe(grpc.status.INVALID_ARGUMENT);
    worker.close();
    // The node survives all of it and keeps training.
    expect(isAlive(node.child.pid!)).toBe(true);
    expect(server.status().phase).toBe('training');
  });
});
