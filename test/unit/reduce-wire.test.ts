// The all-reduce chunk on the wire: a chunk survives real protobuf bytes, every field out of range
// is refused naming it, chunks out of order on a stream are refused, and a chunk's bytes at any
// byte offset read back as the same float32 values.

import protobuf from 'protobufjs';
import { describe, expect, it } from 'vitest';
import { PROTO_LOADER_OPTIONS, PROTO_PATH } from '../../common/proto.ts';
import { ReduceSequence, decodeReduceChunk, encodeReduceChunk, float32Values, type ReduceChunk } from '../../common/wire/reduce-wire.ts';
import { MALFORMED, WireError } from '../../common/wire/wire-check.ts';
import type { ReduceChunk__Output } from '../../proto/generated/ftrain/v1/ReduceChunk.ts';

const type = protobuf.loadSync(PROTO_PATH).lookupType('ftrain.v1.ReduceChunk');

/** Through real bytes, back as proto-loader hands messages to handlers. */
function wire(value: object): ReduceChunk__Output {
  const bytes = type.encode(type.fromObject(value)).finish();
  return type.toObject(type.decode(bytes), { ...PROTO_LOADER_OPTIONS, longs: Number, enums: String }) as ReduceChunk__Output;
}

const values = Float32Array.from([1.5, -2.25, 3e-30, Number.NaN, -0]);
const good: ReduceChunk = { epoch: 3, stage: 1, fromReplica: 2, step: 40, bucket: 0, ringStep: 3, ringChunk: 1, chunkIndex: 0, chunkCount: 1, data: new Uint8Array(values.buffer) };

describe('reduce wire', () => {
  it('carries a chunk through protobuf bytes', () => {
    const back = decodeReduceChunk(wire(encodeReduceChunk(good)));
    expect({ ...back, data: Buffer.from(back.data) }).toEqual({ ...good, data: Buffer.from(good.data) });
  });

  it('refuses every field out of range, naming it', () => {
    const refused = (over: object, field: string) => {
      const err = (() => {
        try {
          decodeReduceChunk(wire({ ...encodeReduceChunk(good), ...over }));
        } catch (e) {
          return e;
        }
        return null;
      })();
      expect(err).toBeInstanceOf(WireError);
      expect((err as WireError).field).toBe(field);
    };
    refused({ epoch: -1 }, 'epoch');
    refused({ stage: -1 }, 'stage');
    refused({ stage: 64 }, 'stage');
    refused({ fromReplica: -1 }, 'from_replica');
    refused({ step: -5 }, 'step');
    refused({ ringStep: -1 }, 'ring_step');
    refused({ ringChunk: -1 }, 'ring_chunk');
    refused({ chunkIndex: 1, chunkCount: 1 }, 'chunk_index');
    refused({ chunkIndex: -1 }, 'chunk_index');
    refused({ chunkCount: 0 }, 'chunk_count');
    refused({ data: Buffer.alloc(7) }, 'data');
    expect(() => decodeReduceChunk({ [MALFORMED]: 'index out of range' })).toThrow(/^ReduceChunk: is not a valid ftrain.v1.ReduceChunk/);
  });

  it('takes the chunks of a stream in order, message after message, and refuses any out of order', () => {
    const head = { ...good, chunkCount: 2 };
    const a = new ReduceSequence();
    a.add({ ...head, chunkIndex: 0 });
    expect(a.partial).toBe(true);
    a.add({ ...head, chunkIndex: 1 });
    expect(a.partial).toBe(false);
    a.add({ ...head, ringStep: 4, chunkIndex: 0, chunkCount: 1 });
    expect(a.partial).toBe(false);

    expect(() => new ReduceSequence().add({ ...head, chunkIndex: 1 })).toThrow(/^chunk_index: chunk 1 of ring message 3 of step 40 is out of order/);
    const b = new ReduceSequence();
    b.add({ ...head, chunkIndex: 0 });
    expect(() => b.add({ ...head, chunkIndex: 1, ringStep: 4 })).toThrow(WireError);
    const c = new ReduceSequence();
    c.add({ ...head, chunkIndex: 0 });
    expect(() => c.add({ ...head, chunkIndex: 0 })).toThrow(/began before message 3 of step 40 was complete/);
    const d = new ReduceSequence();
    d.add({ ...head, chunkIndex: 0 });
    expect(() => d.add({ ...head, chunkIndex: 1, chunkCount: 3 })).toThrow(/out of order/);
  });

  it('reads a chunk at any byte offset as its float32 values: a view when aligned, else a copy into the scratch', () => {
    const scratch = { buffer: new ArrayBuffer(0) };
    for (const at of [0, 1, 2, 3, 4]) {
      const raw = new Uint8Array(at + values.byteLength);
      raw.set(new Uint8Array(values.buffer), at);
      const v = float32Values(raw.subarray(at), scratch);
      expect(Buffer.from(v.buffer, v.byteOffset, v.byteLength).equals(Buffer.from(values.buffer))).toBe(true);
      expect(v.buffer === raw.buffer).toBe(at % 4 === 0);
    }
    expect(scratch.buffer.byteLength).toBeGreaterThanOrEqual(values.byteLength);
  });
});
