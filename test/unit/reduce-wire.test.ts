// The all-reduce chunk on the wire: a chunk survives real protobuf bytes, every field out of range
// is refused naming it, and a ring message comes back together bit for bit from chunks at any
// byte offset, refused when its chunks come out of order.

import protobuf from 'protobufjs';
import { describe, expect, it } from 'vitest';
import { PROTO_LOADER_OPTIONS, PROTO_PATH } from '../../common/proto.ts';
import { ReduceAssembler, decodeReduceChunk, encodeReduceChunk, type ReduceChunk } from '../../common/wire/reduce-wire.ts';
import { MALFORMED, WireError } from '../../common/wire/wire-check.ts';
import type { ReduceChunk__Output } from '../../proto/generated/ftrain/v1/ReduceChunk.ts';

const type = protobuf.loadSync(PROTO_PATH).lookupType('ftrain.v1.ReduceChunk');

/** Through real bytes, back as proto-loader hands messages to handlers. */
function wire(value: object): ReduceChunk__Output {
  const bytes = type.encode(type.fromObject(value)).finish();
  return type.toObject(type.decode(bytes), { ...PROTO_LOADER_OPTIONS, longs: Number, enums: String }) as ReduceChunk__Output;
}

const values = Float32Array.from([1.5, -2.25, 3e-30, Number.NaN, -0]);
const good: ReduceChunk = { epoch: 3, stage: 1, fromReplica: 2, step: 40, ringStep: 3, ringChunk: 1, chunkIndex: 0, chunkCount: 1, data: new Uint8Array(values.buffer) };

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

  it('puts a message back together from chunks at odd byte offsets, and refuses chunks out of order', () => {
    // Bytes that start one past an aligned offset, as a received buffer may.
    const raw = new Uint8Array(1 + values.byteLength);
    raw.set(new Uint8Array(values.buffer), 1);
    const a = new ReduceAssembler();
    const head = { ...good, chunkCount: 2 };
    expect(a.add({ ...head, chunkIndex: 0, data: raw.subarray(1, 9) })).toBeNull();
    expect(a.partial).toBe(true);
    const m = a.add({ ...head, chunkIndex: 1, data: raw.subarray(9) })!;
    expect(a.partial).toBe(false);
    expect({ step: m.step, ringStep: m.ringStep, ringChunk: m.ringChunk }).toEqual({ step: 40, ringStep: 3, ringChunk: 1 });
    expect(Buffer.from(m.values.buffer).equals(Buffer.from(values.buffer))).toBe(true);

    expect(() => new ReduceAssembler().add({ ...head, chunkIndex: 1 })).toThrow(/^chunk_index: chunk 1 of ring message 3 of step 40 is out of order/);
    const b = new ReduceAssembler();
    b.add({ ...head, chunkIndex: 0 });
    expect(() => b.add({ ...head, chunkIndex: 1, ringStep: 4 })).toThrow(WireError);
    const c = new ReduceAssembler();
    c.add({ ...head, chunkIndex: 0 });
    expect(() => c.add({ ...head, chunkIndex: 0 })).toThrow(/began before message 3 of step 40 was complete/);
  });
});
