// A network partition between one coordinator and its store, for `ftrain run --ha --inject
// STEP:coordinator:partition`: the coordinator reaches etcd through these TCP proxies on loopback
// (one per member). Cut, they forward nothing either way and hold every connection open without
// an answer, as a partition does (a closed connection would tell the coordinator at once); the
// nodes and the other coordinators still reach it. Healed, the held connections are dropped (as
// a partition's connections time out) and new ones go through.

import { connect, createServer, type Server, type Socket } from 'node:net';

export class StorePartition {
  private cutOff = false;
  private readonly sockets = new Set<Socket>();

  private constructor(
    private readonly servers: readonly Server[],
    /** `etcd://` URL of the proxies, for the coordinator's --store. */
    readonly url: string,
  ) {}

  /** Proxies to every endpoint of `etcdUrl` (`etcd://A,B,C`), each on a free loopback port. */
  static async start(etcdUrl: string): Promise<StorePartition> {
    const endpoints = etcdUrl.replace(/^etcd:\/\//, '').split(',');
    const servers: Server[] = [];
    const ports: number[] = [];
    let self: StorePartition | null = null;
    for (const endpoint of endpoints) {
      const i = endpoint.lastIndexOf(':');
      const host = endpoint.slice(0, i);
      const port = Number(endpoint.slice(i + 1));
      const server = createServer((client) => self!.accept(client, host, port));
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(0, '127.0.0.1', () => resolve());
      });
      servers.push(server);
      ports.push((server.address() as { port: number }).port);
    }
    self = new StorePartition(servers, `etcd://${ports.map((p) => `127.0.0.1:${p}`).join(',')}`);
    return self;
  }

  get cut(): boolean {
    return this.cutOff;
  }

  /** From now on nothing goes through, either way. */
  cutNow(): void {
    this.cutOff = true;
  }

  /** Drops the connections held while cut; new ones go through again. */
  heal(): void {
    this.cutOff = false;
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
    await Promise.all(this.servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
  }

  private accept(client: Socket, host: string, port: number): void {
    this.track(client);
    client.on('error', () => undefined);
    if (this.cutOff) return; // held: accepted, never answered
    const upstream = connect(port, host);
    this.track(upstream);
    upstream.on('error', () => client.destroy());
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
    // Data is passed on only while not cut; while cut it is dropped, and nothing closes.
    client.on('data', (d) => {
      if (!this.cutOff) upstream.write(d);
    });
    upstream.on('data', (d) => {
      if (!this.cutOff) client.write(d);
    });
  }

  private track(s: Socket): void {
    this.sockets.add(s);
    s.on('close', () => this.sockets.delete(s));
  }
}
