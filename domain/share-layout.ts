// Sharded snapshots (`--replicas`): the D replicas of a stage hold bit-identical state, so each
// snapshots only one share of it, and a restore gathers the shares back (as in REFT). A share is
// a contiguous byte range of the stage's whole serialized state (snapshot-slots.ts: its tensors
// back to back as float32), cut on 4-byte boundaries so no value is split between two shares.

/** Which part of a stage's whole serialized state a sharded snapshot holds (SnapshotHeader.share). */
export interface SnapshotShare {
  /** 0 .. count-1. */
  readonly index: number;
  /** Shares the state is cut into, >= 2. */
  readonly count: number;
  /** Byte offset of this share in the whole state's data: shareRange(wholeBytes, index, count).offset. */
  readonly offset: number;
  /** The whole state's data length in bytes. */
  readonly wholeBytes: number;
}

/** A byte range of the whole state's data. */
export interface ShareRange {
  readonly offset: number;
  readonly bytes: number;
}

/** Bytes of one float32 value: no share boundary falls inside one. */
export const SHARE_ALIGN_BYTES = 4;

/**
 * Share `index` of `count` of a state of `wholeBytes` bytes. The shares are contiguous, in index
 * order, and cover [0, wholeBytes) exactly once; every boundary is a multiple of
 * SHARE_ALIGN_BYTES, and their sizes differ by at most SHARE_ALIGN_BYTES (the last one also takes
 * a tail shorter than that, which a state of float32 values never has). count <= 1: the whole.
 */
export function shareRange(wholeBytes: number, index: number, count: number): ShareRange {
  if (!Number.isSafeInteger(wholeBytes) || wholeBytes < 0) throw new RangeError(`a state of ${wholeBytes} bytes cannot be shared`);
  if (count <= 1) {
    if (index !== 0) throw new RangeError(`share ${index} of a whole state (count ${count})`);
    return { offset: 0, bytes: wholeBytes };
  }
  if (!Number.isInteger(count) || !Number.isInteger(index) || index < 0 || index >= count) throw new RangeError(`share ${index} of ${count} does not exist`);
  const words = Math.floor(wholeBytes / SHARE_ALIGN_BYTES);
  const base = Math.floor(words / count);
  const extra = words % count;
  const start = (i: number) => (i * base + Math.min(i, extra)) * SHARE_ALIGN_BYTES;
  const offset = start(index);
  const end = index === count - 1 ? wholeBytes : start(index + 1);
  return { offset, bytes: end - offset };
}

/** The share of a state of `wholeBytes` bytes that share index/count describes, as a header says it. */
export function shareOf(wholeBytes: number, index: number, count: number): SnapshotShare {
  return { index, count, offset: shareRange(wholeBytes, index, count).offset, wholeBytes };
}

/**
 * Views of the bytes [offset, offset + bytes) of the data that `chunks` hold back to back (a
 * state's tensors, each its own buffer): sub-views of the chunks the range crosses, in order,
 * nothing copied. Throws when the chunks end before the range does.
 */
export function sliceChunks(chunks: readonly Uint8Array[], offset: number, bytes: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  const end = offset + bytes;
  let at = 0;
  for (const c of chunks) {
    const cEnd = at + c.byteLength;
    if (cEnd > offset && at < end) {
      const from = Math.max(offset, at) - at;
      const to = Math.min(end, cEnd) - at;
      if (to > from) out.push(c.subarray(from, to));
    }
    at = cEnd;
    if (at >= end) break;
  }
  if (at < end) throw new RangeError(`bytes ${offset}..${end} asked of data ${at} bytes long`);
  return out;
}
