// A local etcd cluster for one machine (`ftrain run --ha`, the chaos script, tests): 1 or 3
// members of the `etcd` on PATH (Debian's etcd-server), on loopback ports, their data in a
// temporary folder (tmpfs where there is one), stopped and removed at the end.

import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Etcd3 } from 'etcd3';

/** How long the members get to form a cluster and answer. */
export const ETCD_START_TIMEOUT_MS = 15_000;

/** Thrown when `etcd` is not on PATH: says how to install it. */
export class EtcdNotFoundError extends Error {
  constructor() {
    super("etcd is not installed: --ha runs a local etcd from PATH; install Debian's etcd-server (scripts/install-test-deps.sh does), or point --store at an existing etcd with --store etcd://HOST:2379");
    this.name = 'EtcdNotFoundError';
  }
}

export interface EtcdMember {
  readonly name: string;
  /** host:port clients use. */
  readonly endpoint: string;
  readonly process: ChildProcess;
  /** Why it exited, once it has. */
  exited: string | null;
}

export interface LocalEtcd {
  readonly members: readonly EtcdMember[];
  /** `etcd://A,B,C`, for `--store`. */
  readonly url: string;
  /** Kills one member (SIGKILL), as the chaos kind `etcd-kill` does. */
  kill(name: string): void;
  /** Starts a killed member again, with its data. */
  restart(name: string): Promise<void>;
  /** Stops every member and removes their data. */
  stop(): Promise<void>;
}

/** A port free on 127.0.0.1 now (another process may take it before it is bound). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

export function etcdOnPath(): boolean {
  return (process.env.PATH ?? '').split(':').some((dir) => dir !== '' && existsSync(join(dir, 'etcd')));
}

/** Starts `size` (1 or 3) members and resolves once the cluster answers. */
export async function startLocalEtcd(options: { size?: 1 | 3; log?: (line: string) => void } = {}): Promise<LocalEtcd> {
  if (!etcdOnPath()) throw new EtcdNotFoundError();
  const size = options.size ?? 1;
  const base = mkdtempSync(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'ftrain-etcd-'));
  const specs: { name: string; client: number; peer: number }[] = [];
  for (let i = 0; i < size; i++) specs.push({ name: `etcd-${i}`, client: await freePort(), peer: await freePort() });
  const cluster = specs.map((s) => `${s.name}=http://127.0.0.1:${s.peer}`).join(',');
  const members: EtcdMember[] = [];
  const launch = (spec: (typeof specs)[number], state: 'new' | 'existing'): EtcdMember => {
    const child = spawn(
      'etcd',
      [
        '--name', spec.name,
        '--data-dir', join(base, spec.name),
        '--listen-client-urls', `http://127.0.0.1:${spec.client}`,
        '--advertise-client-urls', `http://127.0.0.1:${spec.client}`,
        '--listen-peer-urls', `http://127.0.0.1:${spec.peer}`,
        '--initial-advertise-peer-urls', `http://127.0.0.1:${spec.peer}`,
        '--initial-cluster', cluster,
        '--initial-cluster-state', state,
        '--initial-cluster-token', `ftrain-${process.pid}`,
        '--logger', 'zap',
        '--log-level', 'error',
      ],
      // A process group of its own: a terminal's Ctrl-C to `ftrain run --ha` must not end the
      // store the coordinators write the run's end to (stop() ends it).
      { stdio: ['ignore', 'ignore', 'pipe'], detached: true },
    );
    const member: EtcdMember = { name: spec.name, endpoint: `127.0.0.1:${spec.client}`, process: child, exited: null };
    child.stderr?.setEncoding('utf8').on('data', (d: string) => options.log?.(`${spec.name}: ${d.trimEnd()}`));
    child.on('exit', (code, signal) => (member.exited = signal ? `killed by ${signal}` : `exited with code ${code}`));
    return member;
  };
  for (const spec of specs) members.push(launch(spec, 'new'));
  const url = `etcd://${members.map((m) => m.endpoint).join(',')}`;
  const stop = async () => {
    await Promise.all(
      members.map(
        (m) =>
          new Promise<void>((resolve) => {
            if (m.exited !== null) return resolve();
            m.process.once('exit', () => resolve());
            m.process.kill('SIGTERM');
            setTimeout(() => m.process.kill('SIGKILL'), 3000).unref();
          }),
      ),
    );
    rmSync(base, { recursive: true, force: true });
  };
  try {
    await waitHealthy(members.map((m) => m.endpoint), members);
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    members,
    url,
    kill: (name) => members.find((m) => m.name === name)?.process.kill('SIGKILL'),
    restart: async (name) => {
      const i = members.findIndex((m) => m.name === name);
      if (i < 0) throw new Error(`no etcd member ${name}`);
      members[i] = launch(specs[i]!, 'existing');
      await waitHealthy([members[i]!.endpoint], [members[i]!]);
    },
    stop,
  };
}

/** Resolves once a read answers on every endpoint. */
async function waitHealthy(endpoints: readonly string[], members: readonly EtcdMember[]): Promise<void> {
  const deadline = Date.now() + ETCD_START_TIMEOUT_MS;
  for (const endpoint of endpoints) {
    const client = new Etcd3({ hosts: `http://${endpoint}`, dialTimeout: 1000 });
    try {
      for (;;) {
        const dead = members.find((m) => m.exited !== null);
        if (dead) throw new Error(`etcd member ${dead.name} ${dead.exited} while starting`);
        try {
          await client.get('health').options({ deadline: Date.now() + 1000 }).exec();
          break;
        } catch (err) {
          if (Date.now() > deadline) throw new Error(`etcd at ${endpoint} did not answer within ${ETCD_START_TIMEOUT_MS} ms: ${(err as Error).message}`);
          await new Promise((r) => setTimeout(r, 100));
        }
      }
    } finally {
      client.close();
    }
  }
}
