import * as grpc from '@grpc/grpc-js';
import { takenPort } from '../support/ports.ts';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { ListenError, bindServer } from '../../common/proto.ts';
import { OptionError } from '../../domain/errors.ts';
import { DashboardListenError } from '../../observability/dashboard-server.ts';

describe('a server that cannot listen', () => {
  let taken: Awaited<ReturnType<typeof takenPort>>;
  let port = 0;
  beforeAll(async () => {
    taken = await takenPort();
    port = taken.port;
  });
  afterAll(() => taken.release());

  it('is one ListenError saying why, with no log line of grpc-js beside it', async () => {
    const logged = vi.spyOn(console, 'error').mockImplementation(() => {});
    const server = new grpc.Server();
    try {
      const err = await bindServer(server, `127.0.0.1:${port}`).then(() => null, (e: unknown) => e);
      expect(err).toBeInstanceOf(ListenError);
      expect((err as ListenError).code).toBe('EADDRINUSE');
      expect((err as ListenError).message).toBe(`cannot listen on 127.0.0.1:${port}: the port is in use`);
      const option = (err as ListenError).toOptionError('--port');
      expect(option).toBeInstanceOf(OptionError);
      expect(option.message).toBe(`--port: cannot listen on 127.0.0.1:${port}: the port is in use; pick another port (0: any free one)`);
      expect(logged).not.toHaveBeenCalled();
    } finally {
      logged.mockRestore();
      server.forceShutdown();
    }
  });

  it('still binds a free port', async () => {
    const server = new grpc.Server();
    expect(await bindServer(server, '127.0.0.1:0')).toBeGreaterThan(0);
    server.forceShutdown();
  });

  it('of the dashboard is an option error of the flag to change', () => {
    const inUse = new DashboardListenError('127.0.0.1', 8080, { cause: Object.assign(new Error('x'), { code: 'EADDRINUSE' }) });
    expect(inUse).toBeInstanceOf(OptionError);
    expect(inUse.field).toBe('--dashboard-port');
    expect(inUse.message).toMatch(/^--dashboard-port: cannot serve the dashboard on 127\.0\.0\.1:8080: the port is in use; pick another with --dashboard-port/);
    const notHere = new DashboardListenError('10.9.9.9', 8080, { cause: Object.assign(new Error('x'), { code: 'EADDRNOTAVAIL' }) });
    expect(notHere.field).toBe('--dashboard-host');
  });
});
