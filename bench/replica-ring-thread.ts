// A BenchParty in a thread of its own: requests from bench/replica-ring-bench.ts come in on the
// port ({ id, op, args }), each answered with { id, value } or { id, error }.

import { parentPort } from 'node:worker_threads';
import { BenchParty } from './replica-ring-party.ts';

const party = await BenchParty.start();
const ops: Record<string, (...args: never[]) => unknown> = {
  connect: (replica: number, addresses: string[], length: number) => party.connect(replica, addresses, length),
  reduce: (step: number) => party.reduce(step),
  stream: (address: string, length: number, run: number) => party.stream(address, length, run),
  takeCounted: () => party.takeCounted(),
  close: () => party.close(),
};
parentPort!.on('message', (m: { id: number; op: string; args: never[] }) => {
  Promise.resolve()
    .then(() => ops[m.op]!(...m.args))
    .then(
      (value) => parentPort!.postMessage({ id: m.id, value }),
      (err: unknown) => parentPort!.postMessage({ id: m.id, error: err instanceof Error ? err.message : String(err) }),
    );
});
parentPort!.postMessage({ id: 0, value: party.address });
