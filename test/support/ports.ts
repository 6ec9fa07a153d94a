// Ports on 127.0.0.1 for tests of what ftrain says when one is taken, or when nothing is there.

import { createServer } from 'node:net';

/** A port something listens on until `release()`: taken for ftrain. */
export async function takenPort(): Promise<{ readonly port: number; release(): Promise<void> }> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as { port: number }).port;
  return { port, release: () => new Promise<void>((r) => server.close(() => r())) };
}

/** A port on 127.0.0.1 where nothing listens (it was free a moment ago). */
export async function closedPort(): Promise<number> {
  const taken = await takenPort();
  await taken.release();
  return taken.port;
}
