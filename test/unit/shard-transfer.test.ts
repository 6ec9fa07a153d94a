// The shard assembler: a shard's memory is allocated once, from its header, and each chunk copied
// into place; a shard longer or shorter than its header, or a header that claims more than the
// assembler takes, is refused with a WireError that says which; the shards handed over are no
// longer the assembler's. Messages go through real protobuf bytes, as grpc-js hands them over.
// A shard writer waits for a full stream to drain, and gives up when the stream closes instead.

import { EventEmitter } from 'node:events';
import protobuf from 'protobufjs';
import { describe, expect, it } from 'vitest';
import { PROTO_LOADER_OPTIONS, PROTO_PATH } from '../../common/proto.ts';
import { encodeShardHeader } from '../../common/wire/snapshot-manager-wire.ts';
import { WireError } from '../../common/wire/wire-check.ts';
import type { ShardHeader } from '../../domain/erasure-protection.ts';
import type { ShardChunk, ShardChunk__Output } from '../../proto/generated/ftrain/v1/ShardChunk.ts';
import { MAX_SHARD_BYTES, SHARD_CHUNK_BYTES, ShardAssembler, ShardStreamClosedError, writeShard, type ShardSink } from '../../snapshot-manager/shard-transfer.ts';

const ShardChunkType = protobuf.loadSync(PROTO_PATH).lookupType('ftrain.v1.ShardChunk');

function wire(chunk: ShardChunk): ShardChunk__Output {
  const bytes = ShardChunkType.encode(ShardChunkType.fromObject(chunk)).finish();
  return ShardChunkType.toObject(ShardChunkType.decode(bytes), { ...PROTO_LOADER_OPTIONS, longs: Number, enums: String }) as ShardChunk__Output;
}

function header(index: number, bytes: number): ShardHeader {
  return {
    ownerNodeId: 'n1',
    stage: 2,
    step: 9,
    epoch: 0,
    index,
    crc32: 0,
    bytes,
    layout: { dataShards: 2, parityShards: 1, totalBytes: 2 * bytes - 1, stripeBytes: bytes, stripes: 1 },
    snapshot: { stage: 2, step: 9, tensors: [], scalars: {}, epoch: 0 },
    protectedCommitStep: -1,
  };
}

function pattern(n: number, seed: number): Uint8Array {
  return Uint8Array.from({ length: n }, (_, i) => (i * 13 + seed) & 255);
}

