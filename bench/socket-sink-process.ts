// Child process of `ftrain bench snapshot`: the far end of the socket hand-off path, standing
// for a snapshot manager in another process. Listens on a Unix domain socket, receives each
// state into one preallocated buffer and acks with one byte once all its bytes have arrived.
//
// Usage: socket-sink-process.ts <socket path> <state bytes>. Prints "ready" when listening.
// Exits when its stdin closes, so it never outlives the bench, even one that was killed.

import { createServer } from 'node:net';

const ACK = Buffer.from([1]);

const [socketPath, bytesArg] = process.argv.slice(2);
const stateBytes = Number(bytesArg);
if (!socketPath || !Number.isInteger(stateBytes) || stateBytes < 1) {
  process.stderr.write('usage: socket-sink-process.ts <socket path> <state bytes>\n');
  process.exit(2);
}

// Touched now, so that receiving measures copies rather than first-touch page faults. Senders
// take turns (each waits for its ack), so all connections share this one buffer.
const received = Buffer.allocUnsafeSlow(stateBytes).fill(0);

const server = createServer((socket) => {
  let offset = 0;
  socket.on('data', (chunk: Buffer) => {
    let from = 0;
    while (from < chunk.length) {
      const n = Math.min(chunk.length - from, stateBytes - offset);
      chunk.copy(received, offset, from, from + n);
      offset += n;
      from += n;
      if (offset === stateBytes) {
        offset = 0;
        socket.write(ACK);
      }
    }
  });
  // A sender that goes away (the bench ending) is not an error of the sink.
  socket.on('error', () => socket.destroy());
});

server.on('error', (err) => {
  process.stderr.write(`socket sink: ${err.message}\n`);
  process.exit(1);
});
server.listen(socketPath, () => process.stdout.write('ready\n'));

process.stdin.on('close', () => process.exit(0));
process.stdin.resume();