describe('shard assembler', () => {
  it('puts each shard together in one allocation, from chunks of any size', () => {
    const a = new ShardAssembler();
    const s0 = pattern(1000, 1);
    const s1 = pattern(1000, 2);
    a.add(wire({ header: encodeShardHeader(header(0, 1000)) }));
    for (const [from, to] of [[0, 1], [1, 400], [400, 1000]] as const) a.add(wire({ data: s0.subarray(from, to) }));
    a.add(wire({ header: encodeShardHeader(header(1, 1000)) }));
    a.add(wire({ data: s1 }));
    const shards = a.finish();
    expect(shards.map((s) => s.index)).toEqual([0, 1]);
    expect(Buffer.compare(shards[0]!.data, s0)).toBe(0);
    expect(Buffer.compare(shards[1]!.data, s1)).toBe(0);
    for (const s of shards) {
      // Its own buffer, exactly its size: transferable whole to a coding thread, holding no chunk.
      expect(s.data.byteOffset).toBe(0);
      expect(s.data.buffer.byteLength).toBe(1000);
    }
    expect(a.finish(), 'handed over: the assembler keeps none').toEqual([]);
  });

  it('refuses a shard longer than its header says', () => {
    const a = new ShardAssembler();
    a.add(wire({ header: encodeShardHeader(header(0, 10)) }));
    a.add(wire({ data: pattern(6, 0) }));
    expect(() => a.add(wire({ data: pattern(5, 0) }))).toThrow(WireError);
    const b = new ShardAssembler();
    b.add(wire({ header: encodeShardHeader(header(0, 10)) }));
    expect(() => b.add(wire({ data: pattern(11, 0) }))).toThrow(/^data: shard 0 of stage 2 step 9 is longer than its header says \(10 bytes\)$/);
  });

  it('refuses a shard shorter than its header says, at the next header or at the end', () => {
    const a = new ShardAssembler();
    a.add(wire({ header: encodeShardHeader(header(0, 10)) }));
    a.add(wire({ data: pattern(9, 0) }));
    expect(() => a.finish()).toThrow(/^data: shard 0 of stage 2 step 9: 9 bytes, header says 10$/);
    const b = new ShardAssembler();
    b.add(wire({ header: encodeShardHeader(header(0, 10)) }));
    expect(() => b.add(wire({ header: encodeShardHeader(header(1, 10)) }))).toThrow(/0 bytes, header says 10/);
  });

  it('refuses a header that claims more than it takes, before allocating', () => {
    const a = new ShardAssembler(1 << 20);
    expect(() => a.add(wire({ header: encodeShardHeader(header(1, (1 << 20) + 1)) }))).toThrow(
      /^header\.bytes: shard 1 of stage 2 step 9 claims 1048577 bytes, more than the 1048576 a snapshot manager takes$/,
    );
    expect(() => a.add(wire({ data: pattern(4, 0) })), 'nothing was started').toThrow(/must carry its header/);
    // The default cap: a header of 2^40 bytes is refused, not allocated.
    expect(() => new ShardAssembler().add(wire({ header: encodeShardHeader(header(0, 2 ** 40)) }))).toThrow(`claims ${2 ** 40} bytes, more than the ${MAX_SHARD_BYTES}`);
    const ok = new ShardAssembler(1 << 20);
    ok.add(wire({ header: encodeShardHeader(header(0, 1 << 20)) }));
    ok.add(wire({ data: new Uint8Array(1 << 20) }));
    expect(ok.finish()[0]!.data.byteLength).toBe(1 << 20);
  });

  it('refuses bytes before any header, and lets go of everything on discard', () => {
    const a = new ShardAssembler();
    expect(() => a.add(wire({ data: pattern(3, 0) }))).toThrow(/^header: the first chunk of a shard must carry its header$/);
    a.add(wire({ header: encodeShardHeader(header(0, 4)) }));
    a.add(wire({ data: pattern(4, 0) }));
    a.add(wire({ header: encodeShardHeader(header(1, 4)) }));
    a.discard();
    expect(a.finish()).toEqual([]);
  });
});

/** A stream that takes `room` chunks, then is full until drain() or close(). */
class FakeSink extends EventEmitter implements ShardSink {
  readonly chunks: ShardChunk[] = [];
  destroyed = false;
  constructor(private room: number) {
    super();
  }
  write(chunk: ShardChunk): boolean {
    this.chunks.push(chunk);
    return --this.room > 0;
  }
  drain(room: number): void {
    this.room = room;
    this.emit('drain');
  }
  close(): void {
    this.destroyed = true;
    this.emit('close');
  }
}

describe('shard writer', () => {
  const bytes = pattern(3 * SHARD_CHUNK_BYTES + 5, 3);

  it('writes the header and the bytes in chunks, waiting for a full stream to drain', async () => {
    const sink = new FakeSink(2);
    const done = writeShard(sink, header(0, bytes.length), bytes);
    await new Promise((r) => setTimeout(r, 5));
    expect(sink.chunks.length, 'full after two chunks').toBe(2);
    sink.drain(10);
    await done;
    expect(sink.chunks.length).toBe(5);
    expect(sink.chunks[0]!.header).toBeDefined();
    expect(Buffer.compare(Buffer.concat(sink.chunks.slice(1).map((c) => c.data as Uint8Array)), bytes)).toBe(0);
    expect(sink.listenerCount('close') + sink.listenerCount('drain'), 'no listener left behind').toBe(0);
  });

  it('gives up, holding nothing, when the stream closes while it waits', async () => {
    const sink = new FakeSink(2);
    const done = writeShard(sink, header(1, bytes.length), bytes);
    await new Promise((r) => setTimeout(r, 5));
    sink.close();
    await expect(done).rejects.toThrow(ShardStreamClosedError);
    await expect(done).rejects.toThrow('the stream closed before shard 1 of stage 2 step 9 was sent');
    expect(sink.listenerCount('close') + sink.listenerCount('drain')).toBe(0);
    await expect(writeShard(sink, header(1, bytes.length), bytes)).rejects.toThrow(ShardStreamClosedError);
  });
});
